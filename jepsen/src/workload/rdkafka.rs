//! The librdkafka clients of a chaos run, each a process of its own inside the clients'
//! network namespace (the harness runs itself with `client ROLE ...`):
//!
//! - producer: idempotent, acks=all, unique values, partitions round-robin, a bounded
//!   number of sends in flight; every send is an invoke and then ok (with its offset) or
//!   info: a send that failed may still have been written, so no failure is definite;
//! - assign-consumer: all partitions from the beginning, no group (monotonic reads apply);
//! - group-consumer: subscribed in a group, committing every second; rebalances are
//!   recorded so the checker can hold each new owner to the committed offset;
//! - final-reader: every partition from the beginning to the end offsets seen at start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use serde_json::{json, Value};

use super::record::Recorder;
use super::ClientArgs;

fn config(args: &ClientArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .set("broker.address.family", "v4")
        .set("log_level", "3");
    config
}

pub fn produce(args: &ClientArgs, record: Arc<Recorder>) -> anyhow::Result<()> {
    let producer: FutureProducer = config(args)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the producer")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Each partition gets its own share of the sends in flight, so one partition whose
    // leader cannot be reached does not stall the others: the history then shows how long
    // each partition was unavailable, not how long the producer's queue was full.
    let per_partition = (args.max_in_flight / args.partitions as usize).max(2);
    runtime.block_on(async {
        let started = Instant::now();
        let mut in_flight = FuturesUnordered::new();
        let mut outstanding = vec![0usize; args.partitions as usize];
        let mut sent: u64 = 0;
        let mut next_partition = 0usize;
        while args.running(started) {
            while let Some(partition) = next_free(&outstanding, &mut next_partition, per_partition)
            {
                outstanding[partition] += 1;
                let value = format!("{}-{sent}", args.process);
                sent += 1;
                record.event(
                    "send",
                    "invoke",
                    json!({"partition": partition, "value": value}),
                );
                in_flight.push(send(
                    &producer,
                    &args.topic,
                    partition as i32,
                    value,
                    record.clone(),
                ));
            }
            if let Some(partition) = in_flight.next().await {
                outstanding[partition as usize] -= 1;
            }
        }
        while in_flight.next().await.is_some() {}
    });
    Ok(())
}

/// The next partition, round-robin, with room for another send.
fn next_free(outstanding: &[usize], next: &mut usize, limit: usize) -> Option<usize> {
    for _ in 0..outstanding.len() {
        let partition = *next % outstanding.len();
        *next += 1;
        if outstanding[partition] < limit {
            return Some(partition);
        }
    }
    None
}

/// Sends one value and records how it ended; returns its partition.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    value: String,
    record: Arc<Recorder>,
) -> i32 {
    let message = FutureRecord::<(), String>::to(topic)
        .partition(partition)
        .payload(&value);
    match producer.send(message, Duration::from_secs(30)).await {
        Ok(delivery) => record.event(
            "send",
            "ok",
            json!({"partition": delivery.partition, "offset": delivery.offset, "value": value}),
        ),
        Err((e, _)) => record.event(
            "send",
            "info",
            json!({"partition": partition, "value": value, "error": e.to_string()}),
        ),
    }
    partition
}

