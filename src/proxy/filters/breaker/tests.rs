//! The breaker filter on encoded requests and responses.

use std::sync::Arc;

use bytes::Bytes;
use flotilla_raft::governance::{Breaker, BreakerMode, BreakerOrigin, BreakerRule, RuleMetric};
use flotilla_raft::ControlState;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;

use super::meter::TopicMeter;
use super::{unix_millis, Breakers, HOLD_PAUSE};
use crate::cluster::usage::UsageSource;
use crate::metrics::Metrics;
use crate::protocol::header::{parse_request, tests::encode_request};
use crate::proxy::filter::{Env, Filter, Listener, Session, Transport, Verdict};
use crate::proxy::filters::test_support::broker_response;
use crate::proxy::filters::topic_names::TopicNames;
use crate::proxy::message::{Request, Response};

struct Fixture {
    filter: Breakers,
    meter: Arc<TopicMeter>,
    metrics: Arc<Metrics>,
    session: Session,
    control: ControlState,
}

impl Fixture {
    fn new() -> Fixture {
        let metrics = Arc::new(Metrics::new());
        let meter = Arc::new(TopicMeter::default());
        Fixture {
            filter: Breakers::new(&Arc::new(TopicNames::default()), &meter, &metrics),
            meter,
            metrics,
            session: Session::new(
                "127.0.0.1:1".parse().unwrap(),
                Listener::Bootstrap,
                Transport::Plaintext,
            ),
            control: ControlState::default(),
        }
    }

    fn open(&mut self, pattern: &str, mode: BreakerMode, until_ms: Option<u64>) {
        let breaker = Breaker {
            pattern: pattern.parse().unwrap(),
            produce: true,
            fetch: true,
            mode,
            reason: "maintenance".into(),
            origin: BreakerOrigin::Manual,
            opened_at_ms: 1,
            until_ms,
        };
        self.control
            .breakers
            .insert(breaker.pattern.clone(), breaker);
    }

    fn env(&self) -> Env<'_> {
        Env {
            session: &self.session,
            control: &self.control,
        }
    }

    fn on_request(&self, request: &mut Request) -> Verdict {
        self.filter.on_request(request, &self.env())
    }

    /// The response the client reads after the filter ran over the broker's `body`.
    fn client_reads<T: Encodable>(&self, api_key: ApiKey, version: i16, body: &T) -> ResponseKind {
        let mut response = Response::new(api_key, version, broker_response(api_key, version, body));
        self.filter.on_response(&mut response, &self.env()).unwrap();
        let mut response = Response::new(api_key, version, response.into_frame().unwrap());
        let mut seen = None;
        response
            .edit(|body| {
                seen = Some(body.clone());
                false
            })
            .unwrap();
        seen.unwrap()
    }

    fn action_count(&self, api: &str, mode: &str) -> u64 {
        self.metrics
            .breakers
            .actions
            .with_label_values(&[api, mode])
            .get()
    }
}

fn request<R: Encodable>(api_key: ApiKey, version: i16, body: &R) -> Request {
    let frame = encode_request(api_key, version, 77, body);
    Request::new(parse_request(&frame).unwrap(), frame)
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn produce(topics: &[&str], acks: i16) -> ProduceRequest {
    let data = topics.iter().map(|t| {
        TopicProduceData::default()
            .with_name(name(t))
            .with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from_static(b"batch"))),
                PartitionProduceData::default()
                    .with_index(1)
                    .with_records(Some(Bytes::from_static(b"batch"))),
            ])
    });
    ProduceRequest::default()
        .with_acks(acks)
        .with_topic_data(data.collect())
}

fn fetch(topics: &[&str], session_epoch: i32) -> FetchRequest {
    let topics = topics.iter().map(|t| {
        FetchTopic::default()
            .with_topic(name(t))
            .with_partitions(vec![Default::default()])
    });
    FetchRequest::default()
        .with_max_wait_ms(500)
        .with_session_id(if session_epoch > 0 { 9 } else { 0 })
        .with_session_epoch(session_epoch)
        .with_topics(topics.collect())
}

