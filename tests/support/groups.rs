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

impl ClientContext for Observer {
    /// librdkafka's own log (with `debug` set, see [`DEBUG_ENV`]) goes to stderr.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        eprintln!("rdkafka {level:?} {fac}: {log_message}");
    }
}

/// Set to a librdkafka `debug` list (`cgrp,protocol`) to see the consumers' own log.
const DEBUG_ENV: &str = "FLOTILLA_TEST_RDKAFKA_DEBUG";

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
                let mut config = super::rdkafka::client_config(bootstrap);
                if let Ok(debug) = std::env::var(DEBUG_ENV) {
                    config
                        .set("debug", debug)
                        .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
                }
                let consumer: BaseConsumer<Observer> = config
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

/// A group of consumers whose deliveries a test counts.
pub trait RunningGroup {
    /// Deliveries of each (partition, offset) so far.
    fn deliveries(&self) -> BTreeMap<(i32, i64), u32>;
    /// What the application saw, for messages.
    fn summary(&self) -> String;
}

impl RunningGroup for RdkafkaGroup {
    fn deliveries(&self) -> BTreeMap<(i32, i64), u32> {
        self.observed.deliveries.lock().unwrap().clone()
    }

    fn summary(&self) -> String {
        self.observed.summary()
    }
}

/// Java consumers of one group, counted together.
pub struct JavaGroup(pub Vec<JavaGroupConsumer>);

impl RunningGroup for JavaGroup {
    fn deliveries(&self) -> BTreeMap<(i32, i64), u32> {
        let mut deliveries = BTreeMap::new();
        for consumer in &self.0 {
            for (_, event) in consumer.events.lock().unwrap().iter() {
                if let Event::Record { partition, offset } = event {
                    *deliveries.entry((*partition, *offset)).or_default() += 1;
                }
            }
        }
        deliveries
    }

    fn summary(&self) -> String {
        let each: Vec<String> = self.0.iter().map(|c| c.summary()).collect();
        each.join("; ")
    }
}

