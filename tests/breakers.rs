//! Topic circuit breakers through real clients and real Kafka: `hold` keeps an idempotent
//! librdkafka producer's records safe (every one acknowledged exactly once) while other
//! topics flow and consumers of the held topic read nothing; `reject` fails the
//! application's sends with the policy error; a rule trips on a real overload and the
//! breaker closes itself after its cool-down; proxyctl refuses bad input by field.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla::api::BreakerSummary;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::admin::AdminAccess;
use support::fleet::Fleet;
use support::java::JavaProducer;
use support::{kafka, unique_topic, wait_for, Node};

const PARTITIONS: i32 = 2;

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

fn breakers(node: &Node) -> Vec<BreakerSummary> {
    serde_json::from_str(&proxyctl_ok(node, &["breaker", "list", "-o", "json"])).unwrap()
}

/// Opens a breaker; a fresh fleet may take a moment to commit feature level 3.
fn open_breaker(node: &Node, args: &[&str]) {
    let mut all = vec!["breaker", "open"];
    all.extend_from_slice(args);
    wait_for("the breaker opened", Duration::from_secs(30), || {
        proxyctl(node, &all).status.success().then_some(())
    });
}

fn producer(fleet: &Fleet) -> FutureProducer {
    support::rdkafka::client_config(&fleet.bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create()
        .unwrap()
}

/// What a producer was told of each record it sent, by topic and id.
#[derive(Default)]
struct Deliveries {
    acked: BTreeMap<String, Vec<(u64, Instant)>>,
    failed: Vec<(String, u64, KafkaError)>,
}

/// Sends ids 0.. to each topic every 10 ms until `stop`; returns how many per topic.
async fn produce_until(
    producer: FutureProducer,
    topics: Vec<String>,
    deliveries: Arc<Mutex<Deliveries>>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut pending = Vec::new();
    let mut id = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while !stop.load(Ordering::Acquire) {
        tick.tick().await;
        for topic in &topics {
            let (producer, topic, deliveries) =
                (producer.clone(), topic.clone(), deliveries.clone());
            pending.push(tokio::spawn(async move {
                let payload = id.to_string();
                let record = FutureRecord::<(), _>::to(&topic).payload(&payload);
                let outcome = producer.send(record, Duration::from_secs(120)).await;
                let mut deliveries = deliveries.lock().unwrap();
                match outcome {
                    Ok(_) => deliveries
                        .acked
                        .entry(topic)
                        .or_default()
                        .push((id, Instant::now())),
                    Err((e, _)) => deliveries.failed.push((topic, id, e)),
                }
            }));
        }
        id += 1;
    }
    for delivery in pending {
        delivery.await.unwrap();
    }
    id
}

/// Every id in `topic`, read straight from Kafka.
fn ids_in_kafka(topic: &str) -> Vec<u64> {
    let consumer: BaseConsumer = support::rdkafka::client_config(kafka())
        .set("group.id", unique_topic("check"))
        .create()
        .unwrap();
    let mut ids = Vec::new();
    for partition in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(20))
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let mut next = 0;
        wait_for(
            "the partition read to its end",
            Duration::from_secs(60),
            || {
                while next < high {
                    let message = consumer.poll(Duration::from_millis(500))?.unwrap();
                    next = message.offset() + 1;
                    let id = std::str::from_utf8(message.payload()?).ok()?.parse().ok()?;
                    ids.push(id);
                }
                Some(())
            },
        );
    }
    ids
}

/// What a consumer read through the fleet: each topic and id, and when it arrived.
type Read = Arc<Mutex<Vec<(String, u64, Instant)>>>;

/// Reads `topics` through the fleet from the start, until `stop`.
fn consume_through(
    fleet: &Fleet,
    topics: &[&str],
    read: Read,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let consumer: BaseConsumer = support::rdkafka::client_config(&fleet.bootstrap())
        .set("group.id", unique_topic("held-reader"))
        .set("fetch.wait.max.ms", "200")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&assignment).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                if let Some(id) = message
                    .payload()
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .and_then(|p| p.parse().ok())
                {
                    let topic = message.topic().to_string();
                    read.lock().unwrap().push((topic, id, Instant::now()));
                }
            }
        }
    })
}

