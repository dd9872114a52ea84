//! An `assign()` consumer commits under a group id without being a member, so a reset
//! cannot tell it to re-read its positions. After the reset, its commits from the
//! connection it had before are refused, so it cannot silently put the old positions
//! back; a consumer started after the reset commits freely.

mod support;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use support::fleet::Fleet;
use support::groups::{committed, fill_partitions, proxyctl};
use support::{kafka, unique_topic, wait_for};

const RECORDS: i64 = 50;

fn assigned(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = support::rdkafka::client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(topic, 0);
    consumer.assign(&partitions).unwrap();
    consumer
}

fn commit(consumer: &BaseConsumer, topic: &str, offset: i64) -> rdkafka::error::KafkaResult<()> {
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    consumer.commit(&at, CommitMode::Sync)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assign_consumer_older_than_a_reset_cannot_undo_it() {
    let topic = unique_topic("reset-assign");
    support::rdkafka::create_topic(kafka(), &topic, 1).await;
    fill_partitions(&topic, 1, RECORDS, "record").await;
    let fleet = Fleet::start(1, kafka(), "2s");
    let node = &fleet.nodes[0];
    let group = unique_topic("reset-assign-group");

    let old = assigned(&fleet.bootstrap(), &group, &topic);
    let mut read = 0;
    wait_for(
        "the assign() consumer read everything",
        Duration::from_secs(30),
        || {
            if let Some(Ok(_)) = old.poll(Duration::from_millis(100)) {
                read += 1;
            }
            (read == RECORDS).then_some(())
        },
    );
    commit(&old, &topic, RECORDS).expect("a commit before the reset");

    proxyctl(
        node,
        &[
            "group",
            "reset",
            &group,
            "--topic",
            &topic,
            "--to-earliest",
            "--wait",
        ],
    );
    assert_eq!(committed(node, &group, &topic), Some(vec![Some(0)]));

    let refused = commit(&old, &topic, RECORDS).expect_err("the old position is refused");
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(RDKafkaErrorCode::UnknownMemberId),
        "{refused}"
    );
    assert_eq!(committed(node, &group, &topic), Some(vec![Some(0)]));

    let restarted = assigned(&fleet.bootstrap(), &group, &topic);
    commit(&restarted, &topic, 5).expect("a consumer started after the reset commits");
    assert_eq!(committed(node, &group, &topic), Some(vec![Some(5)]));
}
