//! The ACL filter on its own: decisions, split Produce and Fetch, trimmed Metadata.

use std::sync::Arc;

use bytes::Bytes;
use flotilla_config::AclConfig;
use flotilla_raft::security::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType};
use flotilla_raft::ControlState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;

use super::Authorization;
use crate::metrics::Metrics;
use crate::protocol::header::{parse_request, tests::encode_request};
use crate::proxy::filter::{Env, Filter, Listener, Session, Transport, Verdict};
use crate::proxy::filters::test_support::broker_response;
use crate::proxy::message::{Request, Response};

fn allow(
    principal: &str,
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    operation: AclOperation,
) -> AclBinding {
    AclBinding {
        resource_type,
        name: name.to_string(),
        pattern_type,
        principal: principal.to_string(),
        host: "*".to_string(),
        operation,
        permission: AclPermission::Allow,
    }
}

/// alice may write `orders.*` and read group `g`; nothing else is named.
fn control() -> ControlState {
    let mut state = ControlState::default();
    state.acls.insert(allow(
        "User:alice",
        ResourceType::Topic,
        "orders.",
        PatternType::Prefixed,
        AclOperation::Write,
    ));
    state.acls.insert(allow(
        "User:alice",
        ResourceType::Group,
        "g",
        PatternType::Literal,
        AclOperation::Read,
    ));
    state
}

fn filter(super_users: &[&str]) -> Authorization {
    let settings = AclConfig {
        super_users: super_users.iter().map(|s| s.to_string()).collect(),
        allow_if_no_acl: false,
    };
    Authorization::new(&settings, &Arc::new(Metrics::new()), &Arc::default())
}

fn session(principal: &str) -> Session {
    let mut session = Session::new(
        "127.0.0.1:1".parse().unwrap(),
        Listener::Bootstrap,
        Transport::Plaintext,
    );
    session.principal = Some(principal.to_string());
    session
}

fn request<R: Encodable>(api_key: ApiKey, version: i16, body: &R) -> Request {
    let frame = encode_request(api_key, version, 77, body);
    Request::new(parse_request(&frame).unwrap(), frame)
}

fn produce(topics: &[&str]) -> ProduceRequest {
    let data = topics.iter().map(|t| {
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(t.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from_static(b"batch")))])
    });
    ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(data.collect())
}

fn answered_error(verdict: Verdict) -> i16 {
    match verdict {
        Verdict::Answer(answer) => match *answer {
            ResponseKind::Produce(r) => r.responses[0].partition_responses[0].error_code,
            ResponseKind::JoinGroup(r) => r.error_code,
            ResponseKind::DescribeAcls(r) => r.error_code,
            other => panic!("unexpected answer {other:?}"),
        },
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn a_mixed_produce_forwards_the_allowed_topics_and_answers_the_denied_ones() {
    let (filter, control, session) = (filter(&[]), control(), session("User:alice"));
    let env = Env {
        session: &session,
        control: &control,
    };
    let mut request = request(ApiKey::Produce, 9, &produce(&["orders.eu", "payments"]));
    assert!(matches!(
        filter.on_request(&mut request, &env),
        Verdict::Forward
    ));
    let Ok(RequestKind::Produce(sent)) = request.body() else {
        panic!("a produce")
    };
    let sent: Vec<&str> = sent.topic_data.iter().map(|t| t.name.0.as_str()).collect();
    assert_eq!(
        sent,
        ["orders.eu"],
        "only the allowed topic reaches the broker"
    );

    let written = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
        .with_name(TopicName(StrBytes::from_static_str("orders.eu")))
        .with_partition_responses(vec![PartitionProduceResponse::default().with_index(0)])]);
    let mut response = Response::new(
        ApiKey::Produce,
        9,
        broker_response(ApiKey::Produce, 9, &written),
    );
    filter.on_response(&mut response, &env).unwrap();
    let mut response = Response::new(ApiKey::Produce, 9, response.into_frame().unwrap());
    let mut errors = Vec::new();
    response
        .edit(|body| {
            if let ResponseKind::Produce(body) = body {
                errors = body
                    .responses
                    .iter()
                    .map(|t| (t.name.0.to_string(), t.partition_responses[0].error_code))
                    .collect();
            }
            false
        })
        .unwrap();
    let denied = ResponseError::TopicAuthorizationFailed.code();
    assert_eq!(
        errors,
        [
            ("orders.eu".to_string(), 0),
            ("payments".to_string(), denied)
        ]
    );
}

