//! Traffic monitoring with real Kafka and real clients: a librdkafka producer (lz4,
//! acks=all, idempotent) and a Java consumer in a group through a 2-node fleet show up in
//! `proxyctl clients` with what they do, the topic shows up in `proxyctl top`, and the
//! per-topic counters match what was produced. Clients making up topic names and client
//! ids cannot grow the metrics past the configured caps.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use flotilla::api::{ClientConnection, ClientsReport, TrafficReport};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, MetadataRequest, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::fleet::Fleet;
use support::wire::RawClient;
use support::{kafka, kafka_tool, unique_topic, wait_for, Node};

const RECORDS: usize = 400;
const PAYLOAD: usize = 300;

/// The sum over `nodes` of `name`'s samples whose labels contain every filter.
fn metric_sum(nodes: &[&Node], name: &str, filters: &[&str]) -> f64 {
    nodes
        .iter()
        .flat_map(|node| {
            let text = node
                .access
                .get(&format!("{}/metrics", node.admin))
                .unwrap_or_default();
            text.lines()
                .filter(|l| l.starts_with(name) && filters.iter().all(|f| l.contains(f)))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

fn proxyctl_json<T: serde::de::DeserializeOwned>(node: &Node, args: &[&str]) -> Option<T> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = node.access.proxyctl(node, &all, "");
    if !out.status.success() {
        eprintln!(
            "proxyctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// A Java consumer in `group`, printing a JSON event per record; killed when dropped.
struct JavaConsumer {
    child: Child,
    consumed: Arc<AtomicUsize>,
}

impl JavaConsumer {
    fn start(bootstrap: &str, topic: &str, group: &str) -> JavaConsumer {
        let mut child = kafka_tool(
            "org.apache.kafka.tools.VerifiableConsumer",
            &[
                "--bootstrap-server",
                bootstrap,
                "--topic",
                topic,
                "--group-id",
                group,
                "--reset-policy",
                "earliest",
                "--verbose",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let consumed = Arc::new(AtomicUsize::new(0));
        let stdout = child.stdout.take().unwrap();
        let counter = consumed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"record_data\"") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        JavaConsumer { child, consumed }
    }
}

impl Drop for JavaConsumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(
    report: &ClientsReport,
    test: impl Fn(&ClientConnection) -> bool,
) -> Option<&ClientConnection> {
    report.clients.iter().find(|c| test(c))
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_top_and_topic_counters_of_real_clients_through_a_fleet() {
    let mut fleet = Fleet::start(2, kafka(), "2s");
    let (bootstrap_1, bootstrap_2) = (
        fleet.node(1).bootstrap.clone(),
        fleet.node(2).bootstrap.clone(),
    );
    let topic = unique_topic("monitoring");
    let group = unique_topic("monitoring-group");
    support::rdkafka::create_topic(&bootstrap_1, &topic, 3).await;

    // lz4 producer of compressible records; a plain one of incompressible records, whose
    // bytes on the wire are at least their payload (librdkafka sends a batch uncompressed
    // when compression would not shrink it).
    let plain_topic = unique_topic("monitoring-plain");
    support::rdkafka::create_topic(&bootstrap_1, &plain_topic, 1).await;
    let producer = librdkafka_producer(&bootstrap_1, "monitoring-producer", "lz4");
    produce_all(&producer, &topic, |i| compressible(i as u64)).await;
    let plain = librdkafka_producer(&bootstrap_1, "monitoring-plain-producer", "none");
    produce_all(&plain, &plain_topic, |i| incompressible(i as u64)).await;
    let consumer = JavaConsumer::start(&bootstrap_2, &topic, &group);

    let nodes = [&fleet.nodes[0], &fleet.nodes[1]];
    let topic_label = format!("topic=\"{topic}\"");
    let records_in = metric_sum(
        &nodes,
        "flotilla_topic_records_total",
        &[&topic_label, "direction=\"in\""],
    );
    assert_eq!(
        records_in as usize, RECORDS,
        "records in, summed over the fleet"
    );
    let plain_label = format!("topic=\"{plain_topic}\"");
    let in_of = |label: &str, metric: &str| {
        metric_sum(&nodes, metric, &[label, "direction=\"in\""]) as usize
    };
    assert_eq!(in_of(&plain_label, "flotilla_topic_records_total"), RECORDS);
    let plain_bytes = in_of(&plain_label, "flotilla_topic_bytes_total");
    assert!(
        plain_bytes >= RECORDS * PAYLOAD,
        "{plain_bytes} bytes in, for {} bytes of payload",
        RECORDS * PAYLOAD
    );
    let lz4_bytes = in_of(&topic_label, "flotilla_topic_bytes_total");
    assert!(
        lz4_bytes > 0 && lz4_bytes < RECORDS * PAYLOAD,
        "{lz4_bytes}: compressed batches are counted as sent"
    );

    // The Java consumer names the topic by id (Fetch v13+); the node looks the name up.
    wait_for(
        "the Java consumer to read every record",
        Duration::from_secs(60),
        || (consumer.consumed.load(Ordering::Relaxed) >= RECORDS).then_some(()),
    );
    wait_for(
        "records out counted under the topic's name",
        Duration::from_secs(20),
        || {
            let out = metric_sum(
                &nodes,
                "flotilla_topic_records_total",
                &[&topic_label, "direction=\"out\""],
            );
            (out as usize >= RECORDS).then_some(())
        },
    );
    assert!(
        metric_sum(
            &nodes,
            "flotilla_request_latency_seconds_count",
            &["api=\"produce\""]
        ) > 0.0
    );
    assert!(
        metric_sum(
            &nodes,
            "flotilla_request_latency_seconds_count",
            &["api=\"fetch\""]
        ) > 0.0
    );
    assert!(
        metric_sum(&nodes, "flotilla_client_software", &["name=\"librdkafka\""]) >= 1.0,
        "connections by client software"
    );

    let node_1 = &fleet.nodes[0];
    let clients: ClientsReport = wait_for(
        "proxyctl clients to show both clients and what they do",
        Duration::from_secs(30),
        || {
            let report: ClientsReport = proxyctl_json(node_1, &["clients"])?;
            let producing = find(&report, |c| {
                c.client_id.as_deref() == Some("monitoring-producer") && !c.acks.is_empty()
            })?;
            let grouped = find(&report, |c| c.groups.contains(&group))?;
            (producing.codecs.contains(&"lz4".to_string()) && grouped.software_name.is_some())
                .then_some(report)
        },
    );
    assert_eq!(clients.nodes, vec![1, 2], "{clients:?}");
    let producing = find(&clients, |c| {
        c.client_id.as_deref() == Some("monitoring-producer") && !c.acks.is_empty()
    })
    .unwrap();
    assert_eq!(
        producing.software_name.as_deref(),
        Some("librdkafka"),
        "{producing:?}"
    );
    assert!(producing
        .software_version
        .as_ref()
        .is_some_and(|v| !v.is_empty()));
    assert_eq!(producing.acks, vec![-1]);
    assert_eq!(producing.codecs, vec!["lz4"]);
    assert!(producing.idempotent);
    let grouped = find(&clients, |c| c.groups.contains(&group)).unwrap();
    assert_eq!(
        grouped.software_name.as_deref(),
        Some("apache-kafka-java"),
        "{grouped:?}"
    );
    assert!(
        clients.clients.iter().any(|c| c.node == 1) && clients.clients.iter().any(|c| c.node == 2),
        "connections of both nodes are listed"
    );

    let top: TrafficReport = wait_for(
        "proxyctl top to show the topic",
        Duration::from_secs(20),
        || {
            let report: TrafficReport = proxyctl_json(node_1, &["top"])?;
            report
                .topics
                .iter()
                .any(|t| t.topic == topic && t.bytes_in_per_sec > 0.0 && t.records_in_per_sec > 0.0)
                .then_some(report)
        },
    );
    assert_eq!(top.nodes, vec![1, 2]);
    assert!(top.missing.is_empty());
    let producer_rates = top
        .clients
        .iter()
        .find(|c| c.client_id == "monitoring-producer")
        .expect("the producer among the busiest clients");
    assert!(producer_rates.bytes_in_per_sec > 0.0);
    let table = node_1.access.proxyctl(node_1, &["top"], "");
    assert!(String::from_utf8_lossy(&table.stdout).contains(&topic));
    drop(consumer);
}

fn librdkafka_producer(bootstrap: &str, client_id: &str, compression: &str) -> FutureProducer {
    support::rdkafka::client_config(bootstrap)
        .set("client.id", client_id)
        .set("compression.type", compression)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// Sends `RECORDS` records of `payload(i)` and waits until every one is acknowledged.
async fn produce_all(producer: &FutureProducer, topic: &str, payload: impl Fn(usize) -> Vec<u8>) {
    let sends = (0..RECORDS).map(|i| {
        let key = i.to_string();
        let payload = payload(i);
        async move {
            let record = FutureRecord::to(topic).key(&key).payload(&payload);
            producer.send(record, Duration::from_secs(30)).await
        }
    });
    for sent in futures::future::join_all(sends).await {
        sent.expect("every record acknowledged");
    }
}

/// `PAYLOAD` bytes of which most repeat, so lz4 shrinks a batch of them.
fn compressible(seed: u64) -> Vec<u8> {
    let mut payload = incompressible(seed);
    payload[16..].fill(b'c');
    payload
}

/// `PAYLOAD` bytes lz4 cannot shrink (xorshift), so the bytes counted as produced are at
/// least the payload.
fn incompressible(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..PAYLOAD)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A request frame with `client_id` in its header.
fn frame<R: Encodable>(api_key: ApiKey, version: i16, client_id: &str, body: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())))
        .encode(&mut buf, api_key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn one_record_batch() -> bytes::Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: support::wire::now_millis(),
        key: None,
        value: Some(bytes::Bytes::from_static(b"x")),
        headers: Default::default(),
    };
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut out, [&record], &options).unwrap();
    out.freeze()
}

#[test]
fn made_up_topics_and_client_ids_cannot_grow_the_metrics_past_the_caps() {
    const CAP: usize = 8;
    let node = Node::start_with(
        kafka(),
        &format!("[monitoring]\nmax_topics = {CAP}\nmax_clients = {CAP}\n"),
    );
    let run = unique_topic("made-up");
    for i in 0..2 * CAP {
        let client_id = format!("{run}-client-{i}");
        let mut client = RawClient::connect(&node.bootstrap);
        // Metadata for topics that do not exist labels nothing.
        let asked = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(format!("{run}-metadata-only-{i}"))),
            ))]))
            .with_allow_auto_topic_creation(false);
        client.send_frame(&frame(ApiKey::Metadata, 12, &client_id, &asked));
        client.read_frame().expect("a Metadata answer");
        let partition = PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(one_record_batch()));
        let produce = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(format!("{run}-topic-{i}"))))
                .with_partition_data(vec![partition])]);
        client.send_frame(&frame(ApiKey::Produce, 9, &client_id, &produce));
        client
            .read_frame()
            .expect("a Produce answer (an error: no such topic)");
    }
    let metrics = node.access.get(&format!("{}/metrics", node.admin)).unwrap();
    let series = |name: &str, filter: &str| -> Vec<String> {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(filter))
            .map(str::to_string)
            .collect()
    };
    let topics = series("flotilla_topic_records_total{direction=\"in\"", "");
    assert!(topics.len() <= CAP + 1, "{topics:#?}");
    assert!(topics.iter().any(|l| l.contains("topic=\"other\"")));
    assert!(
        series("flotilla_topic_", "metadata-only").is_empty(),
        "topics only asked about in Metadata are not labelled"
    );
    let folded_topics = node.metric("flotilla_metric_labels_folded_total", "label=\"topic\"");
    assert!(
        folded_topics >= CAP as f64,
        "{folded_topics} topic values folded"
    );
    let records = node.metric("flotilla_topic_records_total", "direction=\"in\"");
    assert_eq!(
        records as usize,
        2 * CAP,
        "every record counted, folded or not"
    );
    let clients = series("flotilla_client_bytes_total{direction=\"in\"", "");
    assert!(clients.len() <= CAP + 1, "{clients:#?}");
    assert!(node.metric("flotilla_metric_labels_folded_total", "label=\"client_id\"") > 0.0);
}
