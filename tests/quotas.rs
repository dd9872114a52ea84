//! Fleet-wide client quotas with real clients: a client id whose connections are spread
//! over a 3-node fleet (its partitions' leaders are behind identities each node owns)
//! gets its quota once for the fleet, not three times, from librdkafka (which ignores
//! `throttle_time_ms`, so the proxy holds its requests) and from the Java client (which
//! honours it); consumers of both likewise; a client id without a quota is not slowed.
//! `proxyctl quota` sets, lists and deletes quotas, and refuses bad input by name.

mod support;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::fleet::Fleet;
use support::quotas::{
    assert_near, landed_rate, proxyctl_quota, records_in, set_client_quota, BusyProducer,
};
use support::{kafka, kafka_tool, unique_topic, wait_for};

/// The quota under test: 256 KiB/s, so 30 s measure about 7.5 MiB.
const QUOTA: u64 = 256 * 1024;
const RECORD_BYTES: usize = 1000;
/// Leaders on every broker, so on identities every node owns.
const PARTITIONS: i32 = 6;
const WARM_UP: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(30);
const TOLERANCE: f64 = 0.15;

fn fleet_with_topic(prefix: &str) -> (Fleet, String) {
    let fleet = Fleet::start(3, kafka(), "2s");
    let topic = unique_topic(prefix);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::rdkafka::create_topic(kafka(), &topic, PARTITIONS));
    (fleet, topic)
}

/// A producer as applications tune it, with batches small enough that one request is a
/// small part of a second's quota.
fn producer_config(fleet: &Fleet, client_id: &str) -> rdkafka::ClientConfig {
    let mut config = support::rdkafka::client_config(&fleet.bootstrap());
    config
        .set("client.id", client_id)
        .set("acks", "all")
        .set("batch.size", "16384")
        .set("linger.ms", "5")
        .set("max.in.flight.requests.per.connection", "5")
        .set("queue.buffering.max.messages", "2000")
        .set("message.timeout.ms", "120000");
    config
}

/// Every node carried the client's fetches and the fleet held it. Unlike producers, a
/// consumer need not be held on every node: a node whose partitions give it less than an
/// even share of the quota leaves the rest to the others, which is what the quota asks.
fn assert_fetches_spread_and_held(fleet: &Fleet) {
    let mut seconds = 0.0;
    for node in &fleet.nodes {
        let fetches = node.metric("flotilla_requests_total", "api=\"Fetch\"");
        seconds += node.metric(
            "flotilla_quota_throttle_seconds_total",
            "kind=\"consumer_byte_rate\"",
        );
        eprintln!("node {}: {fetches} fetches", node.id);
        assert!(fetches > 0.0, "node {} carried no fetch", node.id);
    }
    assert!(seconds > 0.0, "no node held the consumer");
}

/// Every node held the client: its connections really were spread over the fleet.
fn assert_every_node_throttled(fleet: &Fleet, kind: &str) {
    for node in &fleet.nodes {
        let throttled = node.metric(
            "flotilla_quota_throttled_requests_total",
            &format!("kind=\"{kind}\""),
        );
        let seconds = node.metric(
            "flotilla_quota_throttle_seconds_total",
            &format!("kind=\"{kind}\""),
        );
        eprintln!(
            "node {}: {throttled} {kind} throttles, {seconds:.1} s",
            node.id
        );
        assert!(
            throttled > 0.0 && seconds > 0.0,
            "node {} never throttled",
            node.id
        );
    }
}

#[test]
fn librdkafka_producer_spread_over_three_nodes_gets_its_quota_once() {
    let (fleet, topic) = fleet_with_topic("quota-rdkafka");
    set_client_quota(&fleet, "quota-rdkafka", "--producer-byte-rate", QUOTA);
    let free_topic = unique_topic("quota-free");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(support::rdkafka::create_topic(
        kafka(),
        &free_topic,
        PARTITIONS,
    ));
    let config = producer_config(&fleet, "quota-rdkafka");
    let throttled = BusyProducer::start(config, &topic, RECORD_BYTES);
    std::thread::sleep(WARM_UP);

    let (started, before) = (Instant::now(), records_in(&topic));
    // Meanwhile a client id without a quota produces 10 MB through the same nodes.
    let free_rate = produce_unthrottled(&fleet, &free_topic, 10_000);
    std::thread::sleep(WINDOW.saturating_sub(started.elapsed()));
    let landed = records_in(&topic) - before;
    let rate = (landed as usize * RECORD_BYTES) as f64 / started.elapsed().as_secs_f64();
    throttled.stop();

    eprintln!("free client: {free_rate:.0} B/s");
    assert!(
        free_rate > 3.0 * QUOTA as f64,
        "a client id without a quota was slowed: {free_rate:.0} B/s"
    );
    assert_near("librdkafka, 30 s", rate, QUOTA as f64, TOLERANCE);
    assert_every_node_throttled(&fleet, "producer_byte_rate");
}

