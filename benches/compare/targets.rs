//! The targets a client can be pointed at, each started and stopped by the project's own
//! scripts: `scripts/fleet.sh` for flotilla (one node, and a 3-node fleet on other loopback
//! hosts) and `scripts/lib/kroxylicious.sh` for Kroxylicious. A target is stopped when it
//! is dropped, so a failed run leaves no proxy behind.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use anyhow::{bail, Context};

use crate::kafka::{cache_dir, repo_root, Kafka};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Direct,
    Node,
    Fleet,
    Kroxylicious,
    /// Kafka's SSL listener, direct.
    #[serde(rename = "direct-tls")]
    DirectTls,
    /// One node with TLS on both sides: clients to it, it to Kafka's SSL listener.
    #[serde(rename = "node-tls")]
    NodeTls,
    /// One node of an earlier flotilla build (`--baseline`), to measure an optimization.
    Baseline,
}

impl FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "direct" => Ok(TargetKind::Direct),
            "node" => Ok(TargetKind::Node),
            "fleet" => Ok(TargetKind::Fleet),
            "kroxylicious" => Ok(TargetKind::Kroxylicious),
            "direct-tls" => Ok(TargetKind::DirectTls),
            "node-tls" => Ok(TargetKind::NodeTls),
            other => Err(format!(
                "unknown target `{other}`; known: direct, node, fleet, kroxylicious, \
                 direct-tls, node-tls (and baseline, which --baseline adds)"
            )),
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            TargetKind::Direct => "direct",
            TargetKind::Node => "node",
            TargetKind::Fleet => "fleet",
            TargetKind::Kroxylicious => "kroxylicious",
            TargetKind::Baseline => "baseline",
            TargetKind::DirectTls => "direct-tls",
            TargetKind::NodeTls => "node-tls",
        };
        f.write_str(name)
    }
}

impl TargetKind {
    /// Whether clients reach it over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, TargetKind::DirectTls | TargetKind::NodeTls)
    }

    /// What its throughput is compared with: direct Kafka over the same transport.
    pub fn direct_reference(self) -> TargetKind {
        if self.is_tls() {
            TargetKind::DirectTls
        } else {
            TargetKind::Direct
        }
    }

    /// The same target without TLS, for what TLS itself costs.
    pub fn without_tls(self) -> Option<TargetKind> {
        match self {
            TargetKind::DirectTls => Some(TargetKind::Direct),
            TargetKind::NodeTls => Some(TargetKind::Node),
            _ => None,
        }
    }
}

/// A running target.
pub struct Target {
    pub kind: TargetKind,
    /// What clients bootstrap from.
    pub bootstrap: String,
    /// The proxy processes whose CPU time is the target's cost (none for direct Kafka).
    pub pids: Vec<u32>,
    /// One proxy listener and its process, for the idle-connection memory figure.
    pub idle: Option<(String, u32)>,
    /// The CA clients trust, for a TLS target.
    pub tls_ca: Option<PathBuf>,
    state: Option<PathBuf>,
}

/// Starts every requested target; direct Kafka first, as it needs nothing. `baseline` is
/// the flotilla binary of the baseline target, if any.
pub fn start_all(
    kinds: &[TargetKind],
    baseline: Option<&Path>,
    kafka: &Kafka,
    out: &Path,
) -> anyhow::Result<Vec<Target>> {
    let mut kinds = kinds.to_vec();
    if baseline.is_some() {
        kinds.push(TargetKind::Baseline);
    }
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            eprintln!("bench: starting {kind}");
            start(kind, baseline, kafka, out).with_context(|| format!("starting {kind}"))
        })
        .collect()
}

fn start(
    kind: TargetKind,
    baseline: Option<&Path>,
    kafka: &Kafka,
    out: &Path,
) -> anyhow::Result<Target> {
    let this_build = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    match kind {
        TargetKind::Direct => Ok(direct(kind, &kafka.bootstrap, None)),
        TargetKind::DirectTls => Ok(direct(kind, &kafka.ssl_bootstrap, Some(&kafka.tls_ca))),
        TargetKind::Node => start_fleet(kind, this_build, 1, 21, out),
        TargetKind::Fleet => start_fleet(kind, this_build, 3, 31, out),
        TargetKind::NodeTls => {
            let mut target = start_fleet(kind, this_build, 1, 41, out)?;
            target.tls_ca = Some(kafka.tls_ca.clone());
            target.idle = None; // idle connections are measured in plaintext
            Ok(target)
        }
        TargetKind::Baseline => {
            let binary = baseline.context("the baseline target needs --baseline BINARY")?;
            start_fleet(kind, binary, 1, 51, out)
        }
        TargetKind::Kroxylicious => start_kroxylicious(kafka, out),
    }
}

