//! The request pipeline against real clients and the real Kafka cluster: every verdict a
//! filter can give (forward, rewrite, answer, delay, close), through the test filter that
//! the `test-hooks` build switches on with FLOTILLA_TEST_FILTER=on (see
//! src/proxy/filters/test_filter.rs: the verdict is chosen by the topic's name prefix).

mod support;

use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::rdkafka::{client_config as config, create_topic};
use support::wire::RawClient;
use support::{kafka, unique_topic, Node};

/// The test filter's delay (src/proxy/filters/test_filter.rs).
const DELAY: Duration = Duration::from_millis(600);

fn filtered_node() -> Node {
    Node::start_with_env(kafka(), "", &[("FLOTILLA_TEST_FILTER", "on")])
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    config(bootstrap).create().unwrap()
}

/// Partitions of `topic` as the real cluster reports them, bypassing the proxy.
fn partitions_in_kafka(topic: &str) -> Option<usize> {
    let consumer: BaseConsumer = config(kafka()).create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let found = &metadata.topics()[0];
    found.error().is_none().then(|| found.partitions().len())
}

fn wait_for_partitions(topic: &str, expected: usize) {
    support::wait_for(
        &format!("{topic} with {expected} partitions in Kafka"),
        Duration::from_secs(20),
        || (partitions_in_kafka(topic) == Some(expected)).then_some(()),
    );
}

#[tokio::test]
async fn forwarded_requests_reach_the_broker_and_back() {
    let node = filtered_node();
    let topic = unique_topic("plain");
    create_topic(&node.bootstrap, &topic, 1).await;
    let producer: FutureProducer = config(&node.bootstrap).create().unwrap();
    let record = FutureRecord::to(&topic).key("k").payload("forwarded");
    let delivery = producer
        .send(record, Duration::from_secs(30))
        .await
        .expect("a forwarded produce is acknowledged");
    assert_eq!((delivery.partition, delivery.offset), (0, 0));
}

#[tokio::test]
async fn a_rewritten_request_is_what_the_broker_executes() {
    let node = filtered_node();
    let topic = unique_topic("rewritten");
    create_topic(&node.bootstrap, &topic, 1).await;
    // The client asked for 1 partition; the filter rewrote the request to 3.
    wait_for_partitions(&topic, 3);
}

#[tokio::test]
async fn an_answered_produce_never_reaches_the_broker() {
    let node = filtered_node();
    let topic = unique_topic("answered");
    create_topic(&node.bootstrap, &topic, 1).await;
    let producer: FutureProducer = config(&node.bootstrap).create().unwrap();
    let record = FutureRecord::to(&topic).key("k").payload("refused");
    let (error, _) = producer
        .send(record, Duration::from_secs(30))
        .await
        .expect_err("the filter answers with an error");
    assert_eq!(
        error,
        KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    let consumer: BaseConsumer = config(kafka()).create().unwrap();
    let (low, high) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (0, 0), "nothing was written");
}

#[test]
fn a_delayed_request_is_answered_after_the_delay() {
    let node = filtered_node();
    let consumer: BaseConsumer = config(&node.bootstrap).create().unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("the connection is up");
    let topic = unique_topic("delayed");
    let asked = Instant::now();
    consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .expect("a delayed request is still answered");
    assert!(
        asked.elapsed() >= DELAY,
        "answered after {:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn a_close_verdict_refuses_the_request() {
    let node = filtered_node();
    let topic = unique_topic("closed");
    create_topic(&node.bootstrap, &topic, 1).await;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let deleted = admin(&node.bootstrap)
        .delete_topics(&[&topic], &options)
        .await;
    assert!(
        deleted.as_ref().map_or(true, |r| r[0].is_err()),
        "{deleted:?}"
    );
    assert_eq!(
        partitions_in_kafka(&topic),
        Some(1),
        "the topic is still there"
    );
    node.wait_for_log(&["filter test", "closes the connection"]);
}

/// An answer by the proxy is ready at once, the broker's take a round trip; the client must
/// still get them in request order.
#[test]
fn the_proxy_answers_in_request_order() {
    let node = filtered_node();
    let answered = unique_topic("answered");
    let mut client = RawClient::connect(&node.bootstrap);
    let metadata = MetadataRequest::default().with_topics(None);
    let partition = PartitionProduceData::default().with_index(0);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from(answered.clone())))
            .with_partition_data(vec![partition])]);
    let mut pipelined = Vec::new();
    for frame in [
        client.encode(ApiKey::Metadata, 12, &metadata),
        client.encode(ApiKey::Produce, 9, &produce),
        client.encode(ApiKey::Metadata, 12, &metadata),
    ] {
        pipelined.extend_from_slice(&(frame.len() as i32).to_be_bytes());
        pipelined.extend_from_slice(&frame);
    }
    client.send_raw(&pipelined);

    let mut first = client.read_frame().unwrap();
    let header = ResponseHeader::decode(&mut first, 1).unwrap();
    assert_eq!(
        header.correlation_id, 1,
        "the broker's answer to request 1 first"
    );
    MetadataResponse::decode(&mut first, 12).unwrap();

    let mut second = client.read_frame().unwrap();
    assert_eq!(
        ResponseHeader::decode(&mut second, 1)
            .unwrap()
            .correlation_id,
        2
    );
    let produce = ProduceResponse::decode(&mut second, 9).unwrap();
    let partition = &produce.responses[0].partition_responses[0];
    assert_eq!(
        partition.error_code,
        ResponseError::TopicAuthorizationFailed.code()
    );

    let mut third = client.read_frame().unwrap();
    assert_eq!(
        ResponseHeader::decode(&mut third, 1)
            .unwrap()
            .correlation_id,
        3
    );
}