/// Produces `count` records with client id `quota-free` as fast as the fleet takes them;
/// returns the rate in record bytes per second.
fn produce_unthrottled(fleet: &Fleet, topic: &str, count: usize) -> f64 {
    let producer: BaseProducer = producer_config(fleet, "quota-free")
        .set("queue.buffering.max.messages", "100000")
        .create()
        .unwrap();
    let payload = vec![b'f'; RECORD_BYTES];
    let started = Instant::now();
    for _ in 0..count {
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(&payload))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(records_in(topic), count as i64, "every record landed");
    (count * RECORD_BYTES) as f64 / started.elapsed().as_secs_f64()
}

#[test]
fn java_producer_spread_over_three_nodes_gets_its_quota_once() {
    let (fleet, topic) = fleet_with_topic("quota-java");
    set_client_quota(&fleet, "quota-java", "--producer-byte-rate", QUOTA);
    let props = format!(
        "bootstrap.servers={} client.id=quota-java acks=all batch.size=16384 linger.ms=5",
        fleet.bootstrap()
    );
    let mut args = vec![
        "--topic",
        &topic,
        "--num-records",
        "1000000",
        "--record-size",
        "1000",
        "--throughput",
        "-1",
        "--producer-props",
    ];
    args.extend(props.split(' '));
    let mut java = kafka_tool("org.apache.kafka.tools.ProducerPerformance", &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "the Java producer's first records",
        Duration::from_secs(60),
        || (records_in(&topic) > 0).then_some(()),
    );
    let rate = landed_rate(&topic, RECORD_BYTES, WARM_UP, WINDOW);
    let _ = java.kill();
    let _ = java.wait();
    assert_near("Java client, 30 s", rate, QUOTA as f64, TOLERANCE);
    assert_every_node_throttled(&fleet, "producer_byte_rate");
}

#[test]
fn librdkafka_consumer_spread_over_three_nodes_gets_its_fetch_quota_once() {
    let (fleet, topic) = fleet_with_topic("quota-fetch");
    fill(&topic, 16_000);
    set_client_quota(&fleet, "quota-reader", "--consumer-byte-rate", QUOTA);

    let consumer: BaseConsumer = support::rdkafka::client_config(&fleet.bootstrap())
        .set("client.id", "quota-reader")
        .set("group.id", "quota-reader")
        .set("enable.auto.commit", "false")
        .set("max.partition.fetch.bytes", "32768")
        .set("fetch.max.bytes", "65536")
        .set("message.max.bytes", "65536")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(&topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let started = Instant::now();
    let (mut in_window, mut total) = (0usize, 0usize);
    let window = WARM_UP..WARM_UP + WINDOW;
    while started.elapsed() < window.end {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let bytes = message.unwrap().payload().map_or(0, <[u8]>::len);
            total += bytes;
            if window.contains(&started.elapsed()) {
                in_window += bytes;
            }
        }
    }
    assert!(
        total < 16_000 * RECORD_BYTES,
        "the consumer ran out of records"
    );
    let rate = in_window as f64 / WINDOW.as_secs_f64();
    assert_near("librdkafka consumer, 30 s", rate, QUOTA as f64, TOLERANCE);
    assert_fetches_spread_and_held(&fleet);
}