fn distinct(read: &Read) -> usize {
    let read = read.lock().unwrap();
    let pairs: BTreeSet<(&str, u64)> = read.iter().map(|(t, id, _)| (t.as_str(), *id)).collect();
    pairs.len()
}

/// The records of `topic` read before `until` that were acknowledged after `since`:
/// written once a breaker held the topic's fetches, read before it closed. (Records
/// fetched before the hold may reach the application later, from the client's buffer.)
fn leaked(
    read: &[(String, u64, Instant)],
    acked: &BTreeMap<u64, Instant>,
    topic: &str,
    since: Instant,
    until: Instant,
) -> Vec<u64> {
    read.iter()
        .filter(|(t, id, at)| {
            t == topic && *at < until && acked.get(id).is_some_and(|a| *a > since)
        })
        .map(|(_, id, _)| *id)
        .collect()
}

/// `at` as a distance from `reference`, in milliseconds, before or after.
fn relative(at: Instant, reference: Instant) -> String {
    match at.checked_duration_since(reference) {
        Some(after) => format!("{} ms after `breaker open` returned", after.as_millis()),
        None => format!(
            "{} ms before `breaker open` returned",
            (reference - at).as_millis()
        ),
    }
}

/// Requests of `api` the fleet's nodes have forwarded or answered so far.
fn requests(fleet: &Fleet, api: &str) -> f64 {
    let label = format!("api=\"{api}\"");
    fleet
        .nodes
        .iter()
        .map(|n| n.metric("flotilla_requests_total", &label))
        .sum()
}

