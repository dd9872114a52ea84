//! The local Kafka cluster the benchmark runs against, Kafka's own load tools, and topic
//! administration (straight to the brokers, never through a target).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

/// Partitions of every benchmark topic: two per broker, so every identity carries load.
pub const PARTITIONS: i32 = 6;

/// The load tools' heap: large enough that the tool, not its garbage collector, sets the
/// pace, and the same for every target.
const TOOL_HEAP: &str = "-Xms512m -Xmx512m";

pub struct Kafka {
    pub bootstrap: String,
    /// Kafka's SSL listener, and the CA its certificates chain to.
    pub ssl_bootstrap: String,
    pub tls_ca: PathBuf,
    admin: AdminClient<DefaultClientContext>,
}

impl Kafka {
    /// Starts the local cluster (`scripts/kafka-cluster.sh up`, a no-op when it runs).
    pub fn up() -> anyhow::Result<Kafka> {
        let output = cluster_script()
            .arg("up")
            .stderr(Stdio::inherit())
            .output()
            .context("running scripts/kafka-cluster.sh up")?;
        if !output.status.success() {
            bail!("scripts/kafka-cluster.sh up failed");
        }
        let listing = String::from_utf8_lossy(&output.stdout);
        let bootstrap = listing
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        let ssl_bootstrap = listing
            .lines()
            .find_map(|l| l.strip_prefix("SSL "))
            .context("scripts/kafka-cluster.sh up printed no SSL listener")?
            .trim()
            .to_string();
        let tls_dir = cluster_script().arg("tls-dir").output()?;
        let tls_ca = PathBuf::from(String::from_utf8_lossy(&tls_dir.stdout).trim()).join("ca.pem");
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .context("creating the Kafka admin client")?;
        Ok(Kafka {
            bootstrap,
            ssl_bootstrap,
            tls_ca,
            admin,
        })
    }

    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "bootstrap": self.bootstrap,
            "brokers": 3,
            "replication_factor": 3,
            "partitions_per_topic": PARTITIONS,
        })
    }

    /// Creates `topic` afresh (6 partitions, replication factor 3), deleting any earlier one.
    pub fn recreate_topic(&self, topic: &str) -> anyhow::Result<()> {
        self.delete_topic(topic)?;
        let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(3));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        // A topic deleted a moment ago may still be marked for deletion; creation then
        // fails with TOPIC_ALREADY_EXISTS until the controller finishes.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let results = futures::executor::block_on(self.admin.create_topics([&new], &options))?;
            match results.into_iter().next() {
                Some(Ok(_)) => return Ok(()),
                Some(Err((_, e))) if std::time::Instant::now() < deadline => {
                    eprintln!("bench: creating {topic}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Some(Err((_, e))) => bail!("creating topic {topic}: {e}"),
                None => bail!("creating topic {topic}: no result"),
            }
        }
    }

    /// Deletes `topic` if it exists, so repeated runs do not fill the disk.
    pub fn delete_topic(&self, topic: &str) -> anyhow::Result<()> {
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = futures::executor::block_on(self.admin.delete_topics(&[topic], &options))?;
        for result in results {
            match result {
                Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((_, e)) => bail!("deleting topic {topic}: {e}"),
            }
        }
        Ok(())
    }

    /// Runs a Kafka tool class to completion and returns its standard output.
    pub fn tool(&self, class: &str, args: &[String]) -> anyhow::Result<String> {
        let output = cluster_script()
            .arg("run-class")
            .arg(class)
            .args(args)
            .env("KAFKA_TOOL_HEAP", TOOL_HEAP)
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("running {class}"))?;
        if !output.status.success() {
            bail!(
                "{class} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("FLOTILLA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/flotilla")
        })
}

fn cluster_script() -> Command {
    Command::new(repo_root().join("scripts/kafka-cluster.sh"))
}
