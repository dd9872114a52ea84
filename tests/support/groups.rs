//! Consumer groups for tests: librdkafka consumers (the `rdkafka` crate) in one group, each
//! on a thread of its own, consuming until stopped and counting every record they are
//! given, with what the application sees of rebalances and errors; and offset resets
//! through `proxyctl`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flotilla::api::OffsetResetSummary;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Message};

use super::{wait_for, AdminAccess, Node};

/// What the application of one group sees.
#[derive(Default)]
pub struct Observed {
    /// Deliveries of each (partition, offset).
    pub deliveries: Mutex<BTreeMap<(i32, i64), u32>>,
    pub assignments: AtomicUsize,
    pub revocations: AtomicUsize,
    /// Errors the consumers' poll returned, and rebalance errors.
    pub errors: Mutex<Vec<String>>,
}

impl Observed {
    /// How many (partition, offset) were delivered exactly `times` times, and how many
    /// more often.
    pub fn delivered(&self, times: u32) -> (usize, usize) {
        let deliveries = self.deliveries.lock().unwrap();
        let exactly = deliveries.values().filter(|n| **n == times).count();
        let more = deliveries.values().filter(|n| **n > times).count();
        (exactly, more)
    }

    pub fn summary(&self) -> String {
        let errors = self.errors.lock().unwrap();
        format!(
            "{} assignments, {} revocations, {} errors {:?}",
            self.assignments.load(Ordering::Relaxed),
            self.revocations.load(Ordering::Relaxed),
            errors.len(),
            errors.iter().take(5).collect::<Vec<_>>()
        )
    }
}

struct Observer(Arc<Observed>);

impl ClientContext for Observer {}

impl ConsumerContext for Observer {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance) {
        match rebalance {
            Rebalance::Assign(_) => self.0.assignments.fetch_add(1, Ordering::Relaxed),
            Rebalance::Revoke(_) => self.0.revocations.fetch_add(1, Ordering::Relaxed),
            Rebalance::Error(e) => {
                self.0
                    .errors
                    .lock()
                    .unwrap()
                    .push(format!("rebalance: {e}"));
                0
            }
        };
    }
}

/// `members` librdkafka consumers of `topic` in `group` (cooperative-sticky, auto-commit
/// every second), consuming until dropped.
pub struct RdkafkaGroup {
    pub observed: Arc<Observed>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl RdkafkaGroup {
    pub fn start(bootstrap: &str, topic: &str, group: &str, members: usize) -> RdkafkaGroup {
        let observed = Arc::new(Observed::default());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..members)
            .map(|member| {
                let consumer: BaseConsumer<Observer> = super::rdkafka::client_config(bootstrap)
                    .set("group.id", group)
                    .set("client.id", format!("{group}-{member}"))
                    .set("partition.assignment.strategy", "cooperative-sticky")
                    .set("auto.offset.reset", "earliest")
                    .set("enable.auto.commit", "true")
                    .set("auto.commit.interval.ms", "1000")
                    .set("session.timeout.ms", "10000")
                    .create_with_context(Observer(observed.clone()))
                    .unwrap();
                consumer.subscribe(&[topic]).unwrap();
                let (observed, stop) = (observed.clone(), stop.clone());
                std::thread::spawn(move || consume(&consumer, &observed, &stop))
            })
            .collect();
        RdkafkaGroup {
            observed,
            stop,
            threads,
        }
    }

    /// Waits until every one of `per_partition` records of each of `partitions`
    /// partitions was delivered at least `times` times.
    pub fn wait_delivered(&self, partitions: i32, per_partition: i64, times: u32) {
        let expected = partitions as usize * per_partition as usize;
        wait_for(
            &format!("every record delivered {times} times"),
            Duration::from_secs(120),
            || {
                let deliveries = self.observed.deliveries.lock().unwrap();
                let reached = deliveries.values().filter(|n| **n >= times).count();
                (reached >= expected).then_some(())
            },
        );
    }
}

fn consume(consumer: &BaseConsumer<Observer>, observed: &Observed, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let key = (message.partition(), message.offset());
                *observed.deliveries.lock().unwrap().entry(key).or_default() += 1;
            }
            Some(Err(e)) => observed.errors.lock().unwrap().push(e.to_string()),
            None => {}
        }
    }
}

impl Drop for RdkafkaGroup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Runs `proxyctl ARGS` through `node`; fails the test if it fails.
pub fn proxyctl(node: &Node, args: &[&str]) -> String {
    let out = AdminAccess::default().proxyctl(node, args, "");
    assert!(
        out.status.success(),
        "proxyctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Every reset `node` lists.
pub fn resets(node: &Node) -> Vec<OffsetResetSummary> {
    let listed = proxyctl(node, &["group", "resets", "-o", "json"]);
    serde_json::from_str(&listed).unwrap_or_else(|e| panic!("{e}: {listed}"))
}

/// The reset of `group` made last, as `node` lists it.
pub fn last_reset(node: &Node, group: &str) -> Option<OffsetResetSummary> {
    resets(node)
        .into_iter()
        .filter(|r| r.group == group)
        .max_by_key(|r| r.created_at_ms)
}

/// Waits until `node` shows the last reset of `group` in a final state; returns it and
/// when it was seen there.
pub fn wait_reset_finished(
    node: &Node,
    group: &str,
    deadline: Duration,
) -> (OffsetResetSummary, Instant) {
    let reset = wait_for("the reset finished", deadline, || {
        last_reset(node, group)
            .filter(|r| matches!(r.state.as_str(), "done" | "expired" | "cancelled"))
    });
    (reset, Instant::now())
}

/// Produces `per_partition` records of `value` to each of `partitions` partitions of
/// `topic`, straight to Kafka, and waits until all are acknowledged.
pub async fn fill_partitions(topic: &str, partitions: i32, per_partition: i64, value: &str) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = super::rdkafka::client_config(super::kafka())
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut sends = Vec::new();
    for _ in 0..per_partition {
        for partition in 0..partitions {
            let record = FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(value);
            sends.push(producer.send(record, Duration::from_secs(30)));
        }
    }
    for send in sends {
        send.await.expect("record acknowledged");
    }
}
