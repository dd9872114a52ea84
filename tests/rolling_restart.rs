//! Rolling restarts under load, with real clients against the real Kafka cluster:
//! an idempotent librdkafka producer and an idempotent Java producer (Kafka's
//! VerifiableProducer) produce through a 3-node fleet while a librdkafka consumer group
//! consumes, and the fleet is rolled twice, one node at a time:
//!
//! 1. an upgrade, from the previous release (scripts/build-previous.sh) to this build;
//! 2. a restart of this build, each node stopped with SIGTERM (a graceful stop), the next
//!    node as soon as the fleet is settled again;
//! 3. the same, with a pause of [`PACE`] between nodes: librdkafka doubles a broker's
//!    reconnect backoff at every connection attempt and resets it only after
//!    `reconnect.backoff.max.ms` (10 s) without one, so a fast roll, which moves each
//!    identity several times within seconds, costs it more than a paced one.
//!
//! The test asserts what must hold: no send failed, every acknowledged record was consumed
//! by the group, and no record is in the log twice. It reports, as figures rather than
//! assertions, the longest gap between acknowledgements of each producer during each roll
//! (also written to target/rolling-restart.txt).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use support::fleet::Fleet;
use support::java::JavaProducer;
use support::rdkafka::client_config;
use support::{create_topic_with_tool, kafka, previous_release, unique_topic};
use support::{wait_for, Launch};

const PARTITIONS: i32 = 6;
/// Sends per second of each producer.
const RATE: u64 = 400;
const SETTLE_DEADLINE: Duration = Duration::from_secs(60);
/// The pause between nodes of the paced roll: librdkafka's default reconnect.backoff.max.ms.
const PACE: Duration = Duration::from_secs(10);

fn now_ms() -> f64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    since_epoch.as_secs_f64() * 1000.0
}

/// What a producer was told about its sends: acknowledgement times (ms since the epoch)
/// and values, and failures.
#[derive(Default)]
struct Deliveries {
    acks: Mutex<Vec<(f64, String)>>,
    failures: Mutex<Vec<String>>,
}

impl Deliveries {
    fn acked(&self) -> usize {
        self.acks.lock().unwrap().len()
    }

    fn values(&self) -> Vec<String> {
        self.acks
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The longest time without an acknowledgement between `from` and `to` (ms).
    fn longest_gap(&self, from: f64, to: f64) -> f64 {
        let mut times: Vec<f64> = self.acks.lock().unwrap().iter().map(|(t, _)| *t).collect();
        times.sort_by(f64::total_cmp);
        let before = times.iter().rev().find(|t| **t <= from).copied();
        let during = times.iter().copied().filter(|t| *t > from && *t <= to);
        let after = times.iter().find(|t| **t > to).copied();
        let points: Vec<f64> = before.into_iter().chain(during).chain(after).collect();
        points.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
    }
}

struct Recorder(Arc<Deliveries>);

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                self.0
                    .acks
                    .lock()
                    .unwrap()
                    .push((now_ms(), value.into_owned()));
            }
            Err((error, _)) => self.0.failures.lock().unwrap().push(error.to_string()),
        }
    }
}

/// An idempotent acks=all librdkafka producer sending `RATE` records a second until
/// stopped; it then waits for every outstanding send.
fn librdkafka_producer(
    bootstrap: &str,
    topic: &str,
    stop: Arc<AtomicBool>,
) -> (Arc<Deliveries>, JoinHandle<()>) {
    let deliveries = Arc::new(Deliveries::default());
    let producer: ThreadedProducer<Recorder> = client_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .create_with_context(Recorder(deliveries.clone()))
        .unwrap();
    let topic = topic.to_string();
    let pace = Duration::from_micros(1_000_000 / RATE);
    let sender = std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let value = format!("rd-{n}");
            if producer
                .send(BaseRecord::to(&topic).key(&value).payload(&value))
                .is_ok()
            {
                n += 1;
            }
            std::thread::sleep(pace); // the load's pace, not a wait for a state
        }
        producer.flush(Duration::from_secs(120)).unwrap();
    });
    (deliveries, sender)
}

/// Kafka's VerifiableProducer (the Java client), idempotent, acks=all.
fn java_producer(bootstrap: &str, topic: &str) -> (Arc<Deliveries>, JavaProducer) {
    let deliveries = Arc::new(Deliveries::default());
    let recorded = deliveries.clone();
    let producer = JavaProducer::start(bootstrap, topic, RATE, move |event| {
        match event["name"].as_str() {
            Some("producer_send_success") => {
                let time = event["timestamp"].as_f64().unwrap();
                let value = event["value"].as_str().unwrap().to_string();
                recorded.acks.lock().unwrap().push((time, value));
            }
            Some("producer_send_error") => {
                recorded.failures.lock().unwrap().push(event.to_string())
            }
            _ => {}
        }
    });
    (deliveries, producer)
}

/// A librdkafka consumer group member reading both topics until stopped; what it read,
/// as value → times read.
fn group_consumer(
    bootstrap: &str,
    topics: &[&str],
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<HashMap<String, u32>>>, JoinHandle<()>) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", unique_topic("rolling-group"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    let read = Arc::new(Mutex::new(HashMap::new()));
    let recorded = read.clone();
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                *recorded
                    .lock()
                    .unwrap()
                    .entry(value.into_owned())
                    .or_insert(0) += 1;
            }
        }
    });
    (read, handle)
}