fn forwarded_topics(request: &mut Request) -> Vec<String> {
    match request.body().unwrap() {
        RequestKind::Produce(r) => r.topic_data.iter().map(|t| t.name.0.to_string()).collect(),
        RequestKind::Fetch(r) => r.topics.iter().map(|t| t.topic.0.to_string()).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

fn produce_errors(body: &ResponseKind) -> Vec<(String, i16, Option<String>)> {
    let ResponseKind::Produce(body) = body else {
        panic!("a produce response, not {body:?}")
    };
    body.responses
        .iter()
        .flat_map(|t| {
            t.partition_responses.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.error_code,
                    p.error_message.as_ref().map(|m| m.to_string()),
                )
            })
        })
        .collect()
}

#[test]
fn with_no_breaker_and_no_rule_nothing_is_decoded() {
    let fixture = Fixture::new();
    let mut request = request(ApiKey::Produce, 9, &produce(&["orders"], -1));
    assert!(matches!(fixture.on_request(&mut request), Verdict::Forward));
    let frame = request.frame().clone();
    let sent = request.into_frame().unwrap();
    assert_eq!(sent.as_ptr(), frame.as_ptr(), "forwarded as the same bytes");
}

#[test]
fn a_held_topic_is_taken_out_and_answered_retriably_in_the_merged_response() {
    let mut fixture = Fixture::new();
    fixture.open("orders*", BreakerMode::Hold, None);
    let mut request = request(ApiKey::Produce, 9, &produce(&["orders.eu", "payments"], -1));
    assert!(matches!(fixture.on_request(&mut request), Verdict::Forward));
    assert_eq!(forwarded_topics(&mut request), ["payments"]);

    let written = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(name("payments"))
        .with_partition_responses(vec![
            PartitionProduceResponse::default().with_index(0),
            PartitionProduceResponse::default().with_index(1),
        ])]);
    let read = fixture.client_reads(ApiKey::Produce, 9, &written);
    let held = ResponseError::NotEnoughReplicas.code();
    let message = Some("topic orders.eu is held by a flotilla circuit breaker: maintenance".into());
    assert_eq!(
        produce_errors(&read),
        [
            ("payments".into(), 0, None),
            ("payments".into(), 0, None),
            ("orders.eu".into(), held, message.clone()),
            ("orders.eu".into(), held, message),
        ]
    );
    assert_eq!(fixture.action_count("produce", "hold"), 2);
}

#[test]
fn a_produce_whose_every_topic_is_held_waits_and_is_throttled() {
    let mut fixture = Fixture::new();
    fixture.open("orders", BreakerMode::Hold, None);
    let mut request = request(ApiKey::Produce, 7, &produce(&["orders"], -1));
    let Verdict::AnswerAfter(pause, answer) = fixture.on_request(&mut request) else {
        panic!("answered after a pause")
    };
    assert_eq!(pause, HOLD_PAUSE);
    let ResponseKind::Produce(answer) = *answer else {
        panic!("a produce answer")
    };
    assert_eq!(answer.throttle_time_ms, HOLD_PAUSE.as_millis() as i32);
    let codes: Vec<i16> = answer.responses[0]
        .partition_responses
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, [19, 19]);
}

#[test]
fn reject_answers_a_policy_violation_at_once_with_the_reason() {
    let mut fixture = Fixture::new();
    fixture.open("orders", BreakerMode::Reject, None);
    let mut request = request(ApiKey::Produce, 9, &produce(&["orders"], -1));
    let Verdict::Answer(answer) = fixture.on_request(&mut request) else {
        panic!("answered at once")
    };
    let errors = produce_errors(&answer);
    assert_eq!(errors[0].1, ResponseError::PolicyViolation.code());
    assert_eq!(
        errors[0].2.as_deref(),
        Some("topic orders is closed by a flotilla circuit breaker: maintenance")
    );
    assert_eq!(fixture.action_count("produce", "reject"), 2);
}