/// Waits until every one of `per_partition` records of each of `partitions` partitions
/// was delivered at least `times` times.
pub fn wait_delivered(group: &dyn RunningGroup, partitions: i32, per_partition: i64, times: u32) {
    let expected = partitions as usize * per_partition as usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let deliveries = group.deliveries();
        let reached = deliveries.values().filter(|n| **n >= times).count();
        if reached >= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for every record delivered {times} times; by partition \
             (offsets delivered fewer times, first of them): {:?}; {}",
            short_of(&deliveries, partitions, per_partition, times),
            group.summary()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many (partition, offset) were delivered exactly `times` times, and how many more.
pub fn delivered(group: &dyn RunningGroup, times: u32) -> (usize, usize) {
    let deliveries = group.deliveries();
    let exactly = deliveries.values().filter(|n| **n == times).count();
    let more = deliveries.values().filter(|n| **n > times).count();
    (exactly, more)
}

/// Per partition, how many of its records were delivered fewer than `times` times, and
/// the first such offset.
fn short_of(
    deliveries: &BTreeMap<(i32, i64), u32>,
    partitions: i32,
    per_partition: i64,
    times: u32,
) -> Vec<(i32, usize, i64)> {
    (0..partitions)
        .filter_map(|p| {
            let short: Vec<i64> = (0..per_partition)
                .filter(|o| deliveries.get(&(p, *o)).copied().unwrap_or(0) < times)
                .collect();
            Some((p, short.len(), *short.first()?))
        })
        .collect()
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

/// The group's committed offsets by partition, read with a dry run; `None` while the
/// fleet does not know the group.
pub fn committed(node: &Node, group: &str, topic: &str) -> Option<Vec<Option<i64>>> {
    let args = [
        "group",
        "reset",
        group,
        "--topic",
        topic,
        "--to-latest",
        "--dry-run",
        "-o",
        "json",
    ];
    let out = AdminAccess::default().proxyctl(node, &args, "");
    if !out.status.success() {
        return None;
    }
    let plan: OffsetResetSummary = serde_json::from_slice(&out.stdout).unwrap();
    Some(plan.partitions.iter().map(|p| p.current).collect())
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

/// What a Java consumer printed, with when it was read.
#[derive(Debug, Clone)]
pub enum Event {
    Record { partition: i32, offset: i64 },
    Revoked,
    Assigned,
    CommitFailed(String),
}

pub type Events = Arc<Mutex<Vec<(Instant, Event)>>>;

/// Kafka's VerifiableConsumer (the Java client) in a group, printing every record it
/// delivers.
pub struct JavaGroupConsumer {
    child: std::process::Child,
    reader: Option<std::thread::JoinHandle<()>>,
    events: Events,
}

impl JavaGroupConsumer {
    /// Starts a consumer of `topic` in `group` with the group protocol `protocol`
    /// (`classic` or `consumer`) and the client properties `properties`.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        group: &str,
        protocol: &str,
        properties: &str,
    ) -> Self {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let config = std::env::temp_dir().join(format!("{group}-{n}.properties"));
        std::fs::write(&config, properties).unwrap();
        let mut child = super::kafka_tool(
            "org.apache.kafka.tools.VerifiableConsumer",
            &[
                "--bootstrap-server",
                bootstrap,
                "--topic",
                topic,
                "--group-id",
                group,
                "--group-protocol",
                protocol,
                "--reset-policy",
                "earliest",
                "--command-config",
                &config.display().to_string(),
                "--verbose",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let events: Events = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let sink = events.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(event) = parse(&line) {
                    sink.lock().unwrap().push((Instant::now(), event));
                }
            }
        });
        JavaGroupConsumer {
            child,
            reader: Some(reader),
            events,
        }
    }

    /// Records delivered after `since`, per partition, in delivery order.
    pub fn delivered_after(&self, since: Instant) -> BTreeMap<i32, Vec<i64>> {
        self.delivered_between(since, Instant::now() + Duration::from_secs(3600))
    }

    /// Records delivered after `from` and before `to`, per partition, in delivery order.
    pub fn delivered_between(&self, from: Instant, to: Instant) -> BTreeMap<i32, Vec<i64>> {
        let mut delivered: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for (at, event) in self.events.lock().unwrap().iter() {
            if let Event::Record { partition, offset } = event {
                if *at > from && *at < to {
                    delivered.entry(*partition).or_default().push(*offset);
                }
            }
        }
        delivered
    }

    pub fn records_delivered(&self) -> usize {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Record { .. }))
            .count()
    }

    /// Whether every partition has delivered `end - 1` since `since`.
    pub fn reached(&self, since: Instant, end: &BTreeMap<i32, i64>) -> bool {
        let delivered = self.delivered_after(since);
        end.iter().all(|(p, end)| {
            delivered
                .get(p)
                .is_some_and(|offsets| offsets.contains(&(end - 1)))
        })
    }

    pub fn summary(&self) -> String {
        let events = self.events.lock().unwrap();
        let count = |f: fn(&Event) -> bool| events.iter().filter(|(_, e)| f(e)).count();
        let failed: Vec<&String> = events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::CommitFailed(why) => Some(why),
                _ => None,
            })
            .collect();
        format!(
            "{} assignments, {} revocations, {} failed commits {:?}",
            count(|e| matches!(e, Event::Assigned)),
            count(|e| matches!(e, Event::Revoked)),
            failed.len(),
            failed.iter().take(3).collect::<Vec<_>>()
        )
    }
}

impl Drop for JavaGroupConsumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn parse(line: &str) -> Option<Event> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    match event["name"].as_str()? {
        "record_data" => Some(Event::Record {
            partition: i32::try_from(event["partition"].as_i64()?).ok()?,
            offset: event["offset"].as_i64()?,
        }),
        "partitions_revoked" => Some(Event::Revoked),
        "partitions_assigned" => Some(Event::Assigned),
        "offsets_committed" if event["success"] == false => Some(Event::CommitFailed(
            event["error"].as_str().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
}