/// Every value in `topic`, read straight from Kafka from the beginning to the end.
fn log_of(topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = client_config(kafka())
        .set("group.id", unique_topic("rolling-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .unwrap();
        ends.insert(partition, high);
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut values = Vec::new();
    let mut next: BTreeMap<i32, i64> = ends.keys().map(|p| (*p, 0)).collect();
    wait_for(&format!("the whole of {topic}"), SETTLE_DEADLINE, || {
        while let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            values.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into());
            next.insert(message.partition(), message.offset() + 1);
        }
        ends.iter().all(|(p, end)| next[p] >= *end).then_some(())
    });
    values
}

/// Restarts every node of `fleet` in turn with `binary`, stopping each with SIGTERM and
/// waiting until the fleet is settled, and `pace` more, before the next. Returns the
/// roll's time window.
fn roll(fleet: &mut Fleet, binary: &std::path::Path, pace: Duration) -> (f64, f64) {
    let started = now_ms();
    for id in 1..=fleet.nodes.len() as u64 {
        if id > 1 {
            std::thread::sleep(pace); // the operator's pace, not a wait for a state
        }
        let node = fleet.node(id);
        node.terminate();
        node.restart_with_binary(binary);
        node.wait_ready();
        fleet.wait_for_status(id, "a settled fleet", |s| s.unsettled().is_none());
    }
    (started, now_ms())
}

#[test]
fn rolling_restarts_lose_nothing_and_fail_no_send() {
    let this_build = Launch::default().binary;
    let mut fleet = Fleet::start_with(
        3,
        kafka(),
        "2s",
        Launch {
            binary: previous_release().to_path_buf(),
            ..Launch::default()
        },
    );
    let bootstrap = fleet.bootstrap();
    let (rd_topic, java_topic) = (unique_topic("roll-rd"), unique_topic("roll-java"));
    for topic in [&rd_topic, &java_topic] {
        create_topic_with_tool(kafka(), topic, PARTITIONS as u32);
    }

    let stop_producing = Arc::new(AtomicBool::new(false));
    let stop_consuming = Arc::new(AtomicBool::new(false));
    let (rd, rd_sender) = librdkafka_producer(&bootstrap, &rd_topic, stop_producing.clone());
    let (java, java_process) = java_producer(&bootstrap, &java_topic);
    let (consumed, consumer) = group_consumer(
        &bootstrap,
        &[&rd_topic, &java_topic],
        stop_consuming.clone(),
    );
    wait_for("both producers acknowledged", SETTLE_DEADLINE, || {
        (rd.acked() > 100 && java.acked() > 100).then_some(())
    });

    // Rolls are PACE apart, so no roll inherits a client's backoff from the one before.
    let upgrade = roll(&mut fleet, &this_build, Duration::ZERO);
    std::thread::sleep(PACE);
    let restart = roll(&mut fleet, &this_build, Duration::ZERO);
    std::thread::sleep(PACE);
    let paced = roll(&mut fleet, &this_build, PACE);

    stop_producing.store(true, Ordering::Relaxed);
    rd_sender.join().unwrap();
    java_process.stop();
    let acked: Vec<String> = rd.values().into_iter().chain(java.values()).collect();
    wait_for(
        "the group to consume every acknowledged record",
        SETTLE_DEADLINE,
        || {
            let read = consumed.lock().unwrap();
            acked.iter().all(|v| read.contains_key(v)).then_some(())
        },
    );
    stop_consuming.store(true, Ordering::Relaxed);
    consumer.join().unwrap();

    let rolls = [
        ("roll 1, upgrade from the previous release", upgrade),
        ("roll 2, restart of this build (graceful)", restart),
        ("roll 3, restart of this build, 10 s between nodes", paced),
    ];
    let report = report(&rd, &java, &rolls, &consumed.lock().unwrap());
    eprintln!("{report}");
    let _ = std::fs::write(
        support::repo_root().join("target/rolling-restart.txt"),
        &report,
    );

    assert_eq!(
        *rd.failures.lock().unwrap(),
        Vec::<String>::new(),
        "librdkafka sends failed"
    );
    assert_eq!(
        *java.failures.lock().unwrap(),
        Vec::<String>::new(),
        "Java sends failed"
    );
    for (topic, deliveries) in [(&rd_topic, &rd), (&java_topic, &java)] {
        let log = log_of(topic);
        let mut seen = HashMap::new();
        for value in &log {
            *seen.entry(value.as_str()).or_insert(0) += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{topic}: in the log twice: {twice:?}");
        let values = deliveries.values();
        let lost: Vec<_> = values
            .iter()
            .filter(|v| !seen.contains_key(v.as_str()))
            .collect();
        assert!(
            lost.is_empty(),
            "{topic}: acknowledged but not in the log: {lost:?}"
        );
    }
}

fn report(
    rd: &Deliveries,
    java: &Deliveries,
    rolls: &[(&str, (f64, f64))],
    consumed: &HashMap<String, u32>,
) -> String {
    let lines: String = rolls
        .iter()
        .map(|(name, (from, to))| {
            format!(
                "{name}: {:.1} s; longest gap between acknowledgements: \
                 librdkafka {:.0} ms, Java {:.0} ms\n",
                (to - from) / 1000.0,
                rd.longest_gap(*from, *to),
                java.longest_gap(*from, *to),
            )
        })
        .collect();
    let redelivered: u32 = consumed.values().map(|n| n - 1).sum();
    format!(
        "rolling restarts of a 3-node fleet under load ({RATE}/s per producer)\n\
         acknowledged: librdkafka {}, Java {}; failed sends: {}, {}\n{lines}\
         consumer group: {} records, {redelivered} read more than once\n",
        rd.acked(),
        java.acked(),
        rd.failures.lock().unwrap().len(),
        java.failures.lock().unwrap().len(),
        consumed.len(),
    )
}
