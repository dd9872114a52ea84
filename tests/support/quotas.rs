//! Client quotas for tests: setting one through `proxyctl` until every node enforces it,
//! and measuring what a rate-limited client really gets through, from the real cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, PurgeConfig};

use super::admin::AdminAccess;
use super::fleet::Fleet;
use super::{kafka, wait_for};

/// Runs `proxyctl quota ARGS` through the first node; fails the test if it fails.
pub fn proxyctl_quota(fleet: &Fleet, args: &[&str]) -> String {
    let mut all = vec!["quota"];
    all.extend_from_slice(args);
    let out = AdminAccess::default().proxyctl(&fleet.nodes[0], &all, "");
    assert!(
        out.status.success(),
        "proxyctl {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Sets a quota on `client_id` (retried while the fleet raises its feature level) and
/// waits until every node has it in its control state.
pub fn set_client_quota(fleet: &Fleet, client_id: &str, limit: &str, rate: u64) {
    let rate = rate.to_string();
    let args = ["quota", "set", "--client-id", client_id, limit, &rate];
    wait_for("the quota set", Duration::from_secs(30), || {
        let out = AdminAccess::default().proxyctl(&fleet.nodes[0], &args, "");
        out.status.success().then_some(())
    });
    for node in &fleet.nodes {
        wait_for(
            &format!("node {} enforces the quota of {client_id}", node.id),
            Duration::from_secs(10),
            || {
                let url = format!("{}/api/v1/quotas", node.admin);
                let quotas = node.access.get(&url).ok()?;
                quotas.contains(&format!("\"{client_id}\"")).then_some(())
            },
        );
    }
}

/// Records in `topic` so far (the sum of its partitions' high watermarks), read from the
/// real cluster: a record counts once it is acknowledged to an acks=all producer.
pub fn records_in(topic: &str) -> i64 {
    let consumer: BaseConsumer = super::rdkafka::client_config(kafka()).create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .unwrap()
                .1
        })
        .sum()
}

/// The rate, in record bytes per second, at which records of `record_bytes` land in
/// `topic` over `window`, measured after `warm_up`.
pub fn landed_rate(topic: &str, record_bytes: usize, warm_up: Duration, window: Duration) -> f64 {
    std::thread::sleep(warm_up);
    let (started, before) = (Instant::now(), records_in(topic));
    std::thread::sleep(window);
    let landed = records_in(topic) - before;
    (landed as f64 * record_bytes as f64) / started.elapsed().as_secs_f64()
}

/// A librdkafka producer sending records of `record_bytes` to `topic` as fast as it may,
/// on its own thread, until stopped.
pub struct BusyProducer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BusyProducer {
    pub fn start(config: rdkafka::ClientConfig, topic: &str, record_bytes: usize) -> Self {
        let producer: BaseProducer = config.create().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let topic = topic.to_string();
        let thread = std::thread::spawn(move || {
            let payload = vec![b'q'; record_bytes];
            while !stopped.load(Ordering::Relaxed) {
                let record = BaseRecord::<(), _>::to(&topic).payload(&payload);
                match producer.send(record) {
                    Ok(()) => producer.poll(Duration::ZERO),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(50))
                    }
                    Err((e, _)) => panic!("producing to {topic}: {e}"),
                };
            }
            producer.purge(PurgeConfig::default().queue().inflight());
        });
        BusyProducer {
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
    }
}

impl Drop for BusyProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `measured` within `tolerance` (a fraction) of `target`, or a failure naming both.
pub fn assert_near(what: &str, measured: f64, target: f64, tolerance: f64) {
    let ratio = measured / target;
    eprintln!("{what}: {measured:.0} B/s, {ratio:.3} of the quota {target:.0} B/s");
    assert!(
        (1.0 - tolerance..=1.0 + tolerance).contains(&ratio),
        "{what}: {measured:.0} B/s is {ratio:.3} of the quota {target:.0} B/s"
    );
}