fn acked_count(deliveries: &Mutex<Deliveries>, topic: &str) -> usize {
    deliveries
        .lock()
        .unwrap()
        .acked
        .get(topic)
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_keeps_every_record_exactly_once_while_other_topics_flow() {
    let (held, free) = (unique_topic("brk-held"), unique_topic("brk-free"));
    support::rdkafka::create_topic(kafka(), &held, PARTITIONS).await;
    support::rdkafka::create_topic(kafka(), &free, PARTITIONS).await;
    // Three nodes: every one must enforce, whichever node a client's Metadata came from.
    let fleet = Fleet::start(3, kafka(), "2s");
    let node = &fleet.nodes[0];

    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let producing = tokio::spawn(produce_until(
        producer(&fleet),
        vec![held.clone(), free.clone()],
        deliveries.clone(),
        stop.clone(),
    ));
    let reading_stop = Arc::new(AtomicBool::new(false));
    let read = Read::default();
    let reading = consume_through(&fleet, &[&held, &free], read.clone(), reading_stop.clone());
    let flowing = |topic: &str, at_least: usize| {
        wait_for(
            &format!("{topic} acknowledged"),
            Duration::from_secs(30),
            || (acked_count(&deliveries, topic) >= at_least).then_some(()),
        )
    };
    flowing(&held, 50);

    let requests_before = (
        requests(&fleet, "Metadata"),
        requests(&fleet, "InitProducerId"),
    );
    open_breaker(node, &[&held, "--reason", "broker maintenance"]);
    // Consumers of `free` wait too, while its producers go on.
    open_breaker(node, &[&free, "--fetch"]);
    let opened = Instant::now();
    let free_at_open = acked_count(&deliveries, &free);
    // The last held record the broker took: acks stop once in-flight requests are done.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let last_held_ack = deliveries.lock().unwrap().acked[&held]
        .iter()
        .map(|(_, at)| *at)
        .max()
        .unwrap();
    let free_during = acked_count(&deliveries, &free) - free_at_open;
    let requests_during = (
        requests(&fleet, "Metadata"),
        requests(&fleet, "InitProducerId"),
    );
    // Taken before the close: records written once it is committed may be read at once.
    let closed = Instant::now();
    proxyctl_ok(node, &["breaker", "close", &held]);
    proxyctl_ok(node, &["breaker", "close", &free]);
    flowing(&held, acked_count(&deliveries, &held) + 50);
    stop.store(true, Ordering::Release);
    let sent = producing.await.unwrap() as usize;
    wait_for(
        "the consumer read everything",
        Duration::from_secs(60),
        || (distinct(&read) >= 2 * sent).then_some(()),
    );
    reading_stop.store(true, Ordering::Release);
    reading.join().unwrap();
    let read = read.lock().unwrap().clone();

    let deliveries = deliveries.lock().unwrap();
    assert!(
        deliveries.failed.is_empty(),
        "sends failed: {:?}",
        &deliveries.failed[..deliveries.failed.len().min(5)]
    );
    let enforced_after = last_held_ack.saturating_duration_since(opened);
    println!(
        "librdkafka: last held record acknowledged {}",
        relative(last_held_ack, opened)
    );
    assert!(
        enforced_after < Duration::from_secs(2),
        "held records kept being acknowledged {enforced_after:?} after the breaker opened"
    );
    assert_eq!(
        requests_during.1, requests_before.1,
        "no new producer id or epoch: the sequence numbers were kept"
    );
    let metadata = requests_during.0 - requests_before.0;
    println!("Metadata requests during the hold: {metadata}");
    assert!(
        metadata < 20.0,
        "{metadata} Metadata requests during the hold"
    );
    assert!(
        free_during > 500,
        "the other topic flowed while held: {free_during} acks"
    );
    for topic in [&held, &free] {
        let mut ids = ids_in_kafka(topic);
        let stored = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(stored, ids.len(), "{topic}: duplicates in Kafka");
        assert_eq!(
            ids,
            (0..sent as u64).collect::<Vec<_>>(),
            "{topic}: every id once"
        );
    }
    // Fetches already waiting at the broker when the breaker opened may still answer.
    let in_force = opened + Duration::from_millis(500);
    for topic in [&held, &free] {
        let acked: BTreeMap<u64, Instant> =
            deliveries.acked[topic.as_str()].iter().copied().collect();
        let leaks = leaked(&read, &acked, topic, in_force, closed);
        assert!(
            leaks.is_empty(),
            "{topic}: written and read while held: {leaks:?}"
        );
        let ids: BTreeSet<u64> = read
            .iter()
            .filter(|(t, _, _)| t == topic)
            .map(|(_, id, _)| *id)
            .collect();
        assert_eq!(
            ids,
            (0..sent as u64).collect(),
            "{topic}: everything read after the close"
        );
    }
    let fleet_count = |labels: &str| -> f64 {
        fleet
            .nodes
            .iter()
            .map(|n| n.metric("flotilla_breaker_actions_total", labels))
            .sum()
    };
    assert!(fleet_count("api=\"produce\",mode=\"hold\"") > 0.0);
    assert!(fleet_count("api=\"fetch\",mode=\"hold\"") > 0.0);
}

async fn send(producer: &FutureProducer, topic: &str) -> Result<(), KafkaError> {
    let record = FutureRecord::<(), _>::to(topic).payload("x");
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_fails_sends_with_the_policy_error_and_proxyctl_shows_and_refuses() {
    let (closed, open) = (unique_topic("brk-reject."), unique_topic("brk-open"));
    support::rdkafka::create_topic(kafka(), &closed, PARTITIONS).await;
    support::rdkafka::create_topic(kafka(), &open, PARTITIONS).await;
    let fleet = Fleet::start(1, kafka(), "2s");
    let node = &fleet.nodes[0];
    let prefix = format!("{}*", &closed[..closed.find('.').unwrap() + 1]);
    open_breaker(
        node,
        &[
            &prefix,
            "--produce",
            "--mode",
            "reject",
            "--reason",
            "decommissioned",
            "--for",
            "10m",
        ],
    );

    let producer = producer(&fleet);
    let refused = send(&producer, &closed).await.unwrap_err();
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(RDKafkaErrorCode::PolicyViolation),
        "{refused}"
    );
    send(&producer, &open)
        .await
        .expect("other topics are unaffected");
    assert!(node.metric("flotilla_breaker_actions_total", "mode=\"reject\"") > 0.0);

    let listed = breakers(node);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let b = &listed[0];
    assert_eq!(
        (b.pattern.as_str(), b.origin.as_str(), b.mode.as_str()),
        (prefix.as_str(), "manual", "reject")
    );
    assert_eq!(b.reason, "decommissioned");
    assert!(b.produce && !b.fetch && b.in_force);
    let until = b.until_ms.unwrap() - b.opened_at_ms;
    assert_eq!(until, 600_000);
    let table = proxyctl_ok(node, &["breaker", "list"]);
    for column in [
        "PATTERN",
        "ORIGIN",
        "MODE",
        "UNTIL",
        "REASON",
        "manual",
        "reject",
        "decommissioned",
    ] {
        assert!(table.contains(column), "{column} missing from:\n{table}");
    }

    for (args, field) in [
        (&["breaker", "open", "*"][..], "pattern"),
        (&["breaker", "open", "or*ders"][..], "pattern"),
        (
            &["breaker", "open", "orders", "--mode", "pause"][..],
            "mode",
        ),
        (
            &[
                "breaker",
                "rule",
                "set",
                "r",
                "--topic",
                "*",
                "--produce-bytes-per-sec",
                "1",
                "--for",
                "1",
                "--cool-down",
                "1",
            ][..],
            "topic",
        ),
    ] {
        let out = proxyctl(node, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr.contains(&format!("{field}:")), "{args:?}: {stderr}");
    }

    proxyctl_ok(node, &["breaker", "close", &prefix]);
    send(&producer, &closed)
        .await
        .expect("writable again once closed");
    assert!(breakers(node).is_empty());
    let missing = proxyctl(node, &["breaker", "close", &prefix]);
    assert!(
        !missing.status.success(),
        "closing what is not open is an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_trips_on_a_real_overload_and_the_breaker_closes_after_its_cool_down() {
    let topic = unique_topic("brk-hot.");
    support::rdkafka::create_topic(kafka(), &topic, PARTITIONS).await;
    let fleet = Fleet::start(2, kafka(), "2s");
    let node = &fleet.nodes[0];
    let set = [
        "breaker",
        "rule",
        "set",
        "hot",
        "--topic",
        "brk-hot.*",
        "--produce-bytes-per-sec",
        "20000",
        "--for",
        "2",
        "--cool-down",
        "6",
    ];
    wait_for("the rule saved", Duration::from_secs(30), || {
        proxyctl(node, &set).status.success().then_some(())
    });
    let rules = proxyctl_ok(node, &["breaker", "rule", "list"]);
    assert!(rules.contains("produce-bytes-per-sec > 20000"), "{rules}");

    // About 100 KB/s, five times the threshold.
    let producer: FutureProducer = support::rdkafka::client_config(&fleet.bootstrap())
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, topic) = (stop.clone(), topic.clone());
        tokio::spawn(async move {
            let payload = vec![b'x'; 1000];
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::Acquire) {
                tick.tick().await;
                for _ in 0..1 {
                    let record = FutureRecord::<(), _>::to(&topic).payload(&payload);
                    let _ = producer.send_result(record);
                }
            }
            producer
        })
    };
    let started = Instant::now();
    let tripped = wait_for("the rule tripped", Duration::from_secs(60), || {
        breakers(node).into_iter().find(|b| b.origin == "rule:hot")
    });
    println!(
        "rule tripped {:?} after the load started",
        started.elapsed()
    );
    assert_eq!(tripped.pattern, topic, "a breaker on the hot topic itself");
    assert_eq!(tripped.until_ms.unwrap() - tripped.opened_at_ms, 6_000);
    assert!(tripped.reason.contains("rule hot"), "{}", tripped.reason);
    stop.store(true, Ordering::Release);
    let producer = load.await.unwrap();
    wait_for(
        "the breaker closed after its cool-down",
        Duration::from_secs(30),
        || {
            let same = breakers(node)
                .into_iter()
                .any(|b| b.opened_at_ms == tripped.opened_at_ms);
            (!same).then_some(())
        },
    );
    let closed_after = Duration::from_millis(support_now_ms() - tripped.opened_at_ms);
    assert!(
        closed_after >= Duration::from_secs(6),
        "closed after {closed_after:?}"
    );
    let any_node_counted = |name: &str| {
        fleet
            .nodes
            .iter()
            .map(|n| n.metric(name, "origin=\"rule\""))
            .sum::<f64>()
    };
    assert!(any_node_counted("flotilla_breaker_trips_total") >= 1.0);
    wait_for("the close counted", Duration::from_secs(10), || {
        (any_node_counted("flotilla_breaker_closes_total") >= 1.0).then_some(())
    });
    node.wait_for_log(&["breaker opened", &topic]);
    node.wait_for_log(&["breaker closed", &topic]);
    drop(producer);
}

