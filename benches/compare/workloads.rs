//! The workloads, each run against one target and turned into named figures.
//!
//! Throughput comes from Kafka's own load tools (`ProducerPerformance`,
//! `ConsumerPerformance`), the tools operators already trust. End-to-end latency is
//! measured here with librdkafka, because Kafka's `EndToEndLatency` reports whole
//! milliseconds, too coarse for a proxy that should add well under one: a producer sends
//! at a fixed moderate rate with the send time in each record, and a consumer in the same
//! process takes the difference on arrival, one clock for both ends.

use std::fmt;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::kafka::{Kafka, PARTITIONS};
use crate::proc_stats;
use crate::targets::Target;
use crate::wire::RawClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Workload {
    #[serde(rename = "produce-1k")]
    Produce1k,
    #[serde(rename = "produce-100")]
    Produce100,
    #[serde(rename = "consume")]
    Consume,
    #[serde(rename = "latency")]
    Latency,
    #[serde(rename = "idle")]
    Idle,
}

const WORKLOADS: [(&str, Workload); 5] = [
    ("produce-1k", Workload::Produce1k),
    ("produce-100", Workload::Produce100),
    ("consume", Workload::Consume),
    ("latency", Workload::Latency),
    ("idle", Workload::Idle),
];

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        WORKLOADS
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, w)| *w)
            .ok_or_else(|| {
                let known: Vec<&str> = WORKLOADS.iter().map(|(n, _)| *n).collect();
                format!("unknown workload `{s}`; known: {}", known.join(", "))
            })
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = WORKLOADS.iter().find(|(_, w)| w == self).map(|(n, _)| *n);
        f.write_str(name.unwrap_or("?"))
    }
}

/// How much each workload moves.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sizes {
    pub produce_1k_records: u64,
    pub produce_100_records: u64,
    pub consume_records: u64,
    pub latency_rate_per_s: u64,
    pub latency_seconds: u64,
    pub latency_record_bytes: usize,
    pub idle_connections: usize,
    pub warm_up_records: u64,
}

impl Sizes {
    pub const QUICK: Sizes = Sizes {
        produce_1k_records: 30_000,
        produce_100_records: 150_000,
        consume_records: 30_000,
        latency_rate_per_s: 500,
        latency_seconds: 4,
        latency_record_bytes: 512,
        idle_connections: 1_000,
        warm_up_records: 5_000,
    };

    pub const FULL: Sizes = Sizes {
        produce_1k_records: 300_000,
        produce_100_records: 1_500_000,
        consume_records: 300_000,
        latency_rate_per_s: 1_000,
        latency_seconds: 20,
        latency_record_bytes: 512,
        idle_connections: 1_000,
        warm_up_records: 30_000,
    };
}

