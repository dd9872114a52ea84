//! Shared by the integration tests: the real Kafka cluster from `scripts/`, flotilla
//! nodes run as real processes, and waiting by polling with a deadline.
#![allow(dead_code)]

pub mod admin;
pub mod certs;
pub mod fake_broker;
pub mod fleet;
pub mod groups;
pub mod java;
pub mod quotas;
pub mod rdkafka;
pub mod wire;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use admin::AdminAccess;

/// Polls `check` until it returns `Some`, failing the test with `what` after `deadline`.
pub fn wait_for<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bootstrap list of the local 3-broker Kafka cluster, starting it if needed.
pub fn kafka() -> &'static str {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP.get_or_init(|| kafka_cluster_up("default"))
}

/// The bootstrap list of a second, independent local Kafka cluster, `b` (brokers on
/// 127.0.0.1:40092-40094), for multi-cluster tests; started if needed, like [`kafka`].
pub fn kafka_b() -> &'static str {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP.get_or_init(|| kafka_cluster_up("b"))
}

/// `KAFKA_CLUSTER_NAME=NAME scripts/kafka-cluster.sh up`: its PLAINTEXT bootstrap list.
fn kafka_cluster_up(name: &str) -> String {
    last_line_with("kafka-cluster.sh", &["up"], &[("KAFKA_CLUSTER_NAME", name)])
}

/// The local cluster's TLS listeners: SASL_SSL (users flotilla, alice and bob, each with
/// the password `<name>-secret`, PLAIN and SCRAM) and SSL, and the CA of their certificates.
pub struct SecureKafka {
    pub sasl_ssl: String,
    pub ssl: String,
    pub ca: PathBuf,
}

pub fn secure_kafka() -> &'static SecureKafka {
    static LISTENERS: OnceLock<SecureKafka> = OnceLock::new();
    LISTENERS.get_or_init(|| {
        kafka();
        let status = Command::new(repo_root().join("scripts/kafka-cluster.sh"))
            .arg("status")
            .env("KAFKA_CLUSTER_NAME", "default")
            .output()
            .unwrap();
        let listing = String::from_utf8(status.stdout).unwrap();
        let list = |label: &str| {
            listing
                .lines()
                .find_map(|l| l.strip_prefix(label))
                .unwrap_or_else(|| panic!("no {label}listener in:\n{listing}"))
                .trim()
                .to_string()
        };
        SecureKafka {
            sasl_ssl: list("SASL_SSL "),
            ssl: list("SSL "),
            ca: PathBuf::from(last_line_of("kafka-cluster.sh", &["tls-dir"])).join("ca.pem"),
        }
    })
}

/// Runs `scripts/SCRIPT ARGS`, failing the test if it fails, and returns the last line it
/// printed (where the project's scripts put their answer).
fn last_line_of(script: &str, args: &[&str]) -> String {
    last_line_with(script, args, &[])
}

