//! Online consumer offset resets through real Kafka, real librdkafka consumers and a real
//! fleet, driven by `proxyctl group reset` as an operator would: a dry run shows the plan
//! and touches nothing; bad requests are refused by name; a scheduled reset can be
//! cancelled without the group noticing; a running cooperative-sticky group reset to
//! earliest consumes every record exactly once more, without restarting a consumer; and
//! `--to-datetime` resumes each partition at the first record at or after the instant.
//!
//! The tests print the time from the `proxyctl group reset` call to the group consuming
//! at the target.
//!
//! Known problem, so each reset here waits for a steady group (each consumer owning two
//! partitions): a reset that meets the group mid-rebalance (a member still joining, or
//! the previous reset's rejoin not settled; the driver then removes only the members
//! Kafka lists) has twice left a librdkafka member consuming its old partitions for about
//! a session timeout while another member was assigned all six, so both read the same
//! records. That member sent nothing during the half second the reset was applying (its
//! JoinGroup was already at the broker), so no node ever refused it.

mod support;

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flotilla::api::OffsetResetSummary;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::admin::AdminAccess;
use support::fleet::Fleet;
use support::{kafka, unique_topic, wait_for, Node};

/// Long enough for a group to form, consume and commit, or for a reset to be applied.
const SETTLE: Duration = Duration::from_secs(90);

fn proxyctl(node: &Node, args: &[&str]) -> Output {
    AdminAccess::default().proxyctl(node, args, "")
}

