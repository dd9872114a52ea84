//! Kafka's VerifiableProducer (the Java client) as a test load: idempotent, acks=all,
//! infinite retries, printing a JSON event per send outcome.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::thread::JoinHandle;

use serde_json::Value;

use super::kafka_tool;

pub struct JavaProducer {
    child: Child,
    reader: Option<JoinHandle<()>>,
}

impl JavaProducer {
    /// Produces to `topic` at `rate` records a second; every JSON event it prints goes to
    /// `on_event`, on a thread of its own.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        rate: u64,
        mut on_event: impl FnMut(&Value) + Send + 'static,
    ) -> JavaProducer {
        let config = std::env::temp_dir().join(format!(
            "verifiable-producer-{}-{topic}.properties",
            std::process::id()
        ));
        std::fs::write(
            &config,
            "enable.idempotence=true\nacks=all\nretries=2147483647\n\
             delivery.timeout.ms=120000\nlinger.ms=1\n",
        )
        .unwrap();
        let rate = rate.to_string();
        let mut child = kafka_tool(
            "org.apache.kafka.tools.VerifiableProducer",
            &[
                "--bootstrap-server",
                bootstrap,
                "--topic",
                topic,
                "--throughput",
                &rate,
                "--acks",
                "-1",
                "--command-config",
                &config.display().to_string(),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    on_event(&event);
                }
            }
        });
        JavaProducer {
            child,
            reader: Some(reader),
        }
    }

    /// SIGTERM: the tool closes its producer, which waits for outstanding sends; returns
    /// once every event it printed has been handled.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
    }
}

impl Drop for JavaProducer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `count` records to `topic` with VerifiableProducer and the client properties
/// `properties` (TLS, SASL), written to a file in `dir`; returns how many were acknowledged.
pub fn produce_with_properties(
    bootstrap: &str,
    topic: &str,
    count: usize,
    properties: &str,
    dir: &std::path::Path,
) -> usize {
    let config = dir.join(format!("{topic}.properties"));
    std::fs::write(&config, properties).unwrap();
    let config = config.display().to_string();
    let count = count.to_string();
    let produced = super::run_tool(
        "org.apache.kafka.tools.VerifiableProducer",
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--max-messages",
            &count,
            "--acks",
            "-1",
            "--command-config",
            &config,
        ],
    );
    String::from_utf8_lossy(&produced.stdout)
        .matches("producer_send_success")
        .count()
}