#[test]
fn an_acks_0_produce_loses_its_held_batches_and_leaves_no_note() {
    let mut fixture = Fixture::new();
    fixture.open("orders", BreakerMode::Hold, None);
    let mut request = request(ApiKey::Produce, 9, &produce(&["orders", "payments"], 0));
    assert!(matches!(fixture.on_request(&mut request), Verdict::Forward));
    assert_eq!(forwarded_topics(&mut request), ["payments"]);
    assert_eq!(fixture.metrics.breakers.dropped_batches.get(), 2);
    assert!(fixture
        .session
        .notes
        .take::<Vec<crate::proxy::filters::partial::TakenOut>>("breaker", 77)
        .is_none());
}

#[test]
fn a_breaker_past_its_end_no_longer_applies() {
    let mut fixture = Fixture::new();
    let now = unix_millis();
    fixture.open("orders", BreakerMode::Hold, Some(now - 1));
    let mut request = request(ApiKey::Produce, 9, &produce(&["orders"], -1));
    assert!(matches!(fixture.on_request(&mut request), Verdict::Forward));
    fixture.open("orders", BreakerMode::Hold, Some(now + 60_000));
    assert!(matches!(
        fixture.on_request(&mut request),
        Verdict::AnswerAfter(..)
    ));
}

#[test]
fn a_fetch_of_held_topics_only_waits_its_long_poll_and_gets_empty_partitions() {
    let mut fixture = Fixture::new();
    fixture.open("orders", BreakerMode::Reject, None);
    let mut request = request(ApiKey::Fetch, 12, &fetch(&["orders"], -1));
    let Verdict::AnswerAfter(pause, answer) = fixture.on_request(&mut request) else {
        panic!("answered after the long poll")
    };
    assert_eq!(pause.as_millis(), 500);
    let ResponseKind::Fetch(answer) = *answer else {
        panic!("a fetch answer")
    };
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.session_id, 0);
    let partition = &answer.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0, "no error, even in reject mode");
    assert_eq!(partition.records.as_deref(), Some(&b""[..]));
    assert_eq!(fixture.action_count("fetch", "hold"), 1);
}

#[test]
fn a_mixed_full_fetch_goes_on_sessionless_and_gets_the_held_topic_back_empty() {
    let mut fixture = Fixture::new();
    fixture.open("orders", BreakerMode::Hold, None);
    let mut request = request(ApiKey::Fetch, 12, &fetch(&["orders", "payments"], 0));
    assert!(matches!(fixture.on_request(&mut request), Verdict::Forward));
    assert_eq!(forwarded_topics(&mut request), ["payments"]);
    let Ok(RequestKind::Fetch(sent)) = request.body() else {
        panic!("a fetch")
    };
    assert_eq!((sent.session_id, sent.session_epoch), (0, -1));

    let written = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(name("payments"))
        .with_partitions(vec![PartitionData::default()
            .with_high_watermark(5)
            .with_records(Some(Bytes::from_static(b"data")))])]);
    let ResponseKind::Fetch(read) = fixture.client_reads(ApiKey::Fetch, 12, &written) else {
        panic!("a fetch response")
    };
    let topics: Vec<String> = read
        .responses
        .iter()
        .map(|t| t.topic.0.to_string())
        .collect();
    assert_eq!(topics, ["payments", "orders"]);
    assert_eq!(read.responses[1].partitions[0].high_watermark, -1);
}

