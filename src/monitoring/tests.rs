use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use flotilla_config::MonitoringConfig;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::connection::ConnectionTraffic;
use super::*;
use crate::protocol::batches::tests::batch;
use crate::protocol::batches::Codec;
use crate::protocol::header::{parse_request, tests::encode_request};
use crate::proxy::clients::ClientConnections;

fn traffic(max: usize) -> Arc<Traffic> {
    let config = MonitoringConfig {
        max_topics: max,
        max_clients: max,
        ..Default::default()
    };
    Arc::new(Traffic::new(
        Arc::new(Metrics::with_monitoring(&config)),
        &config,
    ))
}

fn produce(topics: &[&str], records: usize) -> Bytes {
    let topic_data = topics
        .iter()
        .map(|name| {
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(records, Codec::Lz4, 11))),
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(Some(batch(records, Codec::Lz4, 11))),
                ])
        })
        .collect();
    let body = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(topic_data);
    encode_request(ApiKey::Produce, 9, 1, &body)
}

fn series(metrics: &Metrics, name: &str) -> Vec<String> {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(name))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_produce_request_is_counted_per_topic_and_its_facts_reported() {
    let traffic = traffic(10);
    let clients = ClientConnections::new(4);
    let registration = clients.register("127.0.0.1:9".parse().unwrap(), "1");
    let connection =
        ConnectionTraffic::new(traffic.clone(), registration.connection.clone(), None, None);
    connection.set_client_id(Some("app-1"));
    let mut tally = connection.requests();
    let frame = produce(&["orders", "audit"], 3);
    let meta = parse_request(&frame).unwrap();
    tally.on_request(&meta, &frame, frame.len() as u64 + 4, -1);
    let orders = traffic.metrics().topics.slot("orders");
    assert_eq!(
        orders.records_in.get(),
        6,
        "two partitions of three records"
    );
    assert_eq!(
        orders.produce_requests.get(),
        1,
        "one request, whatever its partitions"
    );
    assert!(orders.bytes_in.get() > 2 * 300);
    let facts = registration.connection.facts();
    assert_eq!(facts.acks_levels(), vec![-1]);
    assert!(facts.idempotent);
    assert_eq!(describe(1, &registration.connection).codecs, vec!["lz4"]);
    assert_eq!(facts.client_id.as_deref(), Some("app-1"));
    let client = traffic.metrics().clients.slot("app-1");
    assert_eq!(client.bytes_in.get(), frame.len() as u64 + 4);
}

#[test]
fn random_topics_and_client_ids_cannot_grow_the_labels_past_the_cap() {
    let cap = 5;
    let traffic = traffic(cap);
    let clients = ClientConnections::new(4);
    for i in 0..4 * cap {
        let registration = clients.register("127.0.0.1:9".parse().unwrap(), "1");
        let connection =
            ConnectionTraffic::new(traffic.clone(), registration.connection.clone(), None, None);
        connection.set_client_id(Some(&format!("random-client-{i}")));
        let mut tally = connection.requests();
        let frame = produce(&[&format!("random-topic-{i}")], 1);
        tally.on_request(&parse_request(&frame).unwrap(), &frame, 10, 1);
    }
    let metrics = &traffic.metrics;
    let topics: Vec<_> = series(metrics, "flotilla_topic_records_total{direction=\"in\"");
    assert_eq!(topics.len(), cap + 1, "{topics:?}");
    assert!(topics.iter().any(|l| l.contains("topic=\"other\"")));
    // The empty client id of each connection before its first request takes a slot too.
    let client_series = series(metrics, "flotilla_client_bytes_total{");
    assert!(client_series.len() <= 2 * (cap + 1), "{client_series:?}");
    let folded = series(metrics, "flotilla_metric_labels_folded_total{");
    assert!(
        folded.iter().any(|l| l.contains("label=\"topic\"")),
        "{folded:?}"
    );
    let other = traffic.metrics().topics.slot("other");
    // Two partitions of one record each per request.
    assert_eq!(
        other.records_in.get(),
        2 * (4 * cap - cap) as u64,
        "nothing is lost, only folded"
    );
}

#[test]
fn fetch_responses_count_records_out_errors_and_latency() {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    let traffic = traffic(10);
    let clients = ClientConnections::new(4);
    let registration = clients.register("127.0.0.1:9".parse().unwrap(), "1");
    let connection =
        ConnectionTraffic::new(traffic.clone(), registration.connection.clone(), None, None);
    let mut tally = connection.responses();
    let topic = FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("clicks")))
        .with_partitions(vec![
            PartitionData::default().with_records(Some(batch(4, Codec::None, -1))),
            PartitionData::default()
                .with_partition_index(1)
                .with_error_code(6),
        ]);
    let mut frame = BytesMut::new();
    ResponseHeader::default().encode(&mut frame, 0).unwrap();
    FetchResponse::default()
        .with_responses(vec![topic])
        .encode(&mut frame, 11)
        .unwrap();
    tally.on_response(ApiKey::Fetch, 11, &frame.freeze(), Instant::now());
    let clicks = traffic.metrics().topics.slot("clicks");
    assert_eq!(clicks.records_out.get(), 4);
    assert_eq!(clicks.fetch_requests.get(), 1);
    let errors = series(&traffic.metrics, "flotilla_topic_errors_total{");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("error=\"NOT_LEADER_OR_FOLLOWER\"") && l.ends_with(" 1")),
        "{errors:?}"
    );
    assert_eq!(traffic.metrics().fetch_latency.get_sample_count(), 1);
}

#[test]
fn error_names_are_kafkas() {
    assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
    assert_eq!(error_name(i16::MAX), "UNKNOWN_CODE");
}

#[test]
fn the_throttle_counter_is_per_client_id() {
    let traffic = traffic(10);
    let kind = flotilla_raft::QuotaKind::ProducerByteRate;
    traffic
        .metrics
        .record_throttle(kind, "slow-app", Duration::from_millis(250));
    traffic
        .metrics
        .record_throttle(kind, "slow-app", Duration::from_millis(500));
    let throttled = series(
        &traffic.metrics,
        "flotilla_client_throttle_seconds_total{client_id=\"slow",
    );
    assert_eq!(
        throttled,
        vec!["flotilla_client_throttle_seconds_total{client_id=\"slow-app\"} 0.75"]
    );
}