fn support_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Kafka's VerifiableConsumer (the Java consumer, with fetch sessions) reading `topic`
/// through the fleet; each value it reads lands in `read`, with when.
struct JavaConsumer {
    child: std::process::Child,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl JavaConsumer {
    fn start(bootstrap: &str, topic: &str, read: Read) -> JavaConsumer {
        let group = unique_topic("brk-java-group");
        let mut child = support::kafka_tool(
            "org.apache.kafka.tools.VerifiableConsumer",
            &[
                "--bootstrap-server",
                bootstrap,
                "--topic",
                topic,
                "--group-id",
                &group,
                "--reset-policy",
                "earliest",
                "--verbose",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if event["name"] == "record_data" {
                    if let Some(id) = event["value"].as_str().and_then(|v| v.parse().ok()) {
                        let topic = event["topic"].as_str().unwrap_or_default().to_string();
                        read.lock().unwrap().push((topic, id, Instant::now()));
                    }
                }
            }
        });
        JavaConsumer {
            child,
            reader: Some(reader),
        }
    }
}

impl Drop for JavaConsumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_keeps_every_java_record_exactly_once() {
    let topic = unique_topic("brk-java");
    support::rdkafka::create_topic(kafka(), &topic, PARTITIONS).await;
    let fleet = Fleet::start(1, kafka(), "2s");
    let node = &fleet.nodes[0];
    let acks: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let (acked, failed) = (acks.clone(), failures.clone());
    let producer = JavaProducer::start(&fleet.bootstrap(), &topic, 200, move |event| {
        match event["name"].as_str() {
            Some("producer_send_success") => {
                let id = event["value"].as_str().unwrap().parse().unwrap();
                acked.lock().unwrap().push((id, Instant::now()));
            }
            Some("producer_send_error") => failed.lock().unwrap().push(event.to_string()),
            _ => {}
        }
    });
    let acked_count = || acks.lock().unwrap().len();
    let read = Read::default();
    let consumer = JavaConsumer::start(&fleet.bootstrap(), &topic, read.clone());
    wait_for("the Java clients at work", Duration::from_secs(60), || {
        (acked_count() >= 100 && distinct(&read) >= 100).then_some(())
    });