#[test]
fn an_incremental_fetch_carrying_a_held_topic_ends_its_session() {
    let mut fixture = Fixture::new();
    fixture.open("orders", BreakerMode::Hold, None);
    let mut named = request(ApiKey::Fetch, 12, &fetch(&["orders"], 3));
    let Verdict::Answer(answer) = fixture.on_request(&mut named) else {
        panic!("answered at once")
    };
    let ResponseKind::Fetch(answer) = *answer else {
        panic!("a fetch answer")
    };
    assert_eq!(
        answer.error_code,
        ResponseError::FetchSessionIdNotFound.code()
    );

    // The session still fetches `orders` without naming it: its response is checked.
    let mut unnamed = request(ApiKey::Fetch, 12, &fetch(&["payments"], 4));
    assert!(matches!(fixture.on_request(&mut unnamed), Verdict::Forward));
    let written = FetchResponse::default()
        .with_session_id(9)
        .with_responses(vec![FetchableTopicResponse::default()
            .with_topic(name("orders"))
            .with_partitions(vec![
                PartitionData::default().with_records(Some(Bytes::from_static(b"data")))
            ])]);
    let ResponseKind::Fetch(read) = fixture.client_reads(ApiKey::Fetch, 12, &written) else {
        panic!("a fetch response")
    };
    assert_eq!(
        read.error_code,
        ResponseError::FetchSessionIdNotFound.code()
    );
    assert!(
        read.responses.is_empty(),
        "no held records reach the client"
    );
}

#[test]
fn topics_named_by_id_are_covered_once_metadata_named_them() {
    let mut fixture = Fixture::new();
    fixture.open("orders", BreakerMode::Hold, None);
    let id = uuid::Uuid::from_u128(42);
    let metadata = MetadataResponse::default().with_topics(vec![
        metadata_response::MetadataResponseTopic::default()
            .with_name(Some(name("orders")))
            .with_topic_id(id),
    ]);
    fixture.client_reads(ApiKey::Metadata, 12, &metadata);
    let by_id = FetchRequest::default()
        .with_max_wait_ms(200)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(id)
            .with_partitions(vec![Default::default()])]);
    let mut request = request(ApiKey::Fetch, 13, &by_id);
    assert!(matches!(
        fixture.on_request(&mut request),
        Verdict::AnswerAfter(..)
    ));
}

#[test]
fn a_rule_measures_forwarded_bytes_of_the_topics_it_watches() {
    let mut fixture = Fixture::new();
    let rule = BreakerRule {
        name: "hot".into(),
        pattern: "orders*".parse().unwrap(),
        metric: RuleMetric::ProduceBytesPerSecond,
        threshold: 1,
        sustain_secs: 1,
        cool_down_secs: 1,
        mode: BreakerMode::Hold,
        produce: true,
        fetch: true,
    };
    fixture.control.breaker_rules.insert("hot".into(), rule);
    fixture.meter.local_rates();
    let mut request = request(ApiKey::Produce, 9, &produce(&["orders.eu", "payments"], -1));
    assert!(matches!(fixture.on_request(&mut request), Verdict::Forward));
    let rates = fixture.meter.local_rates();
    assert_eq!(rates.len(), 1, "{rates:?}");
    assert!(rates["bytes:orders.eu"] > 0.0);
}

#[tokio::test]
async fn an_id_this_node_cannot_name_is_held_while_a_breaker_is_in_force() {
    let mut fixture = Fixture::new();
    let unknown = FetchRequest::default()
        .with_max_wait_ms(200)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(uuid::Uuid::from_u128(7))
            .with_partitions(vec![Default::default()])]);
    fixture.open("orders", BreakerMode::Hold, None);
    let mut held = request(ApiKey::Fetch, 13, &unknown);
    assert!(matches!(
        fixture.on_request(&mut held),
        Verdict::AnswerAfter(..)
    ));
    let names = fixture.filter.names.clone();
    tokio::time::timeout(std::time::Duration::from_secs(1), names.learning_wanted())
        .await
        .expect("the node is asked to learn ids");

    fixture.control.breakers.clear();
    let mut forwarded = request(ApiKey::Fetch, 13, &unknown);
    assert!(
        matches!(fixture.on_request(&mut forwarded), Verdict::Forward),
        "with no breaker an unknown id is the broker's to answer"
    );
}
