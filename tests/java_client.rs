//! The Java client through one node: Kafka's own VerifiableProducer and VerifiableConsumer,
//! which print one JSON event per acknowledged and per consumed record. Every acknowledged
//! record must be consumed, at the offset it was acknowledged at.

mod support;

use std::collections::BTreeMap;
use std::process::Output;

use serde_json::Value;
use support::{create_topic_with_tool, kafka, run_tool, unique_topic, Node};

const RECORDS: usize = 5_000;

/// (partition, offset) -> value, from the events named `event` in a tool's output.
fn records(output: &Output, event: &str) -> BTreeMap<(i64, i64), String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["name"] == event)
        .map(|e| {
            let key = (
                e["partition"].as_i64().unwrap(),
                e["offset"].as_i64().unwrap(),
            );
            (key, e["value"].as_str().unwrap().to_string())
        })
        .collect()
}

fn produce_then_consume(group_protocol: &str) {
    let node = Node::start(kafka());
    let b = node.bootstrap.as_str();
    let topic = unique_topic(&format!("java-{group_protocol}"));
    create_topic_with_tool(b, &topic, 6);
    let max = RECORDS.to_string();
    let produced = run_tool(
        "org.apache.kafka.tools.VerifiableProducer",
        &[
            "--bootstrap-server",
            b,
            "--topic",
            &topic,
            "--max-messages",
            &max,
            "--acks",
            "-1",
        ],
    );
    let acknowledged = records(&produced, "producer_send_success");
    assert_eq!(acknowledged.len(), RECORDS, "every send acknowledged");

    let consumed = run_tool(
        "org.apache.kafka.tools.VerifiableConsumer",
        &[
            "--bootstrap-server",
            b,
            "--topic",
            &topic,
            "--group-id",
            &unique_topic("java-group"),
            "--group-protocol",
            group_protocol,
            "--max-messages",
            &max,
            "--verbose",
        ],
    );
    let consumed_records = records(&consumed, "record_data");
    assert_eq!(
        consumed_records, acknowledged,
        "consumed exactly what was acknowledged"
    );
    let stdout = String::from_utf8_lossy(&consumed.stdout);
    assert!(
        stdout.contains("\"name\":\"offsets_committed\""),
        "{stdout}"
    );
    assert!(
        !stdout.contains("\"success\":false"),
        "a commit failed:\n{stdout}"
    );
}

#[test]
fn verifiable_producer_and_classic_group_consumer() {
    produce_then_consume("classic");
}

#[test]
fn verifiable_producer_and_kip848_group_consumer() {
    produce_then_consume("consumer");
}
