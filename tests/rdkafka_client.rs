//! librdkafka (the `rdkafka` crate) through one node against the real cluster: an
//! idempotent acks=all producer and a consumer group, checked record by record.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use support::{kafka, unique_topic, Node, IDENTITY_PORT_BASE};

const RECORDS: usize = 10_000;
const PARTITIONS: i32 = 6;

fn client_config(node: &Node) -> ClientConfig {
    support::rdkafka::client_config(&node.bootstrap)
}

async fn create_topic(node: &Node, topic: &str) {
    support::rdkafka::create_topic(&node.bootstrap, topic, PARTITIONS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_and_consumer_group_see_every_record_once() {
    let node = Node::start(kafka());
    let topic = unique_topic("rdkafka");
    create_topic(&node, &topic).await;

    let producer: FutureProducer = client_config(&node)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let sent: Vec<String> = (0..RECORDS).map(|i| format!("value-{i}")).collect();
    let deliveries = sent.iter().enumerate().map(|(i, value)| {
        let key = format!("key-{i}");
        let (producer, topic) = (&producer, &topic);
        async move {
            producer
                .send(
                    FutureRecord::to(topic).key(&key).payload(value),
                    Duration::from_secs(60),
                )
                .await
        }
    });
    let mut acknowledged = BTreeSet::new();
    for (i, delivery) in join_all(deliveries).await.into_iter().enumerate() {
        let delivery = delivery.unwrap_or_else(|(e, _)| panic!("record {i} not acknowledged: {e}"));
        assert!(acknowledged.insert((delivery.partition, delivery.offset)));
    }
    assert_eq!(acknowledged.len(), RECORDS);

    // What the client learned of the cluster is the node's addresses only.
    let metadata = producer
        .client()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.brokers().len(), 3);
    for broker in metadata.brokers() {
        assert_eq!(broker.host(), node.host);
        assert!((IDENTITY_PORT_BASE..IDENTITY_PORT_BASE + 3).contains(&(broker.port() as u16)));
    }
    assert_eq!(metadata.topics()[0].partitions().len(), PARTITIONS as usize);

    let group = unique_topic("group");
    let consumer: StreamConsumer = client_config(&node)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut received = Vec::with_capacity(RECORDS);
    let deadline = Instant::now() + Duration::from_secs(90);
    while received.len() < RECORDS {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {RECORDS}",
            received.len()
        );
        match tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            Ok(Ok(message)) => {
                let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
                received.push(value);
            }
            Ok(Err(e)) => panic!("consumer error: {e}"),
            Err(_) => continue,
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();

    let received_set: BTreeSet<&String> = received.iter().collect();
    assert_eq!(received.len(), received_set.len(), "duplicates consumed");
    assert_eq!(received_set, sent.iter().collect::<BTreeSet<_>>());

    // The committed offsets are the end of every partition.
    let mut partitions = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        partitions.add_partition(&topic, p);
    }
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap();
    for element in committed.elements() {
        let (_, high) = consumer
            .fetch_watermarks(&topic, element.partition(), Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            element.offset(),
            Offset::Offset(high),
            "partition {}",
            element.partition()
        );
    }
}
