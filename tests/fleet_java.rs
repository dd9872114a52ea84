//! The Java client through a fleet while a node is killed: Kafka's VerifiableProducer must
//! have every acknowledged record consumed by VerifiableConsumer, with no duplicates.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::fleet::Fleet;
use support::{create_topic_with_tool, kafka, kafka_tool, run_tool, unique_topic, wait_for};

const RECORDS: usize = 8_000;

type Acked = BTreeMap<(i64, i64), String>;

fn record_of(event: &Value) -> ((i64, i64), String) {
    let key = (
        event["partition"].as_i64().unwrap(),
        event["offset"].as_i64().unwrap(),
    );
    (key, event["value"].as_str().unwrap().to_string())
}

#[test]
fn verifiable_producer_survives_a_killed_node() {
    let mut fleet = Fleet::start(3, kafka(), "1s");
    let bootstrap = fleet.bootstrap();
    let topic = unique_topic("java-fleet");
    create_topic_with_tool(&bootstrap, &topic, 6);

    // VerifiableProducer sets retries=0 unless told otherwise; an idempotent producer
    // with retries is what the promise is about.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "enable.idempotence=true\nretries=2147483647\ndelivery.timeout.ms=120000\n",
    )
    .unwrap();
    let config_path = config.path().display().to_string();
    let max = RECORDS.to_string();
    let mut producer = kafka_tool(
        "org.apache.kafka.tools.VerifiableProducer",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            &topic,
            "--max-messages",
            &max,
            "--throughput",
            "2000",
            "--acks",
            "-1",
            "--command-config",
            &config_path,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let acked = Arc::new(Mutex::new(Acked::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let (acked, failures) = (acked.clone(), failures.clone());
        let stdout = producer.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(event) = serde_json::from_str::<Value>(&line.unwrap()) else {
                    continue;
                };
                match event["name"].as_str() {
                    Some("producer_send_success") => {
                        let (key, value) = record_of(&event);
                        acked.lock().unwrap().insert(key, value);
                    }
                    Some("producer_send_error") => failures.lock().unwrap().push(event.to_string()),
                    _ => {}
                }
            }
        })
    };
    wait_for("1,000 acknowledgements", Duration::from_secs(60), || {
        (acked.lock().unwrap().len() >= 1_000).then_some(())
    });
    fleet.node(2).kill();
    assert!(producer.wait().unwrap().success());
    reader.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} sends failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), RECORDS);
    fleet.wait_for_status(1, "node 2's identities taken over", |s| {
        s.all_owned_by_live_nodes() && !s.degraded
    });

    let consumed = run_tool(
        "org.apache.kafka.tools.VerifiableConsumer",
        &[
            "--bootstrap-server",
            &fleet.node(1).bootstrap,
            "--topic",
            &topic,
            "--group-id",
            &unique_topic("java-fleet-group"),
            "--max-messages",
            &max,
            "--verbose",
        ],
    );
    let mut seen: BTreeMap<(i64, i64), String> = BTreeMap::new();
    for line in String::from_utf8_lossy(&consumed.stdout).lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["name"] == "record_data" {
            let (key, value) = record_of(&event);
            assert!(seen.insert(key, value).is_none(), "offset consumed twice");
        }
    }
    let mut values: Vec<&String> = seen.values().collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), seen.len(), "a value was written twice");
    assert_eq!(seen, acked, "consumed exactly what was acknowledged");
}