/// A figure: its name and value.
pub type Figure = (&'static str, f64);

const CONSUME_TOPIC: &str = "bench-consume";
const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// Fills the topic every consume run reads, straight into Kafka.
pub fn prepare(kafka: &Kafka, sizes: &Sizes, workloads: &[Workload]) -> anyhow::Result<()> {
    if !workloads.contains(&Workload::Consume) {
        return Ok(());
    }
    eprintln!(
        "bench: writing {} records to {CONSUME_TOPIC}",
        sizes.consume_records
    );
    kafka.recreate_topic(CONSUME_TOPIC)?;
    producer_performance(
        kafka,
        &Client::plaintext(&kafka.bootstrap),
        CONSUME_TOPIC,
        sizes.consume_records,
        1024,
    )?;
    Ok(())
}

pub fn warm_up(kafka: &Kafka, target: &Target, sizes: &Sizes) -> anyhow::Result<()> {
    let topic = format!("bench-warm-up-{}", target.kind);
    kafka.recreate_topic(&topic)?;
    producer_performance(
        kafka,
        &Client::of(target),
        &topic,
        sizes.warm_up_records,
        1024,
    )?;
    kafka.delete_topic(&topic)
}

pub fn run(
    workload: Workload,
    kafka: &Kafka,
    target: &Target,
    sizes: &Sizes,
    round: usize,
) -> anyhow::Result<Vec<Figure>> {
    match workload {
        Workload::Produce1k => produce(kafka, target, sizes.produce_1k_records, 1024),
        Workload::Produce100 => produce(kafka, target, sizes.produce_100_records, 100),
        Workload::Consume => consume(kafka, target, sizes.consume_records, round),
        Workload::Latency => latency(kafka, target, sizes),
        Workload::Idle => idle(target, sizes.idle_connections),
    }
}

/// acks=all producer throughput with the tool's defaults otherwise (linger, batch size).
fn produce(kafka: &Kafka, target: &Target, records: u64, size: u64) -> anyhow::Result<Vec<Figure>> {
    let topic = format!("bench-produce-{size}-{}", target.kind);
    kafka.recreate_topic(&topic)?;
    let cpu = CpuMeter::start(target)?;
    let summary = producer_performance(kafka, &Client::of(target), &topic, records, size)?;
    let mut figures = vec![
        ("mib_per_s", summary.mib_per_s),
        ("records_per_s", summary.records_per_s),
        ("produce_p99_ms", summary.p99_ms),
    ];
    figures.extend(cpu.per_gib(target, (records * size) as f64)?);
    kafka.delete_topic(&topic)?;
    Ok(figures)
}

/// Consumer throughput reading the prepared topic from the start, in a group of its own.
fn consume(
    kafka: &Kafka,
    target: &Target,
    records: u64,
    round: usize,
) -> anyhow::Result<Vec<Figure>> {
    let group = format!("bench-{}-{round}-{}", target.kind, std::process::id());
    let cpu = CpuMeter::start(target)?;
    let stdout = kafka.tool(
        "org.apache.kafka.tools.ConsumerPerformance",
        &[
            "--bootstrap-server".into(),
            target.bootstrap.clone(),
            "--topic".into(),
            CONSUME_TOPIC.into(),
            "--num-records".into(),
            records.to_string(),
            "--group".into(),
            group,
            "--timeout".into(),
            "60000".into(),
        ]
        .into_iter()
        .chain(
            Client::of(target)
                .java()
                .into_iter()
                .flat_map(|p| ["--command-property".to_string(), p]),
        )
        .collect::<Vec<String>>(),
    )?;
    let stats = consumer_stats(&stdout)?;
    let consumed = stats("data.consumed.in.nMsg")?;
    if consumed < records as f64 {
        bail!("consumed {consumed} of {records} records");
    }
    let mut figures = vec![
        ("mib_per_s", stats("fetch.MB.sec")?),
        ("records_per_s", stats("fetch.nMsg.sec")?),
    ];
    figures.extend(cpu.per_gib(target, stats("data.consumed.in.MB")? * MIB)?);
    Ok(figures)
}

/// The proxy processes' CPU time over one workload.
struct CpuMeter {
    before: Duration,
}

impl CpuMeter {
    fn start(target: &Target) -> anyhow::Result<CpuMeter> {
        Ok(CpuMeter {
            before: proc_stats::total_cpu_time(&target.pids)?,
        })
    }

    /// CPU seconds per GiB moved; nothing for a target with no proxy process.
    fn per_gib(self, target: &Target, bytes: f64) -> anyhow::Result<Option<Figure>> {
        if target.pids.is_empty() {
            return Ok(None);
        }
        let used = proc_stats::total_cpu_time(&target.pids)? - self.before;
        Ok(Some(("cpu_s_per_gib", used.as_secs_f64() / (bytes / GIB))))
    }
}

struct ProducerSummary {
    records_per_s: f64,
    mib_per_s: f64,
    p99_ms: f64,
}

/// How a client reaches a target: its bootstrap list, and TLS settings for a TLS target.
struct Client<'a> {
    bootstrap: &'a str,
    tls_ca: Option<&'a std::path::Path>,
}

impl<'a> Client<'a> {
    fn of(target: &'a Target) -> Client<'a> {
        Client {
            bootstrap: &target.bootstrap,
            tls_ca: target.tls_ca.as_deref(),
        }
    }

    fn plaintext(bootstrap: &'a str) -> Client<'a> {
        Client {
            bootstrap,
            tls_ca: None,
        }
    }

    /// The Java client's TLS properties (`key=value`).
    fn java(&self) -> Vec<String> {
        let Some(ca) = self.tls_ca else {
            return Vec::new();
        };
        vec![
            "security.protocol=SSL".to_string(),
            "ssl.truststore.type=PEM".to_string(),
            format!("ssl.truststore.location={}", ca.display()),
        ]
    }

    /// A librdkafka configuration of this client.
    fn rdkafka(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap);
        if let Some(ca) = self.tls_ca {
            config
                .set("security.protocol", "ssl")
                .set("ssl.ca.location", ca.display().to_string());
        }
        config
    }
}

fn producer_performance(
    kafka: &Kafka,
    client: &Client,
    topic: &str,
    records: u64,
    size: u64,
) -> anyhow::Result<ProducerSummary> {
    let stdout = kafka.tool(
        "org.apache.kafka.tools.ProducerPerformance",
        &[
            "--topic".into(),
            topic.into(),
            "--num-records".into(),
            records.to_string(),
            "--record-size".into(),
            size.to_string(),
            "--throughput".into(),
            "-1".into(),
            "--producer-props".into(),
            format!("bootstrap.servers={}", client.bootstrap),
            "acks=all".into(),
        ]
        .into_iter()
        .chain(client.java())
        .collect::<Vec<String>>(),
    )?;
    parse_producer_summary(&stdout)
}

/// The tool's last line: `N records sent, R records/sec (M MB/sec), A ms avg latency,
/// X ms max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th.`
fn parse_producer_summary(stdout: &str) -> anyhow::Result<ProducerSummary> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains("99th"))
        .with_context(|| format!("no summary line in ProducerPerformance output:\n{stdout}"))?;
    let number_before = |unit: &str| -> anyhow::Result<f64> {
        let (head, _) = line
            .split_once(unit)
            .with_context(|| format!("no `{unit}` in `{line}`"))?;
        head.rsplit([' ', '('])
            .find(|s| !s.is_empty())
            .unwrap_or_default()
            .parse::<f64>()
            .with_context(|| format!("no number before `{unit}` in `{line}`"))
    };
    Ok(ProducerSummary {
        records_per_s: number_before(" records/sec")?,
        mib_per_s: number_before(" MB/sec")?,
        p99_ms: number_before(" ms 99th")?,
    })
}

