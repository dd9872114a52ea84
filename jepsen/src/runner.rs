//! One chaos run from start to verdict: the network, the Kafka cluster, the fleet, the
//! clients, the nemesis schedule, a recovery phase, final reads, then the checker and
//! the report. Every step that can fail says which step it was.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::fleet::{Fleet, FleetConfig};
use crate::nemesis::Schedule;
use crate::net::{Host, Network};
use crate::workload::record::{unix_ms, Recorder};
use crate::workload::{self, ClientArgs, Library, Role};

/// The chaos run's own Kafka cluster: on the bridge, so every namespace reaches it.
const KAFKA_BASE_PORT: &str = "39492";
const TOPIC_PARTITIONS: u32 = 6;
/// Clients keep consuming this long after the producers stop and the faults heal.
const SETTLE: Duration = Duration::from_secs(15);

pub struct RunConfig {
    pub time: Duration,
    pub seed: u64,
    pub nodes: u8,
    pub nemeses: Vec<String>,
    pub out: PathBuf,
    pub flotilla: PathBuf,
    pub java: bool,
}

/// What a finished run produced.
pub struct Outcome {
    pub history: PathBuf,
    pub epoch_ms: f64,
    pub faults: usize,
}

pub fn run(config: &RunConfig) -> anyhow::Result<Outcome> {
    fresh_directory(&config.out)?;
    let network = Network::create(config.nodes).context("setting up the network namespaces")?;
    let kafka = kafka_cluster("up").context("starting the chaos Kafka cluster")?;
    let libs = PathBuf::from(kafka_cluster("libs")?);
    let mut fleet = Fleet::start(&FleetConfig {
        nodes: config.nodes,
        binary: &config.flotilla,
        dir: &config.out,
        kafka: &kafka,
        takeover_after: "2s",
    })
    .context("starting the fleet")?;
    let topic = format!("chaos-{}-{}", config.seed, unix_ms() as u64);
    create_topic(&fleet.bootstrap(), &topic)?;

    let epoch_ms = unix_ms();
    let nemesis = Recorder::create(
        &config.out.join("history-nemesis.jsonl"),
        epoch_ms,
        "nemesis",
        "nemesis",
    )?;
    let base = ClientArgs {
        bootstrap: fleet.bootstrap(),
        topic,
        partitions: TOPIC_PARTITIONS,
        process: String::new(),
        epoch_ms,
        stop_file: config.out.join("stop-producers"),
        // Only if the harness dies: clients then stop on their own after this long.
        duration_ms: (config.time + Duration::from_secs(600)).as_millis() as u64,
        timeout_ms: 120_000,
        max_in_flight: 32,
        group: None,
        out: PathBuf::new(),
    };
    let mut clients = Clients(start_clients(config, &base, &libs)?);
    warm_up(config, &clients.0)?;
    let faults = run_nemeses(config, &mut fleet, &network, &nemesis)?;
    recover(&mut fleet, &network, &nemesis)?;
    fs::write(config.out.join("stop-producers"), "")?;
    // Consumers read on a while after the last send, so what they read is complete.
    std::thread::sleep(SETTLE);
    fs::write(config.out.join("stop-consumers"), "")?;
    wait_clients(&mut clients, Duration::from_secs(120))?;
    final_reads(config, &base, &libs)?;
    let history = merge_histories(&config.out)?;
    Ok(Outcome {
        history,
        epoch_ms,
        faults,
    })
}

/// Empties `dir` for a new run. An earlier run's histories would be merged into this one's,
/// its stop files would stop the clients at once and its node data would be reused, so a
/// previous run's directory is removed; any other non-empty directory is refused.
fn fresh_directory(dir: &Path) -> anyhow::Result<()> {
    let earlier_run = dir.join("history-nemesis.jsonl").exists() || dir.join("node1").exists();
    if earlier_run {
        fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    } else if fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "{} is not empty and holds no chaos run; choose another --out",
            dir.display()
        );
    }
    fs::create_dir_all(dir)?;
    Ok(())
}

/// The clients: producers stop when the faults are over and healed; consumers a little
/// later.
fn start_clients(
    config: &RunConfig,
    base: &ClientArgs,
    libs: &Path,
) -> anyhow::Result<Vec<(String, Child)>> {
    let mut plan = vec![
        (Library::Rdkafka, Role::Producer, 0),
        (Library::Rdkafka, Role::Producer, 1),
        (Library::Rdkafka, Role::AssignConsumer, 0),
        (Library::Rdkafka, Role::GroupConsumer, 0),
        (Library::Rdkafka, Role::GroupConsumer, 1),
    ];
    if config.java {
        plan.push((Library::Java, Role::Producer, 0));
        plan.push((Library::Java, Role::AssignConsumer, 0));
    }
    plan.into_iter()
        .map(|(library, role, n)| {
            let name = format!("{}-{}-{n}", library_name(library), role_name(role));
            let args = ClientArgs {
                process: name.clone(),
                out: config.out.join(format!("history-{name}.jsonl")),
                stop_file: config.out.join(if role == Role::Producer {
                    "stop-producers"
                } else {
                    "stop-consumers"
                }),
                group: (role == Role::GroupConsumer).then(|| "chaos-group".to_string()),
                ..base.clone()
            };
            let log = config.out.join(format!("{name}.log"));
            Ok((name, workload::spawn(library, role, &args, libs, &log)?))
        })
        .collect()
}

