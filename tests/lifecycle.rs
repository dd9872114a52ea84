//! A node's life as an operator sees it: the connection limit, a graceful stop that lets
//! forwarded requests finish, and a node that exits instead of serving half-alive when a
//! background task dies.

mod support;

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use support::wire::RawClient;
use support::{create_topic_with_tool, kafka, unique_topic, wait_for, Node};

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn connections_beyond_the_limit_are_refused_until_one_closes() {
    let node = Node::start_with(kafka(), "[limits]\nmax_connections = 2\n");
    let mut first = RawClient::connect(&node.bootstrap);
    let mut second = RawClient::connect(&node.bootstrap);
    assert_eq!(first.api_versions().error_code, 0);
    assert_eq!(second.api_versions().error_code, 0);

    let mut refused = RawClient::connect(&node.bootstrap);
    refused.assert_closed_within(DEADLINE);
    node.wait_for_log(&["limits.max_connections reached"]);
    let counted = node.metric("flotilla_connections_closed_total", "max_connections");
    assert!(counted >= 1.0, "refusals are counted: {counted}");

    drop(first);
    wait_for("a free connection slot", DEADLINE, || {
        let mut client = RawClient::connect(&node.bootstrap);
        client.try_api_versions().ok()
    });
    assert_eq!(
        second.api_versions().error_code,
        0,
        "the others are unaffected"
    );
}

/// A Fetch the broker holds (empty partition, long max wait) is in flight when the node
/// gets SIGTERM: its answer still reaches the client, then the connection closes and the
/// node exits 0.
#[test]
fn sigterm_lets_forwarded_requests_finish_then_exits_cleanly() {
    let mut node = Node::start(kafka());
    let topic = unique_topic("stop");
    create_topic_with_tool(kafka(), &topic, 1);
    let leader_address = leader_of_partition_0(&node, &topic);
    let mut client = RawClient::connect(&leader_address);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(3000)
        .with_min_bytes(1)
        .with_max_bytes(1024 * 1024)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from(topic.clone())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1024 * 1024)])]);
    let request = client.encode(ApiKey::Fetch, 12, &fetch);
    client.send_frame(&request);
    wait_for("the Fetch to be forwarded", DEADLINE, || {
        (node.metric("flotilla_requests_total", "api=\"Fetch\"") >= 1.0).then_some(())
    });

    node.signal("TERM");
    let mut answer = client.read_frame().expect("the held Fetch is answered");
    let header = ResponseHeader::decode(&mut answer, 1).unwrap();
    let response = FetchResponse::decode(&mut answer, 12).unwrap();
    assert_eq!(response.error_code, 0);
    assert!(header.correlation_id > 0);
    client.assert_closed_within(DEADLINE);
    let status = node.wait_exit();
    assert!(status.success(), "exit status {status}");
    node.wait_for_log(&["stopped"]);
}

/// The advertised address of the identity that leads partition 0 of `topic`.
fn leader_of_partition_0(node: &Node, topic: &str) -> String {
    let mut client = RawClient::connect(&node.bootstrap);
    let request = MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from(topic.to_string())))),
    ]));
    wait_for("a leader for partition 0", DEADLINE, || {
        let metadata: MetadataResponse = client.call(ApiKey::Metadata, 12, &request);
        let leader = metadata.topics.first()?.partitions.first()?.leader_id;
        let broker = metadata.brokers.iter().find(|b| b.node_id == leader)?;
        Some(format!("{}:{}", broker.host, broker.port))
    })
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_node_whose_background_task_fails_exits_non_zero() {
    let mut node = Node::start_with_env(
        kafka(),
        "",
        &[(
            "FLOTILLA_TEST_FAIL_TASK",
            "backend refresh of cluster default",
        )],
    );
    let status = node.wait_exit();
    assert!(!status.success(), "exit status {status}");
    let line = node.wait_for_log(&["a background task ended", "backend refresh"]);
    assert!(line.contains("injected fault"), "{line}");
}