/// ConsumerPerformance prints a header line of comma-separated names and one line of
/// values; returns a lookup by name.
fn consumer_stats(stdout: &str) -> anyhow::Result<impl Fn(&str) -> anyhow::Result<f64> + '_> {
    let mut lines = stdout.lines().filter(|l| l.contains(','));
    let (Some(header), Some(values)) = (lines.next(), lines.next_back()) else {
        bail!("no statistics in ConsumerPerformance output:\n{stdout}");
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let values: Vec<&str> = values.split(',').map(str::trim).collect();
    Ok(move |name: &str| {
        let i = names
            .iter()
            .position(|n| *n == name)
            .with_context(|| format!("no column {name} in `{header}`"))?;
        values
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no number for {name} in ConsumerPerformance output"))
    })
}

/// End-to-end latency at a fixed rate: acks=all, idempotent, no linger; the first second
/// is warm-up and not counted.
fn latency(kafka: &Kafka, target: &Target, sizes: &Sizes) -> anyhow::Result<Vec<Figure>> {
    let topic = format!("bench-latency-{}", target.kind);
    kafka.recreate_topic(&topic)?;
    let total = sizes.latency_rate_per_s * sizes.latency_seconds;
    let clock = Instant::now();
    let consumer = latency_consumer(&Client::of(target), &topic)?;
    let (sender, latencies) = mpsc::channel();
    let reader = std::thread::spawn(move || read_latencies(consumer, clock, total, sender));

    let producer: ThreadedProducer<DefaultProducerContext> = Client::of(target)
        .rdkafka()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()
        .context("creating the latency producer")?;
    let interval = Duration::from_secs_f64(1.0 / sizes.latency_rate_per_s as f64);
    let mut payload = vec![b'x'; sizes.latency_record_bytes.max(8)];
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = clock.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&sent.to_be_bytes());
        let key = i.to_be_bytes();
        let mut record = BaseRecord::to(&topic).key(&key[..]).payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(1));
                    record = back;
                }
                Err((e, _)) => bail!("sending to {topic}: {e}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing the latency producer")?;
    let mut seen: Vec<Duration> = Vec::with_capacity(total as usize);
    seen.extend(latencies.iter());
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the latency reader panicked"))??;
    kafka.delete_topic(&topic)?;
    if (seen.len() as u64) < total {
        bail!(
            "only {} of {total} records arrived within the deadline",
            seen.len()
        );
    }
    let warm_up = sizes.latency_rate_per_s as usize;
    let mut measured: Vec<f64> = seen[warm_up..]
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    measured.sort_by(f64::total_cmp);
    Ok(vec![
        ("p50_ms", percentile(&measured, 0.50)),
        ("p99_ms", percentile(&measured, 0.99)),
        ("p999_ms", percentile(&measured, 0.999)),
    ])
}

fn latency_consumer(client: &Client, topic: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = client
        .rdkafka()
        .set("group.id", "bench-latency")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the latency consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Sends each record's latency, in arrival order, until `total` arrived or a minute
/// passed without one.
fn read_latencies(
    consumer: BaseConsumer,
    clock: Instant,
    total: u64,
    out: mpsc::Sender<Duration>,
) -> anyhow::Result<()> {
    let mut received = 0;
    let mut last = Instant::now();
    while received < total && last.elapsed() < Duration::from_secs(60) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let now = clock.elapsed();
        let message = message.context("consuming latency records")?;
        let sent = message
            .payload()
            .and_then(|p| p.get(..8))
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
            .context("a latency record without its send time")?;
        let _ = out.send(now.saturating_sub(Duration::from_nanos(sent)));
        received += 1;
        last = Instant::now();
    }
    Ok(())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Resident memory of one proxy process holding `count` idle client connections, each of
/// which has made one ApiVersions call (so the proxy holds its upstream connection too).
fn idle(target: &Target, count: usize) -> anyhow::Result<Vec<Figure>> {
    let Some((address, pid)) = &target.idle else {
        return Ok(Vec::new());
    };
    let before = proc_stats::resident_bytes(*pid)?;
    let clients: Vec<RawClient> = (0..count)
        .map(|_| {
            let mut client = RawClient::connect(address);
            client.api_versions();
            client
        })
        .collect();
    let after = proc_stats::resident_bytes(*pid)?;
    drop(clients);
    Ok(vec![
        ("rss_mib", after as f64 / MIB),
        (
            "kib_per_connection",
            after.saturating_sub(before) as f64 / 1024.0 / count as f64,
        ),
    ])
}
