//! Administration through one node with Kafka's own Java tools: topics created and
//! described, consumer groups listed and described. Their output must show the node's
//! addresses only.

mod support;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::{create_topic_with_tool, kafka, unique_topic, Node};

/// The tool's standard output.
fn run_tool(class: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&support::run_tool(class, args).stdout).to_string()
}

fn assert_no_real_broker_port(text: &str) {
    for address in kafka().split(',') {
        let port = address.rsplit(':').next().unwrap();
        assert!(
            !text.contains(&format!(":{port}")),
            "real broker port {port} leaked:\n{text}"
        );
    }
}

const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
const GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";

#[test]
fn create_and_describe_a_topic() {
    let node = Node::start(kafka());
    let topic = unique_topic("admin");
    let b = node.bootstrap.as_str();
    let created = create_topic_with_tool(b, &topic, 4);
    assert!(
        created.contains(&format!("Created topic {topic}")),
        "{created}"
    );

    let described = run_tool(
        TOPICS,
        &["--bootstrap-server", b, "--describe", "--topic", &topic],
    );
    assert!(described.contains("PartitionCount: 4"), "{described}");
    assert!(described.contains("ReplicationFactor: 3"), "{described}");
    assert_eq!(described.matches("Leader:").count(), 4, "{described}");

    let listed = run_tool(TOPICS, &["--bootstrap-server", b, "--list"]);
    assert!(listed.lines().any(|l| l == topic), "{listed}");
}

#[test]
fn list_and_describe_consumer_groups() {
    let node = Node::start(kafka());
    let topic = unique_topic("groups");
    let group = unique_topic("admin-group");
    let b = node.bootstrap.as_str();
    create_topic_with_tool(b, &topic, 2);

    // A group with committed offsets, committed through the node.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b)
        .set("broker.address.family", "v4")
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(0))
        .unwrap();
    offsets
        .add_partition_offset(&topic, 1, Offset::Offset(0))
        .unwrap();
    // On a fresh cluster the offsets topic is created by this first commit, and the
    // coordinator answers NOT_COORDINATOR (retriable) until it is ready.
    support::wait_for("the first offset commit", Duration::from_secs(30), || {
        consumer.commit(&offsets, CommitMode::Sync).ok()
    });
    drop(consumer);

    let listed = support::wait_for("the group in --list", Duration::from_secs(30), || {
        let listed = run_tool(GROUPS, &["--bootstrap-server", b, "--list"]);
        listed.lines().any(|l| l.trim() == group).then_some(listed)
    });
    assert_no_real_broker_port(&listed);

    let described = run_tool(
        GROUPS,
        &["--bootstrap-server", b, "--describe", "--group", &group],
    );
    assert_eq!(described.matches(&topic).count(), 2, "{described}");

    let state = run_tool(
        GROUPS,
        &[
            "--bootstrap-server",
            b,
            "--describe",
            "--group",
            &group,
            "--state",
        ],
    );
    assert!(
        state.contains(&format!("{}:", node.host)),
        "coordinator not shown at the node:\n{state}"
    );
    assert_no_real_broker_port(&state);
}