    let requests_before = (
        requests(&fleet, "Metadata"),
        requests(&fleet, "InitProducerId"),
    );
    open_breaker(node, &[&topic]);
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let requests_during = (
        requests(&fleet, "Metadata"),
        requests(&fleet, "InitProducerId"),
    );
    let last_ack = acks
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| *at)
        .max()
        .unwrap();
    let closed = Instant::now();
    proxyctl_ok(node, &["breaker", "close", &topic]);
    let before_close = acked_count();
    wait_for(
        "acknowledged again after the close",
        Duration::from_secs(60),
        || (acked_count() >= before_close + 100).then_some(()),
    );
    // Then consumers only: the producer goes on, the consumer (fetch sessions) waits.
    open_breaker(node, &[&topic, "--fetch"]);
    let fetch_opened = Instant::now();
    let acked_at_fetch_hold = acked_count();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let acked_during_fetch_hold = acked_count() - acked_at_fetch_hold;
    let fetch_closed = Instant::now();
    proxyctl_ok(node, &["breaker", "close", &topic]);
    producer.stop();
    let all_acked = acked_count();
    wait_for(
        "the Java consumer read everything",
        Duration::from_secs(60),
        || (distinct(&read) >= all_acked).then_some(()),
    );
    drop(consumer);
    let read = read.lock().unwrap().clone();
    let acked: BTreeMap<u64, Instant> = acks.lock().unwrap().iter().copied().collect();
    let grace = Duration::from_millis(500);
    for (from, to) in [(opened, closed), (fetch_opened, fetch_closed)] {
        let leaks = leaked(&read, &acked, &topic, from + grace, to);
        assert!(leaks.is_empty(), "written and read while held: {leaks:?}");
    }
    assert!(
        acked_during_fetch_hold > 100,
        "produce flowed: {acked_during_fetch_hold}"
    );

    assert!(
        failures.lock().unwrap().is_empty(),
        "{:?}",
        failures.lock().unwrap()
    );
    assert_eq!(requests_during.1, requests_before.1, "no epoch bump");
    let metadata = requests_during.0 - requests_before.0;
    println!("Metadata requests during the hold: {metadata}");
    assert!(
        metadata < 20.0,
        "{metadata} Metadata requests during the hold"
    );
    println!(
        "Java: last held record acknowledged {}",
        relative(last_ack, opened)
    );
    let held_for = last_ack.saturating_duration_since(opened);
    assert!(
        held_for < Duration::from_secs(2),
        "acknowledged {held_for:?} into the hold"
    );
    let mut acked_ids: Vec<u64> = acks.lock().unwrap().iter().map(|(id, _)| *id).collect();
    acked_ids.sort_unstable();
    let before_dedup = acked_ids.len();
    acked_ids.dedup();
    assert_eq!(before_dedup, acked_ids.len(), "an id acknowledged twice");
    let mut stored = ids_in_kafka(&topic);
    stored.sort_unstable();
    assert_eq!(
        stored, acked_ids,
        "every acknowledged record in Kafka exactly once"
    );
}

