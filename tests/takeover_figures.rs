//! Takeover figures over repeated kill -9 runs, for librdkafka and for the Java client.
//! A measurement, not a check of speed: run it on demand with
//!
//!     cargo test --test takeover_figures -- --ignored --nocapture
//!
//! Each run starts a 3-node fleet, creates a one-partition topic, and produces to it
//! continuously with an idempotent acks=all producer. It then kills (SIGKILL) the node
//! that owns the partition leader's identity and records:
//! - the time until a survivor's Metadata advertises that identity at another node;
//! - the longest pause between acknowledgements from the kill on, and the time from the
//!   kill to its end: when the producer is acknowledged again.
//!
//! FIGURE_RUNS sets the number of runs per client (default 20).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use support::fleet::Fleet;
use support::java::JavaProducer;
use support::wire::RawClient;
use support::{create_topic_with_tool, kafka, unique_topic, wait_for};

/// Acknowledgement times, in milliseconds since the Unix epoch (the Java tool reports
/// its own wall-clock timestamps, so both clients are measured on the same clock).
type Acks = Arc<Mutex<Vec<f64>>>;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

#[derive(Clone, Copy)]
enum Client {
    Librdkafka,
    Java,
}

struct RdkafkaProducer {
    stop: Arc<AtomicBool>,
}

impl Drop for RdkafkaProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn rdkafka_producer(bootstrap: &str, topic: &str, acks: Acks) -> RdkafkaProducer {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (topic, flag) = (topic.to_string(), stop.clone());
    tokio::spawn(async move {
        while !flag.load(Ordering::Relaxed) {
            let record = FutureRecord::to(&topic).partition(0).key("k").payload("v");
            if producer.send(record, Duration::from_secs(60)).await.is_ok() {
                acks.lock().unwrap().push(now_ms());
            }
        }
    });
    RdkafkaProducer { stop }
}

fn java_producer(bootstrap: &str, topic: &str, acks: Acks) -> JavaProducer {
    JavaProducer::start(bootstrap, topic, 1000, move |event| {
        if event["name"] == "producer_send_success" {
            if let Some(t) = event["timestamp"].as_f64() {
                acks.lock().unwrap().push(t);
            }
        }
    })
}

struct Figures {
    new_owner_in_metadata: f64,
    acked_again: f64,
    longest_pause: f64,
}

async fn one_run(client: Client) -> Figures {
    let mut fleet = Fleet::start(3, kafka(), "2s");
    let bootstrap = fleet.bootstrap();
    let topic = unique_topic("figures");
    create_topic_with_tool(&bootstrap, &topic, 1);
    let survivor_of = |victim: u64| if victim == 1 { 2 } else { 1 };
    let leader = partition_leader(&fleet.node(1).bootstrap, &topic);
    let status = fleet.status(1).unwrap();
    let victim = status.identity(leader).and_then(|i| i.owner).unwrap();
    let survivor = fleet.node(survivor_of(victim)).bootstrap.clone();

    let acks: Acks = Arc::default();
    // Produces until dropped, pushing the time of every acknowledgement.
    let _producer: Box<dyn std::any::Any> = match client {
        Client::Librdkafka => Box::new(rdkafka_producer(&bootstrap, &topic, acks.clone())),
        Client::Java => Box::new(java_producer(&bootstrap, &topic, acks.clone())),
    };
    let acks_after = |t: f64| acks.lock().unwrap().iter().filter(|a| **a > t).count();
    wait_for("200 acks before the kill", Duration::from_secs(60), || {
        (acks_after(0.0) >= 200).then_some(())
    });
    fleet.node(victim).kill();
    let killed = now_ms();
    let victim_host = fleet.node(victim).host.clone();
    let new_owner_in_metadata = wait_for(
        "a survivor advertising a new owner",
        Duration::from_secs(30),
        || {
            let metadata = RawClient::connect(&survivor).metadata();
            let broker = metadata.brokers.iter().find(|b| b.node_id.0 == leader)?;
            (broker.host.as_str() != victim_host).then(|| now_ms() - killed)
        },
    );
    // Acknowledgements must go on well past any takeover: a busy Java client runs the
    // callbacks of responses that reached its socket before the kill hundreds of
    // milliseconds later, so the first ones after the kill say nothing.
    wait_for("acks long after the kill", Duration::from_secs(90), || {
        (acks_after(killed + 5_000.0) >= 100).then_some(())
    });
    let mut after: Vec<f64> = acks
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|a| *a > killed)
        .collect();
    after.sort_by(f64::total_cmp);
    // The pause is the longest gap between acknowledgements from the kill on; the
    // producer is acknowledged again when it ends. The first acknowledgement after the
    // kill is no measure: the Java client runs callbacks for responses it received
    // before the kill a few milliseconds later.
    let mut pause = (after[0] - killed, after[0]);
    for pair in after.windows(2) {
        if pair[1] - pair[0] > pause.0 {
            pause = (pair[1] - pair[0], pair[1]);
        }
    }
    Figures {
        new_owner_in_metadata,
        acked_again: pause.1 - killed,
        longest_pause: pause.0,
    }
}

/// The identity leading partition 0 of `topic`, from a node's Metadata.
fn partition_leader(bootstrap: &str, topic: &str) -> i32 {
    wait_for(
        "a leader for the new topic",
        Duration::from_secs(30),
        || {
            let metadata = RawClient::connect(bootstrap).metadata();
            let t = metadata
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))?;
            let leader = t.partitions.first()?.leader_id.0;
            (leader >= 0).then_some(leader)
        },
    )
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let max = values[values.len() - 1];
    let min = values[0];
    eprintln!(
        "  {name}: median {median:.0} ms, max {max:.0} ms, min {min:.0} ms, over {} runs",
        values.len()
    );
}

async fn figures_for(client: Client, name: &str) {
    let runs: usize = std::env::var("FIGURE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut all = Vec::new();
    for run in 0..runs {
        let f = one_run(client).await;
        eprintln!(
            "{name} run {run}: new owner in Metadata {:.0} ms, acknowledged again {:.0} ms, longest pause {:.0} ms",
            f.new_owner_in_metadata, f.acked_again, f.longest_pause
        );
        all.push(f);
    }
    eprintln!("{name}:");
    summary(
        "kill -> survivor Metadata shows the new owner",
        all.iter().map(|f| f.new_owner_in_metadata).collect(),
    );
    summary(
        "kill -> producer acknowledged again",
        all.iter().map(|f| f.acked_again).collect(),
    );
    summary(
        "longest pause between acks after the kill",
        all.iter().map(|f| f.longest_pause).collect(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run on demand"]
async fn takeover_figures_librdkafka() {
    figures_for(Client::Librdkafka, "librdkafka").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run on demand"]
async fn takeover_figures_java() {
    figures_for(Client::Java, "java").await;
}