/// Waits until every producer has had a write acknowledged, so faults strike clients that
/// are running (a JVM takes seconds to start) and not ones still starting.
fn warm_up(config: &RunConfig, clients: &[(String, Child)]) -> anyhow::Result<()> {
    let start = Instant::now();
    for (name, _) in clients.iter().filter(|(name, _)| name.contains("producer")) {
        let history = config.out.join(format!("history-{name}.jsonl"));
        while !fs::read_to_string(&history).is_ok_and(|h| h.contains("\"type\":\"ok\"")) {
            if start.elapsed() > Duration::from_secs(90) {
                bail!(
                    "{name} had no write acknowledged within 90 s; see {}",
                    config.out.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

fn run_nemeses(
    config: &RunConfig,
    fleet: &mut Fleet,
    network: &Network,
    record: &Recorder,
) -> anyhow::Result<usize> {
    let mut schedule = Schedule::new(config.seed, config.nemeses.clone());
    let end = Instant::now() + config.time;
    let mut count = 0;
    loop {
        let quiet = schedule.quiet();
        if Instant::now() + quiet >= end {
            break;
        }
        std::thread::sleep(quiet);
        let fault = schedule.strike(fleet, network)?;
        count += 1;
        eprintln!("chaos: {} on node(s) {:?}", fault.name, fault.nodes);
        record.event(
            "fault",
            "invoke",
            json!({"fault": fault.name, "nodes": fault.nodes}),
        );
        let window = schedule
            .window()
            .min(end.saturating_duration_since(Instant::now()));
        std::thread::sleep(window);
        fault.heal(fleet, network)?;
        record.event(
            "fault",
            "ok",
            json!({"fault": fault.name, "nodes": fault.nodes}),
        );
    }
    if let Some(left) = end.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
    Ok(count)
}

/// Heals everything and waits until the fleet is whole again.
fn recover(fleet: &mut Fleet, network: &Network, record: &Recorder) -> anyhow::Result<()> {
    network.heal_all()?;
    let ids: Vec<u8> = fleet.nodes.iter().map(|n| n.id).collect();
    for id in ids {
        fleet.resume(id)?;
        fleet.restart(id)?;
    }
    record.event("recover", "invoke", json!({}));
    fleet
        .wait_healthy(Duration::from_secs(90))
        .context("recovery after the faults")?;
    record.event("recover", "ok", json!({}));
    Ok(())
}

/// The client processes; any still running when the run ends early are killed, so no
/// namespace is kept alive by a stray client.
struct Clients(Vec<(String, Child)>);

impl Drop for Clients {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn wait_clients(clients: &mut Clients, deadline: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    for (name, child) in clients.0.iter_mut() {
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    eprintln!("chaos: client {name} exited with {status}");
                }
                break;
            }
            if start.elapsed() > deadline {
                let _ = child.kill();
                bail!("client {name} did not finish in {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

fn final_reads(config: &RunConfig, base: &ClientArgs, libs: &Path) -> anyhow::Result<()> {
    let args = ClientArgs {
        process: "final-reader".into(),
        out: config.out.join("history-final-reader.jsonl"),
        ..base.clone()
    };
    let log = config.out.join("final-reader.log");
    let status = workload::spawn(Library::Rdkafka, Role::FinalReader, &args, libs, &log)?.wait()?;
    if !status.success() {
        bail!("the final reads failed; see {}", log.display());
    }
    Ok(())
}

/// Merges every client's and the nemesis's history into `history.jsonl`, by time.
fn merge_histories(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut lines: Vec<(f64, String)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !(name.starts_with("history-") && name.ends_with(".jsonl")) {
            continue;
        }
        for line in fs::read_to_string(&path)?.lines() {
            // A client killed mid-line leaves a torn last line; it is not an operation.
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            lines.push((event["time_ms"].as_f64().unwrap_or(0.0), line.to_string()));
        }
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    let path = dir.join("history.jsonl");
    let text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
    fs::write(&path, text)?;
    Ok(path)
}

fn create_topic(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let partitions = TOPIC_PARTITIONS.to_string();
    let output = cluster_script()
        .args([
            "run-class",
            "org.apache.kafka.tools.TopicCommand",
            "--bootstrap-server",
            bootstrap,
        ])
        .args([
            "--create",
            "--topic",
            topic,
            "--partitions",
            &partitions,
            "--replication-factor",
            "3",
        ])
        .output()?;
    if !output.status.success() {
        bail!(
            "creating topic {topic}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn cluster_script() -> Command {
    let mut command = Command::new(crate::repo_root().join("scripts/kafka-cluster.sh"));
    let cache = std::env::var("FLOTILLA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/flotilla")
        });
    command
        .env("KAFKA_HOST", Host::Bridge.address().to_string())
        .env("KAFKA_BASE_PORT", KAFKA_BASE_PORT)
        .env("FLOTILLA_KAFKA_DIR", cache.join("chaos-cluster"));
    command
}

/// Runs `kafka-cluster.sh COMMAND` for the chaos cluster; returns its last stdout line.
pub fn kafka_cluster(command: &str) -> anyhow::Result<String> {
    let output = cluster_script()
        .arg(command)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("scripts/kafka-cluster.sh {command} failed");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout.lines().last().unwrap_or_default().trim().to_string())
}

fn library_name(library: Library) -> &'static str {
    match library {
        Library::Rdkafka => "rdkafka",
        Library::Java => "java",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Producer => "producer",
        Role::AssignConsumer => "assign",
        Role::GroupConsumer => "group",
        Role::FinalReader => "final",
    }
}