#[test]
fn a_produce_to_denied_topics_only_is_answered_by_the_proxy() {
    let (filter, control, session) = (filter(&[]), control(), session("User:bob"));
    let env = Env {
        session: &session,
        control: &control,
    };
    let mut request = request(ApiKey::Produce, 9, &produce(&["orders.eu"]));
    let error = answered_error(filter.on_request(&mut request, &env));
    assert_eq!(error, ResponseError::TopicAuthorizationFailed.code());
}

#[test]
fn super_users_and_allowed_groups_pass_and_the_rest_gets_its_resource_error() {
    let control = control();
    let root = session("User:root");
    let env = Env {
        session: &root,
        control: &control,
    };
    let filter = filter(&["User:root"]);
    assert!(matches!(
        filter.on_request(&mut request(ApiKey::Produce, 9, &produce(&["x"])), &env),
        Verdict::Forward
    ));

    let alice = session("User:alice");
    let env = Env {
        session: &alice,
        control: &control,
    };
    let join = |group: &str| {
        JoinGroupRequest::default().with_group_id(GroupId(StrBytes::from_string(group.to_string())))
    };
    assert!(matches!(
        filter.on_request(&mut request(ApiKey::JoinGroup, 9, &join("g")), &env),
        Verdict::Forward
    ));
    let error =
        answered_error(filter.on_request(&mut request(ApiKey::JoinGroup, 9, &join("other")), &env));
    assert_eq!(error, ResponseError::GroupAuthorizationFailed.code());
    // An API the map does not name needs ALTER on the cluster.
    let error = answered_error(filter.on_request(
        &mut request(ApiKey::DescribeAcls, 3, &DescribeAclsRequest::default()),
        &env,
    ));
    assert_eq!(error, ResponseError::ClusterAuthorizationFailed.code());
}

#[test]
fn metadata_hides_topics_the_principal_may_not_describe() {
    let (filter, control, alice) = (filter(&[]), control(), session("User:alice"));
    let env = Env {
        session: &alice,
        control: &control,
    };
    let topic = |name: &str| {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
    };
    let answer =
        MetadataResponse::default().with_topics(vec![topic("orders.eu"), topic("payments")]);
    let listed = |named: Option<Vec<MetadataRequestTopic>>| {
        let mut request = request(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(named),
        );
        assert!(matches!(
            filter.on_request(&mut request, &env),
            Verdict::Forward
        ));
        let mut response = Response::new(
            ApiKey::Metadata,
            12,
            broker_response(ApiKey::Metadata, 12, &answer),
        );
        filter.on_response(&mut response, &env).unwrap();
        let mut out = Response::new(ApiKey::Metadata, 12, response.into_frame().unwrap());
        let mut topics = Vec::new();
        out.edit(|body| {
            if let ResponseKind::Metadata(body) = body {
                topics = body
                    .topics
                    .iter()
                    .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.error_code))
                    .collect();
            }
            false
        })
        .unwrap();
        topics
    };
    // Describe is implied by Write: alice sees orders.eu, and payments not at all.
    assert_eq!(listed(None), [("orders.eu".to_string(), 0)]);
    let named = vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_static_str("payments"))))];
    let denied = ResponseError::TopicAuthorizationFailed.code();
    assert_eq!(
        listed(Some(named)),
        [
            ("orders.eu".to_string(), 0),
            ("payments".to_string(), denied)
        ]
    );
}
