//! The clients of a chaos run. Each is a process of its own in the clients' network
//! namespace, writing its own history file: librdkafka roles are this harness run as
//! `chaos client ROLE ...` (see `rdkafka`), Java roles are `jepsen/java/ChaosClient.java`
//! on Kafka's own client library. Both take the same options and write the same lines.

pub mod rdkafka;
pub mod record;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::net::Host;
use record::Recorder;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Producer,
    AssignConsumer,
    GroupConsumer,
    FinalReader,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::AssignConsumer => "assign-consumer",
            Role::GroupConsumer => "group-consumer",
            Role::FinalReader => "final-reader",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    Rdkafka,
    Java,
}

/// What every client role is told.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub partitions: u32,
    /// This client's name in the history, and the prefix of its values.
    #[arg(long)]
    pub process: String,
    /// Unix time in milliseconds of the run's start: the history's zero.
    #[arg(long)]
    pub epoch_ms: f64,
    /// The client stops once this file exists (the harness creates it).
    #[arg(long)]
    pub stop_file: PathBuf,
    /// A limit in case the harness dies before it creates the stop file.
    #[arg(long, default_value_t = 3_600_000)]
    pub duration_ms: u64,
    #[arg(long, default_value_t = 120_000)]
    pub timeout_ms: u64,
    /// Sends a producer keeps outstanding.
    #[arg(long, default_value_t = 32)]
    pub max_in_flight: usize,
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long)]
    pub out: PathBuf,
}

impl ClientArgs {
    /// True until the stop file appears or the time limit passes.
    pub fn running(&self, started: std::time::Instant) -> bool {
        started.elapsed() < Duration::from_millis(self.duration_ms) && !self.stop_file.exists()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    fn to_flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--bootstrap".into(),
            self.bootstrap.clone(),
            "--topic".into(),
            self.topic.clone(),
            "--partitions".into(),
            self.partitions.to_string(),
            "--process".into(),
            self.process.clone(),
            "--epoch-ms".into(),
            format!("{:.0}", self.epoch_ms),
            "--stop-file".into(),
            self.stop_file.display().to_string(),
            "--duration-ms".into(),
            self.duration_ms.to_string(),
            "--timeout-ms".into(),
            self.timeout_ms.to_string(),
            "--max-in-flight".into(),
            self.max_in_flight.to_string(),
            "--out".into(),
            self.out.display().to_string(),
        ];
        if let Some(group) = &self.group {
            flags.extend(["--group".into(), group.clone()]);
        }
        flags
    }
}

/// Runs one librdkafka role in this process (`chaos client ROLE ...`).
pub fn run_client(role: Role, args: &ClientArgs) -> anyhow::Result<()> {
    let record = Arc::new(
        Recorder::create(&args.out, args.epoch_ms, &args.process, "rdkafka")
            .with_context(|| format!("cannot write {}", args.out.display()))?,
    );
    match role {
        Role::Producer => rdkafka::produce(args, record),
        Role::AssignConsumer => rdkafka::consume_assigned(args, record),
        Role::GroupConsumer => rdkafka::consume_in_group(args, record),
        Role::FinalReader => rdkafka::read_to_end(args, record),
    }
}

/// Starts a client process in the clients' namespace; its stderr goes to `log`.
pub fn spawn(
    library: Library,
    role: Role,
    args: &ClientArgs,
    kafka_libs: &Path,
    log: &Path,
) -> anyhow::Result<Child> {
    let mut command: Command = match library {
        Library::Rdkafka => {
            let me = std::env::current_exe().context("the harness binary's path")?;
            let mut c = Host::Clients.command(&me.display().to_string());
            c.args(["client", role.name()]);
            c
        }
        Library::Java => {
            let source = crate::repo_root().join("jepsen/java/ChaosClient.java");
            let mut c = Host::Clients.command("java");
            c.args(["-Xmx256m", "-XX:+UseSerialGC", "-cp"])
                .arg(format!("{}/*", kafka_libs.display()))
                .arg(source)
                .arg(role.name());
            c
        }
    };
    let log = std::fs::File::create(log)?;
    command
        .args(args.to_flags())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start the {library:?} {} client", role.name()))
}