/// Puts `count` records of [`RECORD_BYTES`] in `topic`, straight to the cluster.
fn fill(topic: &str, count: usize) {
    let producer: BaseProducer = support::rdkafka::client_config(kafka())
        .set("queue.buffering.max.messages", "100000")
        .set("batch.size", "16384")
        .create()
        .unwrap();
    let payload = vec![b'c'; RECORD_BYTES];
    for _ in 0..count {
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(&payload))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

#[test]
fn java_consumer_spread_over_three_nodes_gets_its_fetch_quota_once() {
    let (fleet, topic) = fleet_with_topic("quota-java-fetch");
    fill(&topic, 16_000);
    set_client_quota(&fleet, "quota-java-reader", "--consumer-byte-rate", QUOTA);
    let config = std::env::temp_dir().join(format!("{topic}.properties"));
    std::fs::write(
        &config,
        "client.id=quota-java-reader\nmax.partition.fetch.bytes=32768\nfetch.max.bytes=65536\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let bootstrap = fleet.bootstrap();
    let args = [
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        &topic,
        "--num-records",
        "16000",
        "--timeout",
        "60000",
        "--consumer.config",
        &config,
        "--show-detailed-stats",
        "--reporting-interval",
        "1000",
    ];
    let mut java = kafka_tool("org.apache.kafka.tools.ConsumerPerformance", &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Each detailed line: time, thread, MB so far, MB/s, records so far, ...
    let mut progress = Vec::new();
    let lines = std::io::BufReader::new(java.stdout.take().unwrap());
    for line in std::io::BufRead::lines(lines).map_while(Result::ok) {
        let Some(records) = line.split(", ").nth(4).and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        progress.push((Instant::now(), records));
        let started = progress.iter().find(|(_, r)| *r > 0).map(|(at, _)| *at);
        if started.is_some_and(|s| s.elapsed() > WARM_UP + WINDOW) {
            break;
        }
    }
    let _ = java.kill();
    let _ = java.wait();
    let (started, _) = *progress
        .iter()
        .find(|(_, r)| *r > 0)
        .expect("records consumed");
    let (from_at, from) = *progress
        .iter()
        .find(|(at, _)| *at >= started + WARM_UP)
        .expect("progress after the warm-up");
    let (to_at, to) = *progress.last().unwrap();
    assert!(to < 16_000, "the consumer ran out of records");
    let rate = ((to - from) as usize * RECORD_BYTES) as f64 / (to_at - from_at).as_secs_f64();
    assert!(to_at - from_at >= WINDOW - Duration::from_secs(2));
    assert_near("Java consumer, 30 s", rate, QUOTA as f64, TOLERANCE);
    assert_fetches_spread_and_held(&fleet);
}

#[test]
fn proxyctl_sets_lists_and_deletes_quotas_and_refuses_bad_input() {
    let fleet = Fleet::start(1, kafka(), "2s");
    set_client_quota(&fleet, "app", "--producer-byte-rate", 1000);
    proxyctl_quota(
        &fleet,
        &[
            "set",
            "--user",
            "alice",
            "--client-id-default",
            "--request-rate",
            "50",
        ],
    );
    // Setting keeps the limits not named.
    proxyctl_quota(
        &fleet,
        &["set", "--client-id", "app", "--consumer-byte-rate", "2000"],
    );
    let listed = proxyctl_quota(&fleet, &["list", "-o", "json"]);
    let quotas: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let app = quotas
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["client_id"] == "app")
        .unwrap_or_else(|| panic!("app listed: {listed}"));
    assert_eq!(app["producer_byte_rate"], 1000);
    assert_eq!(app["consumer_byte_rate"], 2000);
    let table = proxyctl_quota(&fleet, &["list"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("alice") && l.contains("<default>") && l.ends_with("50")),
        "{table}"
    );

    let deleted = proxyctl_quota(
        &fleet,
        &["delete", "--user", "alice", "--client-id-default"],
    );
    assert!(deleted.contains("alice"), "{deleted}");
    let table = proxyctl_quota(&fleet, &["list"]);
    assert!(!table.contains("alice") && table.contains("app"), "{table}");

    let refused = |args: &[&str], field: &str| {
        let mut all = vec!["quota"];
        all.extend_from_slice(args);
        let out = support::AdminAccess::default().proxyctl(&fleet.nodes[0], &all, "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(field), "{args:?}: {stderr}");
    };
    refused(&["set", "--client-id", "app"], "--producer-byte-rate");
    refused(&["set", "--producer-byte-rate", "5"], "--user");
    refused(
        &["set", "--client-id", "app", "--request-rate", "0"],
        "request_rate",
    );
    refused(
        &["set", "--client-id", "app", "--request-rate", "lots"],
        "--request-rate",
    );
    refused(
        &[
            "set",
            "--user",
            "a",
            "--user-default",
            "--request-rate",
            "5",
        ],
        "--user-default",
    );
    refused(&["delete", "--client-id", "nobody"], "no quota");
}