/// [`last_line_of`] with these environment variables set for the script.
fn last_line_with(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(repo_root().join("scripts").join(script))
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(out.status.success(), "scripts/{script} {args:?} failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last();
    last.unwrap_or_else(|| panic!("scripts/{script} printed nothing"))
        .trim()
        .to_string()
}

/// Runs a Kafka Java tool class (from the cluster script's cached libraries).
pub fn kafka_tool(class: &str, args: &[&str]) -> Command {
    let mut command = Command::new(repo_root().join("scripts/kafka-cluster.sh"));
    command.arg("run-class").arg(class).args(args);
    command
}

/// Runs a Kafka Java tool to completion, failing the test with its output if it fails.
pub fn run_tool(class: &str, args: &[&str]) -> std::process::Output {
    let output = kafka_tool(class, args).output().unwrap();
    assert!(
        output.status.success(),
        "{class} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Creates a topic with replication factor 3 through `bootstrap`, with Kafka's own tool.
pub fn create_topic_with_tool(bootstrap: &str, topic: &str, partitions: u32) -> String {
    let partitions = partitions.to_string();
    let args = [
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions,
        "--replication-factor",
        "3",
    ];
    let output = run_tool("org.apache.kafka.tools.TopicCommand", &args);
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// A unique loopback host for each node a test starts, so nodes never share ports.
pub fn next_host() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        100 + pid % 100,
        (pid / 100) % 250 + 1,
        n % 250 + 1
    )
}

/// A flotilla node process, killed when dropped.
pub struct Node {
    pub id: u64,
    pub host: String,
    pub bootstrap: String,
    pub admin: String,
    /// How the tests reach its admin API (credentials, HTTPS).
    pub access: AdminAccess,
    child: Child,
    config_path: PathBuf,
    log: PathBuf,
    launch: Launch,
    _dir: tempfile::TempDir,
}

/// How a node process is started: which build, with which extra environment.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Default for Launch {
    /// This build, as cargo built it for the tests.
    fn default() -> Self {
        Launch {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_flotilla")),
            env: Vec::new(),
        }
    }
}

impl Launch {
    pub fn with_env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

pub const BOOTSTRAP_PORT: u16 = 9192;
pub const IDENTITY_PORT_BASE: u16 = 9200;
pub const ADMIN_PORT: u16 = 9644;

impl Node {
    /// Starts a node in front of `backend` and waits until it is ready.
    pub fn start(backend: &str) -> Node {
        Self::start_with(backend, "")
    }

    /// Like [`Node::start`], with extra TOML appended (for example a `[limits]` table).
    /// `{host}` and `{dir}` in it stand for the node's host and its scratch directory.
    pub fn start_with(backend: &str, extra_toml: &str) -> Node {
        let node = Self::spawn(backend, extra_toml);
        node.wait_ready();
        node
    }

    /// Like [`Node::start_with`], with extra environment variables for the process.
    pub fn start_with_env(backend: &str, extra_toml: &str, env: &[(&str, &str)]) -> Node {
        let launch = env
            .iter()
            .fold(Launch::default(), |l, (k, v)| l.with_env(k, v));
        let node = Self::spawn_with(1, &next_host(), backend, extra_toml, launch);
        node.wait_ready();
        node
    }

    pub fn spawn(backend: &str, extra_toml: &str) -> Node {
        Self::spawn_as(1, &next_host(), backend, extra_toml)
    }

    /// Starts node `id` on `host`.
    pub fn spawn_as(id: u64, host: &str, backend: &str, extra_toml: &str) -> Node {
        Self::spawn_with(id, host, backend, extra_toml, Launch::default())
    }

    /// Starts node `id` on `host`, as `launch` says.
    pub fn spawn_with(
        id: u64,
        host: &str,
        backend: &str,
        extra_toml: &str,
        launch: Launch,
    ) -> Node {
        Self::spawn_secured(
            id,
            host,
            backend,
            extra_toml,
            launch,
            AdminAccess::default(),
        )
    }

    /// Like [`Node::spawn_with`], for a node whose admin API `access` reaches (a token,
    /// HTTPS with the test's CA).
    pub fn spawn_secured(
        id: u64,
        host: &str,
        backend: &str,
        extra_toml: &str,
        launch: Launch,
        access: AdminAccess,
    ) -> Node {
        let host = host.to_string();
        let dir = tempfile::tempdir().unwrap();
        let servers: Vec<String> = backend.split(',').map(|s| format!("\"{s}\"")).collect();
        let extra_toml = extra_toml
            .replace("{host}", &host)
            .replace("{dir}", &dir.path().display().to_string());
        let config = format!(
            "[node]\nid = {id}\nadvertised_host = \"{host}\"\nbootstrap_port = {BOOTSTRAP_PORT}\n\
             identity_port_base = {IDENTITY_PORT_BASE}\nadmin_listen = \"{host}:{ADMIN_PORT}\"\n\
             [backend]\nbootstrap_servers = [{}]\n{extra_toml}\n",
            servers.join(", ")
        );
        let config_path = dir.path().join("node.toml");
        std::fs::File::create(&config_path)
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
        let log = dir.path().join("node.log");
        let child = spawn_process(&launch, &config_path, &log);
        Node {
            id,
            bootstrap: format!("{host}:{BOOTSTRAP_PORT}"),
            admin: format!("{}://{host}:{ADMIN_PORT}", access.scheme()),
            access,
            host,
            child,
            config_path,
            log,
            launch,
            _dir: dir,
        }
    }

    /// Starts the process again with the same config and data, after it was killed.
    pub fn restart(&mut self) {
        assert!(!self.is_running(), "node {} is still running", self.id);
        self.child = spawn_process(&self.launch, &self.config_path, &self.log);
    }

    /// Like [`Node::restart`], with another build (a rolling upgrade).
    pub fn restart_with_binary(&mut self, binary: &Path) {
        self.launch.binary = binary.to_path_buf();
        self.restart();
    }

    /// SIGTERM, as a service manager stops a node, and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Deletes the node's data directory (`{dir}/data`), as if its disk were replaced.
    pub fn wipe_data(&self) {
        std::fs::remove_dir_all(self._dir.path().join("data")).unwrap();
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&mut self) {
        self.signal("KILL");
        self.child.wait().unwrap();
    }

    pub fn wait_ready(&self) {
        wait_for("the node to be ready", Duration::from_secs(30), || {
            self.access.get(&format!("{}/readyz", self.admin)).ok()
        });
    }

    /// Everything the node has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line containing every one of `needles`, and returns it.
    pub fn wait_for_log(&self, needles: &[&str]) -> String {
        wait_for(
            &format!("a log line with {needles:?}"),
            Duration::from_secs(20),
            || {
                self.log()
                    .lines()
                    .find(|line| needles.iter().all(|n| line.contains(n)))
                    .map(str::to_string)
            },
        )
    }

    /// The sum of a metric's samples whose labels contain `label_filter`.
    pub fn metric(&self, name: &str, label_filter: &str) -> f64 {
        let text = self
            .access
            .get(&format!("{}/metrics", self.admin))
            .unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(label_filter))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`, ...) to the node process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits until every thread of the process is stopped (after `signal("STOP")`, which
    /// returns before the kernel has stopped them all).
    pub fn wait_stopped(&self) {
        let tasks = format!("/proc/{}/task", self.child.id());
        wait_for("every thread stopped", Duration::from_secs(10), || {
            let all_stopped = std::fs::read_dir(&tasks).ok()?.all(|task| {
                let stat = std::fs::read_to_string(task.unwrap().path().join("stat"));
                // The state follows the parenthesized command name.
                stat.ok().and_then(|s| {
                    s.rsplit(')')
                        .next()
                        .map(|rest| rest.trim_start().starts_with('T'))
                }) == Some(true)
            });
            all_stopped.then_some(())
        });
    }

    /// Waits until the process exits on its own, and returns its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_for("the node to exit", Duration::from_secs(20), || {
            self.child.try_wait().unwrap()
        })
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

fn spawn_process(launch: &Launch, config_path: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(&launch.binary)
        .arg("--config")
        .arg(config_path)
        .env(
            "RUST_LOG",
            "info,flotilla=debug,openraft=warn,openraft::replication=off",
        )
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", launch.binary.display()))
}

/// The node binary of an earlier release (scripts/build-previous.sh builds it once and
/// caches it outside the repository), for rolling-upgrade tests.
pub fn previous_release() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| PathBuf::from(last_line_of("build-previous.sh", &[])))
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- node {} log ---\n{}", self.host, self.log());
        }
    }
}

/// A GET that succeeds only on a 2xx answer.
pub fn http_get(url: &str) -> Result<String, String> {
    ureq::get(url)
        .call()
        .map_err(|e| e.to_string())?
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())
}

/// A GET's status code and body, whatever the status.
pub fn http_get_status(url: &str) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// A topic name unique to this test run.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}