/// Records every rebalance of a group consumer.
struct Rebalances {
    record: Arc<Recorder>,
    group: String,
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance) {
        let (phase, partitions) = match rebalance {
            Rebalance::Assign(list) => ("ok", partitions_of(list)),
            Rebalance::Revoke(list) => ("revoke", partitions_of(list)),
            Rebalance::Error(e) => {
                self.record.event(
                    "assign",
                    "info",
                    json!({"mode": "subscribe", "group": self.group, "error": e.to_string()}),
                );
                return;
            }
        };
        self.record.event(
            "assign",
            phase,
            json!({"mode": "subscribe", "group": self.group, "partitions": partitions}),
        );
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

pub fn consume_assigned(args: &ClientArgs, record: Arc<Recorder>) -> anyhow::Result<()> {
    let consumer: BaseConsumer = config(args)
        .set("group.id", format!("{}-unused", args.process))
        .set("enable.auto.commit", "false")
        .create()?;
    let partitions: Vec<i32> = (0..args.partitions as i32).collect();
    consumer.assign(&from_beginning(&args.topic, &partitions)?)?;
    record.event(
        "assign",
        "ok",
        json!({"mode": "assign", "partitions": partitions}),
    );
    let started = Instant::now();
    while args.running(started) {
        poll_batch(&consumer, &record, "assign", None);
    }
    Ok(())
}

pub fn consume_in_group(args: &ClientArgs, record: Arc<Recorder>) -> anyhow::Result<()> {
    let group = args
        .group
        .clone()
        .context("a group consumer needs --group")?;
    let context = Rebalances {
        record: record.clone(),
        group: group.clone(),
    };
    let consumer: BaseConsumer<Rebalances> = config(args)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(context)?;
    consumer.subscribe(&[&args.topic])?;
    let started = Instant::now();
    let mut last_commit = Instant::now();
    while args.running(started) {
        poll_batch(&consumer, &record, "subscribe", Some(&group));
        if last_commit.elapsed() > Duration::from_secs(1) {
            commit(&consumer, &record, &group);
            last_commit = Instant::now();
        }
    }
    Ok(())
}

fn commit<C: ConsumerContext>(consumer: &BaseConsumer<C>, record: &Recorder, group: &str) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    let offsets: BTreeMap<String, i64> = positions
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition().to_string(), o)),
            _ => None,
        })
        .collect();
    if offsets.is_empty() {
        return;
    }
    record.event(
        "commit",
        "invoke",
        json!({"group": group, "offsets": offsets}),
    );
    match consumer.commit(&positions, CommitMode::Sync) {
        Ok(()) => record.event("commit", "ok", json!({"group": group, "offsets": offsets})),
        Err(e) => record.event(
            "commit",
            "info",
            json!({"group": group, "offsets": offsets, "error": e.to_string()}),
        ),
    }
}

/// Reads every partition from the beginning to the end offsets seen now.
pub fn read_to_end(args: &ClientArgs, record: Arc<Recorder>) -> anyhow::Result<()> {
    let consumer: BaseConsumer = config(args)
        .set("group.id", format!("{}-unused", args.process))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut ends = BTreeMap::new();
    for partition in 0..args.partitions as i32 {
        let (_, high) = consumer
            .fetch_watermarks(&args.topic, partition, Duration::from_secs(30))
            .with_context(|| format!("end offset of partition {partition}"))?;
        ends.insert(partition, high);
    }
    let partitions: Vec<i32> = ends.keys().copied().collect();
    consumer.assign(&from_beginning(&args.topic, &partitions)?)?;
    let deadline = Instant::now() + args.timeout();
    let mut next: BTreeMap<i32, i64> = partitions.iter().map(|p| (*p, 0)).collect();
    while ends.iter().any(|(p, end)| next[p] < *end) {
        if Instant::now() > deadline {
            bail!("final reads did not reach the end of every partition: {next:?} of {ends:?}");
        }
        for (partition, offset) in poll_batch(&consumer, &record, "final", None) {
            next.insert(partition, offset + 1);
        }
    }
    Ok(())
}

fn from_beginning(topic: &str, partitions: &[i32]) -> anyhow::Result<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    for &p in partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    Ok(list)
}

/// Polls for up to 100 ms and records what came as one poll; returns (partition, offset)
/// of each record.
fn poll_batch<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    record: &Recorder,
    mode: &str,
    group: Option<&str>,
) -> Vec<(i32, i64)> {
    let until = Instant::now() + Duration::from_millis(100);
    let mut records: Vec<Value> = Vec::new();
    let mut seen = Vec::new();
    while let Some(remaining) = until.checked_duration_since(Instant::now()) {
        match consumer.poll(remaining) {
            Some(Ok(m)) => {
                let value = m.payload().map(|v| String::from_utf8_lossy(v).into_owned());
                records.push(
                    json!({"partition": m.partition(), "offset": m.offset(), "value": value}),
                );
                seen.push((m.partition(), m.offset()));
            }
            Some(Err(e)) => {
                record.event(
                    "poll",
                    "info",
                    json!({"mode": mode, "group": group, "error": e.to_string()}),
                );
            }
            None => break,
        }
    }
    if !records.is_empty() {
        record.event(
            "poll",
            "ok",
            json!({"mode": mode, "group": group, "records": records}),
        );
    }
    seen
}