/// Breakers live in Raft: after kill -9 of the Raft leader the survivors still enforce an
/// open breaker, and one can be closed through a survivor at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_outlives_a_killed_raft_leader() {
    let topic = unique_topic("brk-leader-kill");
    support::rdkafka::create_topic(kafka(), &topic, PARTITIONS).await;
    let mut fleet = Fleet::start(3, kafka(), "2s");
    open_breaker(
        &fleet.nodes[0],
        &[&topic, "--produce", "--mode", "reject", "--reason", "kill"],
    );
    for node in &fleet.nodes {
        wait_for("the breaker on every node", Duration::from_secs(10), || {
            (!breakers(node).is_empty()).then_some(())
        });
    }
    let leader = fleet.status(1).and_then(|s| s.leader).expect("a leader");
    let survivor = if leader == 1 { 2 } else { 1 };
    fleet.node(leader).kill();
    fleet.wait_for_status(survivor, "a new leader", |s| {
        s.leader.is_some_and(|l| l != leader)
    });

    let producer: FutureProducer = support::rdkafka::client_config(&fleet.node(survivor).bootstrap)
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    let refused = send(&producer, &topic).await.unwrap_err();
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(RDKafkaErrorCode::PolicyViolation),
        "{refused}"
    );
    proxyctl_ok(fleet.node(survivor), &["breaker", "close", &topic]);
    // The close is committed when proxyctl returns; the node the producer talks to may
    // apply it a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = send(&producer, &topic).await {
        assert!(
            Instant::now() < deadline,
            "still refused after the close through a survivor: {e}"
        );
    }
}