fn direct(kind: TargetKind, bootstrap: &str, tls_ca: Option<&Path>) -> Target {
    Target {
        kind,
        bootstrap: bootstrap.to_string(),
        pids: Vec::new(),
        idle: None,
        tls_ca: tls_ca.map(Path::to_path_buf),
        state: None,
    }
}

/// `nodes` nodes of the flotilla `binary` from loopback host 127.0.0.`first_host` (with
/// TLS listeners and TLS to Kafka for a TLS target).
fn start_fleet(
    kind: TargetKind,
    binary: &Path,
    nodes: u8,
    first_host: u8,
    out: &Path,
) -> anyhow::Result<Target> {
    let state = out.join(format!("{kind}-state"));
    let bootstrap = last_line(
        fleet_script(&state, first_host)
            .env("FLOTILLA_BIN", binary)
            .args(["up", &nodes.to_string()])
            .args(kind.is_tls().then_some("--tls"))
            .stderr(Stdio::inherit()),
    )?;
    let pids = (1..=nodes)
        .map(|id| read_pid(&state.join(format!("node-{id}/pid"))))
        .collect::<anyhow::Result<Vec<u32>>>()?;
    let first = bootstrap.split(',').next().unwrap_or_default().to_string();
    Ok(Target {
        kind,
        bootstrap,
        idle: Some((first, pids[0])),
        pids,
        tls_ca: None,
        state: Some(state),
    })
}

fn start_kroxylicious(kafka: &Kafka, out: &Path) -> anyhow::Result<Target> {
    let state = out.join("kroxylicious-state");
    // Kroxylicious binds its ports on every interface, so they must differ from the
    // flotilla nodes' (9192 and up on their own hosts).
    let (host, port) = ("127.0.0.41", "29192");
    let bootstrap = format!("{host}:{port}");
    let pid: u32 = last_line(
        kroxylicious_script()
            .args(["start", host, port, &kafka.bootstrap])
            .arg(&state)
            .stderr(Stdio::inherit()),
    )?
    .parse()
    .context("kroxylicious.sh start prints the pid last")?;
    Ok(Target {
        kind: TargetKind::Kroxylicious,
        idle: Some((bootstrap.clone(), pid)),
        bootstrap,
        pids: vec![pid],
        tls_ca: None,
        state: Some(state),
    })
}

/// The Kroxylicious version the benchmark runs, as its script resolves it.
pub fn kroxylicious_version() -> String {
    last_line(kroxylicious_script().arg("version").stderr(Stdio::null())).unwrap_or_default()
}

impl Drop for Target {
    fn drop(&mut self) {
        let Some(state) = &self.state else { return };
        let status = match self.kind {
            TargetKind::Kroxylicious => kroxylicious_script().arg("stop").arg(state).status(),
            _ => fleet_script(state, 0).arg("down").status(),
        };
        if !status.is_ok_and(|s| s.success()) {
            eprintln!(
                "bench: stopping {} failed; see {}",
                self.kind,
                state.display()
            );
        }
    }
}

fn fleet_script(state: &Path, first_host: u8) -> Command {
    let mut command = Command::new(repo_root().join("scripts/fleet.sh"));
    command.env("FLOTILLA_FLEET_DIR", state);
    if first_host > 0 {
        command.env("FLOTILLA_FLEET_FIRST_HOST", first_host.to_string());
    }
    command
}

fn kroxylicious_script() -> Command {
    let mut command = Command::new(repo_root().join("scripts/lib/kroxylicious.sh"));
    command.env("FLOTILLA_CACHE", cache_dir());
    command
}

/// Runs a script and returns the last line of its standard output.
fn last_line(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed with {}", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string())
}

fn read_pid(path: &Path) -> anyhow::Result<u32> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .parse()
        .with_context(|| format!("{} holds no pid", path.display()))
}