fn proxyctl_ok(node: &Node, args: &[&str]) -> String {
    let out = proxyctl(node, args);
    assert!(
        out.status.success(),
        "proxyctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// What proxyctl said when it failed, as it must.
fn proxyctl_refused(node: &Node, args: &[&str]) -> String {
    let out = proxyctl(node, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "proxyctl {args:?} should have been refused; it printed {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn reset_args<'a>(group: &'a str, topic: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["group", "reset", group, "--topic", topic];
    args.extend_from_slice(rest);
    args
}

/// Starts proxyctl without waiting for it.
fn spawn_proxyctl(node: &Node, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_proxyctl"))
        .args(["--endpoint", &node.admin])
        .args(args)
        .env_remove("FLOTILLA_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A dry run's plan, as JSON.
fn dry_run(node: &Node, group: &str, topic: &str, target: &[&str]) -> OffsetResetSummary {
    let mut rest = target.to_vec();
    rest.extend(["--dry-run", "-o", "json"]);
    serde_json::from_str(&proxyctl_ok(node, &reset_args(group, topic, &rest))).unwrap()
}

fn resets(node: &Node) -> Vec<OffsetResetSummary> {
    serde_json::from_str(&proxyctl_ok(node, &["group", "resets", "-o", "json"])).unwrap()
}

/// A fresh fleet commits feature level 4 shortly after it forms.
fn wait_for_resets_level(fleet: &Fleet) {
    for node in &fleet.nodes {
        fleet.wait_for_status(node.id, "feature level 4 (offset resets)", |s| {
            s.feature_level >= 4
        });
    }
}

/// Writes `count` records straight to Kafka, record `i` to partition `i % partitions`
/// with payload `i` and, if given, timestamp `timestamp(i)`.
async fn produce(topic: &str, partitions: i32, count: u64, timestamp: impl Fn(u64) -> Option<i64>) {
    let producer: FutureProducer = support::rdkafka::client_config(kafka())
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..count {
        let payload = i.to_string();
        let mut record = FutureRecord::<(), _>::to(topic)
            .payload(&payload)
            .partition((i % partitions as u64) as i32);
        if let Some(at) = timestamp(i) {
            record = record.timestamp(at);
        }
        sent.push(producer.send_result(record).unwrap());
    }
    for delivery in sent {
        delivery
            .await
            .unwrap()
            .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
    }
}

/// Reads a group's committed offsets and a topic's ends straight from Kafka, without
/// joining the group.
struct KafkaView {
    consumer: BaseConsumer,
    topic: String,
    partitions: i32,
}

impl KafkaView {
    fn new(group: &str, topic: &str, partitions: i32) -> KafkaView {
        let consumer = support::rdkafka::client_config(kafka())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        KafkaView {
            consumer,
            topic: topic.to_string(),
            partitions,
        }
    }

    fn ends(&self) -> Vec<i64> {
        (0..self.partitions)
            .map(|p| {
                self.consumer
                    .fetch_watermarks(&self.topic, p, Duration::from_secs(20))
                    .unwrap()
                    .1
            })
            .collect()
    }

    /// `None` while Kafka does not answer (a coordinator loading, say).
    fn committed(&self) -> Option<Vec<Option<i64>>> {
        let mut asked = TopicPartitionList::new();
        for p in 0..self.partitions {
            asked.add_partition(&self.topic, p);
        }
        let answer = self
            .consumer
            .committed_offsets(asked, Duration::from_secs(10))
            .ok()?;
        let offsets = (0..self.partitions)
            .map(|p| match answer.find_partition(&self.topic, p)?.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .collect();
        Some(offsets)
    }

    /// Waits until the group has committed every partition's end.
    fn wait_committed_at_end(&self) -> Vec<i64> {
        let ends = self.ends();
        let wanted: Vec<Option<i64>> = ends.iter().copied().map(Some).collect();
        wait_for(
            "the group committed the end of every partition",
            SETTLE,
            || (self.committed()? == wanted).then_some(()),
        );
        ends
    }
}

/// One record as a consumer application saw it.
#[derive(Debug, Clone)]
struct Delivery {
    consumer: usize,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    at: Instant,
}

/// What the consumers of a group observed: records, rebalances and errors, in order.
#[derive(Default)]
struct Observed {
    deliveries: Mutex<Vec<Delivery>>,
    events: Mutex<Vec<(usize, String, Instant)>>,
}

impl Observed {
    fn event(&self, consumer: usize, what: String) {
        self.events
            .lock()
            .unwrap()
            .push((consumer, what, Instant::now()));
    }

    /// How many times each (partition, offset) was delivered.
    fn counts(&self) -> BTreeMap<(i32, i64), usize> {
        let mut counts = BTreeMap::new();
        for d in self.deliveries.lock().unwrap().iter() {
            *counts.entry((d.partition, d.offset)).or_default() += 1;
        }
        counts
    }

    fn deliveries_since(&self, since: Instant) -> Vec<Delivery> {
        let all = self.deliveries.lock().unwrap();
        all.iter().filter(|d| d.at >= since).cloned().collect()
    }

    fn events_since(&self, since: Instant) -> Vec<(usize, String)> {
        let all = self.events.lock().unwrap();
        all.iter()
            .filter(|(_, _, at)| *at >= since)
            .map(|(c, what, _)| (*c, what.clone()))
            .collect()
    }

    fn per_consumer_since(&self, since: Instant) -> BTreeMap<usize, usize> {
        let mut counts = BTreeMap::new();
        for d in self.deliveries_since(since) {
            *counts.entry(d.consumer).or_default() += 1;
        }
        counts
    }

    /// Each consumer's partitions now, from its assign and revoke callbacks (incremental,
    /// as the cooperative protocol calls them).
    fn assignments(&self) -> BTreeMap<usize, Vec<i32>> {
        let mut owned: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
        for (consumer, what, _) in self.events.lock().unwrap().iter() {
            let (verb, list) = what.split_once(' ').unwrap_or((what, ""));
            let partitions: Vec<i32> = list
                .trim_matches(['[', ']'])
                .split(", ")
                .filter_map(|p| p.parse().ok())
                .collect();
            let mine = owned.entry(*consumer).or_default();
            match verb {
                "assigned" => mine.extend(partitions),
                "revoked" => mine.retain(|p| !partitions.contains(p)),
                _ => {}
            }
            mine.sort();
        }
        owned
    }

    fn rebalances(&self) -> usize {
        let all = self.events.lock().unwrap();
        all.iter()
            .filter(|(_, e, _)| e.starts_with("assigned") || e.starts_with("revoked"))
            .count()
    }
}

/// A consumer's callbacks, recorded as the application would see them.
struct Recorder {
    consumer: usize,
    observed: Arc<Observed>,
}

impl ClientContext for Recorder {
    fn error(&self, error: KafkaError, reason: &str) {
        self.observed
            .event(self.consumer, format!("error {error}: {reason}"));
    }
}

impl ConsumerContext for Recorder {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |tpl: &TopicPartitionList| {
            let mut ps: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            ps.sort();
            format!("{ps:?}")
        };
        let what = match rebalance {
            Rebalance::Assign(tpl) => format!("assigned {}", partitions(tpl)),
            Rebalance::Revoke(tpl) => format!("revoked {}", partitions(tpl)),
            Rebalance::Error(e) => format!("rebalance error {e}"),
        };
        self.observed.event(self.consumer, what);
    }
}

/// `count` librdkafka consumers of `group` (cooperative-sticky, auto-commit every
/// second), each polling `topic` through the fleet in its own thread until stopped.
struct GroupConsumers {
    observed: Arc<Observed>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl GroupConsumers {
    fn start(fleet: &Fleet, group: &str, topic: &str, count: usize) -> GroupConsumers {
        let observed = Arc::new(Observed::default());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|i| {
                let recorder = Recorder {
                    consumer: i,
                    observed: observed.clone(),
                };
                let consumer: BaseConsumer<Recorder> =
                    support::rdkafka::client_config(&fleet.bootstrap())
                        .set("group.id", group)
                        .set("client.id", format!("reset-test-{i}"))
                        .set("partition.assignment.strategy", "cooperative-sticky")
                        .set("auto.offset.reset", "earliest")
                        .set("auto.commit.interval.ms", "1000")
                        .set("session.timeout.ms", "10000")
                        .set("heartbeat.interval.ms", "1000")
                        .set("fetch.wait.max.ms", "200")
                        .create_with_context(recorder)
                        .unwrap();
                consumer.subscribe(&[topic]).unwrap();
                let (observed, stop) = (observed.clone(), stop.clone());
                std::thread::spawn(move || consume(i, consumer, &observed, &stop))
            })
            .collect();
        GroupConsumers {
            observed,
            stop,
            threads,
        }
    }

    /// Whether every consumer thread is still running (none restarted or crashed).
    fn all_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for thread in self.threads {
            thread.join().expect("a consumer thread panicked");
        }
    }
}

fn consume(i: usize, consumer: BaseConsumer<Recorder>, observed: &Observed, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => observed.deliveries.lock().unwrap().push(Delivery {
                consumer: i,
                partition: message.partition(),
                offset: message.offset(),
                timestamp: message.timestamp().to_millis(),
                at: Instant::now(),
            }),
            Some(Err(e)) => observed.event(i, format!("poll error {e}")),
            None => {}
        }
    }
    consumer.close_queue().ok();
}

/// Waits until every record below `ends` was delivered at least `times` times.
fn wait_delivered(observed: &Observed, ends: &[i64], times: usize, what: &str) {
    wait_for(what, SETTLE, || {
        let counts = observed.counts();
        let all = ends.iter().enumerate().all(|(p, end)| {
            (0..*end).all(|o| counts.get(&(p as i32, o)).copied().unwrap_or(0) >= times)
        });
        all.then_some(())
    });
}

/// The seconds proxyctl printed: `... done after 2.3s`.
fn printed_seconds(out: &str) -> f64 {
    out.trim()
        .rsplit(' ')
        .next()
        .and_then(|s| s.strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no elapsed time in {out:?}"))
}

/// For each partition, when the consumers first read `target[p]` after `since`; `None`
/// for a partition with nothing to read again.
fn resumed_at(observed: &Observed, since: Instant, targets: &[i64]) -> Vec<Option<Duration>> {
    let again = observed.deliveries_since(since);
    targets
        .iter()
        .enumerate()
        .map(|(p, target)| {
            again
                .iter()
                .find(|d| d.partition == p as i32 && d.offset == *target)
                .map(|d| d.at - since)
        })
        .collect()
}

fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_refusals_and_cancel_leave_the_group_alone() {
    const PARTITIONS: i32 = 3;
    let fleet = Fleet::start(3, kafka(), "2s");
    wait_for_resets_level(&fleet);
    let node = &fleet.nodes[1];
    let topic = unique_topic("reset-dry");
    let group = unique_topic("reset-dry-group");
    support::rdkafka::create_topic(kafka(), &topic, PARTITIONS).await;
    produce(&topic, PARTITIONS, 30, |_| None).await;
    let view = KafkaView::new(&group, &topic, PARTITIONS);
    let consumers = GroupConsumers::start(&fleet, &group, &topic, 1);
    let ends = view.ends();
    wait_delivered(&consumers.observed, &ends, 1, "the group read every record");
    view.wait_committed_at_end();
    let rebalances_before = consumers.observed.rebalances();

    // The plan, as a table and as JSON: each partition's committed end, and 0.
    let table = proxyctl_ok(
        node,
        &reset_args(&group, &topic, &["--to-earliest", "--dry-run"]),
    );
    println!("dry run:\n{table}");
    assert!(table.starts_with("dry run (nothing changed)"), "{table}");
    let header = table.lines().nth(1).unwrap();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["TOPIC", "PARTITION", "CURRENT", "TARGET"],
        "{table}"
    );
    for (p, end) in ends.iter().enumerate() {
        let row = format!("{topic} {p} {end} 0");
        let found = table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == row);
        assert!(found, "no row {row:?} in\n{table}");
    }
    let plan = dry_run(node, &group, &topic, &["--shift-by", "-4"]);
    assert_eq!((plan.state.as_str(), plan.id.as_str()), ("dry-run", ""));
    assert_eq!(plan.spec, "shift-by -4");
    for p in &plan.partitions {
        assert_eq!(p.current, Some(ends[p.partition as usize]));
        assert_eq!(p.target, ends[p.partition as usize] - 4);
    }

    // Refusals, each naming what is wrong.
    let unknown_group = unique_topic("no-such-group");
    for extra in [&["--dry-run"][..], &[]] {
        let mut rest = vec!["--to-earliest"];
        rest.extend_from_slice(extra);
        let refused = proxyctl_refused(node, &reset_args(&unknown_group, &topic, &rest));
        println!("unknown group: {refused}");
        assert!(refused.contains(&unknown_group), "{refused}");
    }
    let unknown_topic = unique_topic("no-such-topic");
    let refused = proxyctl_refused(
        node,
        &reset_args(&group, &unknown_topic, &["--to-earliest", "--dry-run"]),
    );
    println!("unknown topic: {refused}");
    assert!(refused.contains(&unknown_topic), "{refused}");
    for (bad, field) in [
        (&["--to-datetime", "yesterday"][..], "target"),
        (&["--to-offset", "-3"], "target"),
    ] {
        let refused = proxyctl_refused(node, &reset_args(&group, &topic, bad));
        println!("{bad:?}: {refused}");
        assert!(refused.contains(&format!("{field}:")), "{refused}");
    }
    let bad_partition = format!("{topic}:0,x");
    let refused = proxyctl_refused(
        node,
        &reset_args(&group, &bad_partition, &["--to-earliest"]),
    );
    assert!(
        refused.contains("topics:") && refused.contains("\"x\""),
        "{refused}"
    );
    let refused = proxyctl_refused(node, &["group", "reset", &group, "--topic", &topic]);
    assert!(refused.contains("--to-earliest"), "no target: {refused}");

    // A scheduled reset is pending; a second one of the group is refused; cancelling
    // it leaves the group as it was, and `--wait` on it fails saying so.
    let waiting = spawn_proxyctl(
        node,
        &reset_args(
            &group,
            &topic,
            &["--to-earliest", "--start-in", "1h", "--wait"],
        ),
    );
    let pending = wait_for("the scheduled reset listed", SETTLE, || {
        resets(node).into_iter().find(|r| r.group == group)
    });
    let id = pending.id.clone();
    assert_eq!(id.len(), 12, "{pending:?}");
    assert_eq!(pending.state, "pending");
    assert_eq!(pending.requested_by, "anonymous");
    let starts_in = pending.start_at_ms - pending.created_at_ms;
    assert!((3_599_000..=3_600_000).contains(&starts_in), "{pending:?}");
    let second = proxyctl_refused(node, &reset_args(&group, &topic, &["--to-latest"]));
    println!("second reset: {second}");
    assert!(
        second.contains(&id) && second.contains("pending"),
        "{second}"
    );
    let cancelled = proxyctl_ok(&fleet.nodes[2], &["group", "reset-cancel", &id]);
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    let waited = waiting.wait_with_output().unwrap();
    let told = String::from_utf8_lossy(&waited.stderr);
    assert!(
        !waited.status.success(),
        "--wait on a cancelled reset succeeded"
    );
    assert!(told.contains("ended cancelled after"), "{told}");
    let again = proxyctl_refused(node, &["group", "reset-cancel", &id]);
    assert!(again.contains("only a pending reset"), "{again}");
    let table = proxyctl_ok(node, &["group", "resets"]);
    println!("group resets:\n{table}");
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        row.contains("cancelled") && row.contains("to-earliest"),
        "{row}"
    );
    let shown: OffsetResetSummary = serde_json::from_str(
        &AdminAccess::default()
            .get(&format!("{}/api/v1/offset-resets/{id}", node.admin))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(shown.state, "cancelled");
    assert!(shown.partitions.iter().all(|p| !p.applied));

    // A marker record on each partition: once the group has read and committed it, any
    // change the dry runs or the cancelled reset made would have shown.
    produce(&topic, PARTITIONS, PARTITIONS as u64, |_| None).await;
    let ends = view.ends();
    wait_delivered(&consumers.observed, &ends, 1, "the group read the markers");
    view.wait_committed_at_end();
    let counts = consumers.observed.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records read again: {twice:?}");
    assert_eq!(
        consumers.observed.rebalances(),
        rebalances_before,
        "the running consumer was rebalanced: {:?}",
        consumers.observed.events.lock().unwrap()
    );
    assert!(consumers.all_running());
    consumers.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_cooperative_group_reset_to_earliest_reads_everything_once_more() {
    const PARTITIONS: i32 = 6;
    const RECORDS: u64 = 600;
    const RESETS_WHILE_PRODUCING: usize = 10;
    let fleet = Fleet::start(3, kafka(), "2s");
    wait_for_resets_level(&fleet);
    let topic = unique_topic("reset-earliest");
    let group = unique_topic("reset-earliest-group");
    support::rdkafka::create_topic(kafka(), &topic, PARTITIONS).await;
    produce(&topic, PARTITIONS, RECORDS, |_| None).await;
    let view = KafkaView::new(&group, &topic, PARTITIONS);
    let consumers = GroupConsumers::start(&fleet, &group, &topic, 3);
    let ends = view.ends();
    wait_delivered(&consumers.observed, &ends, 1, "the group read every record");
    // A steady group: each of the three owns two partitions (a reset while a member is
    // still joining is another case).
    wait_steady(&consumers.observed);
    view.wait_committed_at_end();
    let once = consumers.observed.counts();
    assert!(
        once.values().all(|n| *n == 1),
        "read twice before the reset"
    );
    let mut figures = Vec::new();

    // At rest: every record read exactly once more.
    let (figure, out) = reset_to_earliest(&fleet, &consumers, &group, &topic, 2);
    println!("proxyctl: {out}");
    figures.push(figure);
    wait_delivered(&consumers.observed, &ends, 2, "every record read once more");
    view.wait_committed_at_end();
    let counts = consumers.observed.counts();
    let wrong: Vec<_> = counts.iter().filter(|(_, n)| **n != 2).collect();
    assert!(
        wrong.is_empty(),
        "records not read exactly twice: {wrong:?}"
    );
    assert_eq!(counts.len() as u64, RECORDS);
    let per_consumer = consumers.observed.per_consumer_since(figure.asked);
    println!(
        "what the consumers observed after the reset: {:#?}",
        consumers.observed.events_since(figure.asked)
    );

    // Again and again while records keep coming: each reset makes every partition start
    // over at 0 exactly once, and nothing is skipped or read twice in between.
    let stop = Arc::new(AtomicBool::new(false));
    let producing = tokio::spawn(produce_until(topic.clone(), PARTITIONS, stop.clone()));
    for reset in 0..RESETS_WHILE_PRODUCING {
        let passes = reset + 2;
        wait_passes(
            &consumers.observed,
            "every partition read 100 records since the last reset",
            |all| {
                let ready = all
                    .values()
                    .all(|p| p.len() == passes && p[passes - 1].len() >= 100);
                (all.len() == PARTITIONS as usize && ready).then_some(())
            },
        );
        wait_steady(&consumers.observed);
        let (figure, _) = reset_to_earliest(&fleet, &consumers, &group, &topic, passes + 1);
        figures.push(figure);
    }
    stop.store(true, Ordering::Release);
    let produced = producing.await.unwrap();
    let ends = view.ends();
    wait_passes(
        &consumers.observed,
        "the group read to the end after the last reset",
        |all| {
            all.iter()
                .all(|(p, passes)| {
                    let last = passes.last().and_then(|pass| pass.last());
                    last.is_some_and(|(o, _)| *o == ends[*p as usize] - 1)
                })
                .then_some(())
        },
    );
    view.wait_committed_at_end();
    let all = passes_by_partition(&consumers.observed);
    for (p, passes) in &all {
        assert_eq!(
            passes.len(),
            RESETS_WHILE_PRODUCING + 2,
            "partition {p}: passes"
        );
        for (i, pass) in passes.iter().enumerate() {
            let offsets: Vec<i64> = pass.iter().map(|(o, _)| *o).collect();
            let expected: Vec<i64> = (0..offsets.len() as i64).collect();
            assert!(
                offsets == expected,
                "partition {p}, pass {i} is not 0.. in order"
            );
        }
        assert_eq!(passes.last().unwrap().len() as i64, ends[*p as usize]);
    }
    assert!(consumers.all_running(), "a consumer stopped");
    print_figures(
        &format!(
            "reset to earliest, 3 librdkafka consumers (cooperative-sticky), 6 partitions, \
             the first at rest ({RECORDS} records), then {RESETS_WHILE_PRODUCING} while \
             {produced} more records were produced; records read again per consumer after \
             the first: {per_consumer:?}"
        ),
        &figures,
    );
    print_callbacks(&consumers.observed, &figures);
    print_driver_log(&fleet);
    // Every node shows the resets done, each from its own copy of the committed state.
    for node in &fleet.nodes {
        wait_for("every node shows the resets done", SETTLE, || {
            let done = resets(node)
                .into_iter()
                .filter(|r| r.group == group && r.state == "done")
                .filter(|r| r.partitions.iter().all(|p| p.applied && p.target == 0))
                .count();
            (done == figures.len()).then_some(())
        });
    }
    consumers.stop();
}

/// Waits until each of the three consumers owns two partitions: the group is steady.
/// (A reset that meets the group mid-rebalance, a member still joining, is another case.)
fn wait_steady(observed: &Observed) {
    wait_for("each consumer owning two partitions", SETTLE, || {
        let owned = observed.assignments();
        let steady = owned.len() == 3 && owned.values().all(|p| p.len() == 2);
        steady.then_some(())
    });
}

/// One reset, timed from the `proxyctl group reset` call.
#[derive(Debug, Clone, Copy)]
struct Figure {
    asked: Instant,
    /// Until `proxyctl --wait` returned.
    waited: Duration,
    /// Until every partition was read at its target again.
    consuming: Duration,
}

/// `proxyctl group reset --to-earliest --wait`, then waits until every partition has
/// started pass `passes` (starting over at 0).
fn reset_to_earliest(
    fleet: &Fleet,
    consumers: &GroupConsumers,
    group: &str,
    topic: &str,
    passes: usize,
) -> (Figure, String) {
    let asked = Instant::now();
    let out = proxyctl_ok(
        &fleet.nodes[2],
        &reset_args(group, topic, &["--to-earliest", "--wait"]),
    );
    let waited = asked.elapsed();
    assert!(out.contains("done"), "{out}");
    let restarts = wait_passes(
        &consumers.observed,
        "every partition read from 0 again",
        |all| {
            all.values()
                .map(|p| Some(p.get(passes - 1)?.first()?.1))
                .collect::<Option<Vec<Instant>>>()
        },
    );
    let last = restarts.into_iter().max().unwrap();
    let figure = Figure {
        asked,
        waited,
        consuming: last - asked,
    };
    (figure, out)
}

type Passes = BTreeMap<i32, Vec<Vec<(i64, Instant)>>>;

/// Polls the consumers' passes until `check` holds; fails after [`SETTLE`] with each
/// partition's passes (first..last offset) and the consumers' callbacks, to see why.
fn wait_passes<T>(observed: &Observed, what: &str, check: impl Fn(&Passes) -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        let all = passes_by_partition(observed);
        if let Some(value) = check(&all) {
            return value;
        }
        if start.elapsed() > SETTLE {
            let shown: BTreeMap<i32, Vec<String>> = all
                .iter()
                .map(|(p, passes)| {
                    let ranges = passes.iter().map(|pass| {
                        let (first, last) = (pass[0].0, pass[pass.len() - 1].0);
                        format!("{first}..={last} ({} records)", pass.len())
                    });
                    (*p, ranges.collect())
                })
                .collect();
            let events: Vec<(usize, String)> = observed.events_since(first_instant(observed));
            panic!(
                "timed out waiting for {what}; passes by partition {shown:#?}; events {events:#?}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// When the first thing was observed (to show every event).
fn first_instant(observed: &Observed) -> Instant {
    let events = observed.events.lock().unwrap();
    events.first().map_or_else(Instant::now, |(_, _, at)| *at)
}

/// Each partition's deliveries in the order they came, cut into passes wherever the
/// offset goes back: (offset, when) of each.
fn passes_by_partition(observed: &Observed) -> Passes {
    let mut all: BTreeMap<i32, Vec<Vec<(i64, Instant)>>> = BTreeMap::new();
    for d in observed.deliveries.lock().unwrap().iter() {
        let passes = all.entry(d.partition).or_default();
        let back = passes
            .last()
            .and_then(|p| p.last())
            .is_none_or(|(last, _)| d.offset <= *last);
        if back {
            passes.push(Vec::new());
        }
        passes.last_mut().unwrap().push((d.offset, d.at));
    }
    all
}

/// Writes a record to each partition every 100 ms until `stop`; returns how many.
async fn produce_until(topic: String, partitions: i32, stop: Arc<AtomicBool>) -> u64 {
    let producer: FutureProducer = support::rdkafka::client_config(kafka())
        .set("acks", "all")
        .create()
        .unwrap();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !stop.load(Ordering::Acquire) {
        tick.tick().await;
        for p in 0..partitions {
            let payload = sent.to_string();
            let record = FutureRecord::<(), _>::to(&topic)
                .payload(&payload)
                .partition(p);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
            sent += 1;
        }
    }
    sent
}

/// What the application saw during each reset: its rebalance callbacks and errors, with
/// the time since the reset was asked.
fn print_callbacks(observed: &Observed, figures: &[Figure]) {
    let events = observed.events.lock().unwrap();
    for (i, figure) in figures.iter().enumerate() {
        let until = figures.get(i + 1).map(|f| f.asked);
        let during: Vec<String> = events
            .iter()
            .filter(|(_, _, at)| *at >= figure.asked && until.is_none_or(|u| *at < u))
            .map(|(c, what, at)| format!("+{} consumer {c} {what}", seconds(*at - figure.asked)))
            .collect();
        println!("reset {i}: {}", during.join("; "));
    }
}

/// The Raft leaders' account of each reset (phases, members removed), for the figures.
fn print_driver_log(fleet: &Fleet) {
    for node in &fleet.nodes {
        for line in node.log().lines() {
            if line.contains("offset_resets::driver") {
                println!("node {}: {line}", node.id);
            }
        }
    }
}

fn print_figures(what: &str, figures: &[Figure]) {
    let stats = |f: fn(&Figure) -> Duration| {
        let mut all: Vec<Duration> = figures.iter().map(f).collect();
        all.sort();
        let each: Vec<String> = all.iter().map(|d| seconds(*d)).collect();
        format!(
            "median {} max {} (each: {})",
            seconds(all[all.len() / 2]),
            seconds(*all.last().unwrap()),
            each.join(" ")
        )
    };
    println!(
        "FIGURES {what}: {} resets; proxyctl --wait returned after {}; every partition \
         consuming at its target after {}",
        figures.len(),
        stats(|f| f.waited),
        stats(|f| f.consuming),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_datetime_resumes_at_the_first_record_at_or_after_the_instant() {
    const PARTITIONS: i32 = 3;
    const RECORDS: u64 = 60;
    let fleet = Fleet::start(3, kafka(), "2s");
    wait_for_resets_level(&fleet);
    let node = &fleet.nodes[0];
    let topic = unique_topic("reset-datetime");
    let group = unique_topic("reset-datetime-group");
    support::rdkafka::create_topic(kafka(), &topic, PARTITIONS).await;
    // Record i is stamped base + i seconds; the instant falls between records 30 and 31.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now_ms / 1000 - 7200) * 1000;
    let stamp = move |i: u64| base + i as i64 * 1000;
    produce(&topic, PARTITIONS, RECORDS, |i| Some(stamp(i))).await;
    let instant_ms = base + 30_500;
    let instant =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(instant_ms as u64))
            .to_string();
    let instant = instant.trim_end_matches('Z').to_string();
    // Partition p holds records p, p + 3, ...: offset k is record 3k + p.
    let expected: Vec<i64> = (0..PARTITIONS as i64)
        .map(|p| {
            (0..)
                .find(|k| stamp((3 * k + p) as u64) >= instant_ms)
                .unwrap()
        })
        .collect();

    let view = KafkaView::new(&group, &topic, PARTITIONS);
    let consumers = GroupConsumers::start(&fleet, &group, &topic, 2);
    let ends = view.ends();
    wait_delivered(&consumers.observed, &ends, 1, "the group read every record");
    view.wait_committed_at_end();

    let plan = dry_run(node, &group, &topic, &["--to-datetime", &instant]);
    println!("to-datetime {instant}: plan {:?}", plan.partitions);
    let planned: Vec<i64> = (0..PARTITIONS)
        .map(|p| {
            plan.partitions
                .iter()
                .find(|x| x.partition == p)
                .unwrap()
                .target
        })
        .collect();
    assert_eq!(planned, expected, "the dry run's targets");

    let asked = Instant::now();
    let out = proxyctl_ok(
        node,
        &reset_args(&group, &topic, &["--to-datetime", &instant, "--wait"]),
    );
    let waited = asked.elapsed();
    assert!(out.contains("done"), "{out}");
    wait_for("the group read to the end again", SETTLE, || {
        let again = consumers.observed.deliveries_since(asked);
        ends.iter()
            .enumerate()
            .all(|(p, end)| {
                again
                    .iter()
                    .any(|d| d.partition == p as i32 && d.offset == end - 1)
            })
            .then_some(())
    });
    view.wait_committed_at_end();
    let again = consumers.observed.deliveries_since(asked);
    for (p, target) in expected.iter().enumerate() {
        let read: Vec<&Delivery> = again.iter().filter(|d| d.partition == p as i32).collect();
        let mut offsets: Vec<i64> = read.iter().map(|d| d.offset).collect();
        offsets.sort();
        let wanted: Vec<i64> = (*target..ends[p]).collect();
        assert_eq!(offsets, wanted, "partition {p} after the reset");
        assert!(read.iter().all(|d| d.timestamp >= Some(instant_ms)));
    }
    let resumed = resumed_at(&consumers.observed, asked, &expected);
    let last = resumed.iter().map(|r| r.unwrap()).max().unwrap();
    println!(
        "FIGURES reset to-datetime, 2 librdkafka consumers: proxyctl --wait returned after {} \
         (it printed {:.1}s); every partition consuming at its target {}",
        seconds(waited),
        printed_seconds(&out),
        seconds(last)
    );
    assert!(consumers.all_running());
    consumers.stop();
}
