//! Takeover figures over repeated kill -9 runs (librdkafka). A measurement, not a check
//! of speed: run it on demand with
//!
//!     cargo test --release --test takeover_figures -- --ignored --nocapture
//!
//! Each run starts a 3-node fleet, produces continuously to a partition whose leader
//! identity is owned by the victim, kills the victim, and records (a) the time until a
//! survivor's Metadata advertises the identity at another node, and (b) the longest pause
//! between acknowledgements after the kill. FIGURE_RUNS sets the number of runs (20).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use support::fleet::{owner_of, Fleet};
use support::wire::RawClient;
use support::{kafka, unique_topic, wait_for};

fn summary(name: &str, mut values: Vec<Duration>) {
    values.sort();
    let median = values[values.len() / 2];
    let max = values[values.len() - 1];
    eprintln!(
        "{name}: median {median:?}, max {max:?}, over {} runs",
        values.len()
    );
}

async fn one_run() -> (Duration, Duration) {
    let mut fleet = Fleet::start(3, kafka(), "2s");
    let bootstrap = fleet.bootstrap();
    let topic = unique_topic("figures");
    let config = |c: &mut ClientConfig| {
        c.set("bootstrap.servers", &bootstrap)
            .set("broker.address.family", "v4");
    };
    let mut admin_config = ClientConfig::new();
    config(&mut admin_config);
    let admin: AdminClient<DefaultClientContext> = admin_config.create().unwrap();
    let topics = [NewTopic::new(&topic, 3, TopicReplication::Fixed(3))];
    for r in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let mut producer_config = ClientConfig::new();
    config(&mut producer_config);
    let producer: FutureProducer = producer_config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .unwrap();
    let metadata = producer
        .client()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    let leader = metadata.topics()[0].partitions()[0].leader();
    let victim = owner_of(&fleet.status(1).unwrap(), i64::from(leader)).unwrap();
    let survivor = fleet
        .nodes
        .iter()
        .find(|n| n.id != victim)
        .unwrap()
        .bootstrap
        .clone();

    let acks: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (producer, topic, acks, stop) =
            (producer.clone(), topic.clone(), acks.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let record = FutureRecord::to(&topic).partition(0).key("k").payload("v");
                if producer.send(record, Duration::from_secs(30)).await.is_ok() {
                    acks.lock().unwrap().push(Instant::now());
                }
            }
        })
    };
    wait_for("acks before the kill", Duration::from_secs(30), || {
        (acks.lock().unwrap().len() > 200).then_some(())
    });
    fleet.node(victim).kill();
    let killed = Instant::now();
    let victim_host = fleet.node(victim).host.clone();
    let moved = wait_for(
        "a survivor advertising a new owner",
        Duration::from_secs(30),
        || {
            let metadata = RawClient::connect(&survivor).metadata();
            let broker = metadata.brokers.iter().find(|b| b.node_id.0 == leader)?;
            (broker.host.as_str() != victim_host).then(|| killed.elapsed())
        },
    );
    wait_for("acks after the kill", Duration::from_secs(60), || {
        (acks.lock().unwrap().iter().filter(|t| **t > killed).count() > 200).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    producing.await.unwrap();
    let times = acks.lock().unwrap().clone();
    let mut previous = killed;
    let mut pause = Duration::ZERO;
    for t in times.into_iter().filter(|t| *t > killed) {
        pause = pause.max(t - previous);
        previous = t;
    }
    (moved, pause)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run on demand"]
async fn takeover_figures_over_repeated_kills() {
    let runs: usize = std::env::var("FIGURE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (mut moved, mut paused) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (m, p) = one_run().await;
        eprintln!("run {run}: new owner in Metadata after {m:?}; longest ack pause {p:?}");
        moved.push(m);
        paused.push(p);
    }
    summary("kill -> survivor Metadata shows a new owner", moved);
    summary(
        "kill -> producer acknowledged again (longest pause)",
        paused,
    );
}
