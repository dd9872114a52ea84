//! The shapes clients depend on most, checked field by field after a trip through the
//! wire format. The property test in tests/error_response_props.rs covers every API.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use super::*;

const THROTTLE_MS: i32 = 250;
const CORRELATION_ID: i32 = 7;

/// Builds the error answer, encodes it as the proxy would send it and decodes it as a
/// client would read it.
fn answer(request: impl Into<RequestKind>, version: i16, error: ResponseError) -> ResponseKind {
    let request = request.into();
    let body = error_response(&request, version, error, THROTTLE_MS).unwrap();
    let api_key = request_api_key(&request).unwrap();
    let mut frame = encode_response(CORRELATION_ID, api_key, version, &body).unwrap();
    let header = ResponseHeader::decode(&mut frame, response_header_version(api_key, version));
    assert_eq!(header.unwrap().correlation_id, CORRELATION_ID);
    let decoded = ResponseKind::decode(api_key, &mut frame, version).unwrap();
    assert!(frame.is_empty(), "{} bytes after the body", frame.len());
    decoded
}

fn topic_name(name: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(name))
}

fn group_id(name: &'static str) -> GroupId {
    GroupId(StrBytes::from_static_str(name))
}

/// A topic id, borrowed from a decoded message: kafka-protocol does not re-export `uuid`.
fn topic_id_holder(last_byte: u8) -> GetTelemetrySubscriptionsRequest {
    let mut body = [0u8; 17];
    body[15] = last_byte;
    GetTelemetrySubscriptionsRequest::decode(&mut Bytes::copy_from_slice(&body), 0).unwrap()
}

fn produce_request() -> ProduceRequest {
    let partition = |index| produce_request::PartitionProduceData::default().with_index(index);
    ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic_name("orders"))
            .with_topic_id(topic_id_holder(9).client_instance_id)
            .with_partition_data(vec![partition(0), partition(3)])])
}

#[test]
fn produce_answers_each_partition_with_unknown_offsets() {
    let ResponseKind::Produce(response) =
        answer(produce_request(), 9, ResponseError::NotLeaderOrFollower)
    else {
        panic!("not a Produce response");
    };
    assert_eq!(response.throttle_time_ms, THROTTLE_MS);
    let [topic] = &response.responses[..] else {
        panic!("{response:?}");
    };
    assert_eq!(topic.name, topic_name("orders"));
    let indexes: Vec<i32> = topic.partition_responses.iter().map(|p| p.index).collect();
    assert_eq!(indexes, [0, 3]);
    for partition in &topic.partition_responses {
        assert_eq!(
            partition.error_code,
            ResponseError::NotLeaderOrFollower.code()
        );
        assert_eq!(partition.base_offset, -1);
        assert_eq!(partition.log_append_time_ms, -1);
        assert_eq!(partition.log_start_offset, -1);
        assert!(partition.record_errors.is_empty());
    }
}

#[test]
fn produce_v13_names_topics_by_id() {
    let ResponseKind::Produce(response) =
        answer(produce_request(), 13, ResponseError::NotLeaderOrFollower)
    else {
        panic!("not a Produce response");
    };
    let topic = &response.responses[0];
    assert_eq!(topic.topic_id, topic_id_holder(9).client_instance_id);
    assert_eq!(topic.name, TopicName::default(), "v13 carries no names");
}

fn fetch_request(session_id: i32) -> FetchRequest {
    FetchRequest::default()
        .with_session_id(session_id)
        .with_session_epoch(if session_id == 0 { -1 } else { 5 })
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic_name("orders"))
            .with_partitions(vec![
                fetch_request::FetchPartition::default().with_partition(4)
            ])])
}

#[test]
fn fetch_answers_partitions_and_top_level_and_keeps_the_session() {
    let ResponseKind::Fetch(response) =
        answer(fetch_request(42), 12, ResponseError::NotLeaderOrFollower)
    else {
        panic!("not a Fetch response");
    };
    let code = ResponseError::NotLeaderOrFollower.code();
    assert_eq!(response.error_code, code);
    assert_eq!(response.session_id, 42);
    assert_eq!(response.throttle_time_ms, THROTTLE_MS);
    let partition = &response.responses[0].partitions[0];
    assert_eq!(response.responses[0].topic, topic_name("orders"));
    assert_eq!(partition.partition_index, 4);
    assert_eq!(partition.error_code, code);
    assert_eq!(partition.high_watermark, -1);
    assert_eq!(partition.last_stable_offset, -1);
    assert_eq!(partition.log_start_offset, -1);
    assert_eq!(partition.preferred_read_replica, BrokerId(-1));
    assert!(partition
        .records
        .as_ref()
        .is_none_or(|records| records.is_empty()));
}

#[test]
fn fetch_before_v7_has_no_session_and_no_top_level_code() {
    // Built by hand: one decoded off the wire could not hold a session before v7.
    let request = fetch_request(42);
    let ResponseKind::Fetch(response) = answer(request, 6, ResponseError::NotLeaderOrFollower)
    else {
        panic!("not a Fetch response");
    };
    assert_eq!((response.error_code, response.session_id), (0, 0));
    let partition = &response.responses[0].partitions[0];
    assert_eq!(
        partition.error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
}

#[test]
fn metadata_answers_each_named_topic_without_partitions() {
    let request = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name("orders"))),
        metadata_request::MetadataRequestTopic::default()
            .with_topic_id(topic_id_holder(3).client_instance_id),
    ]));
    let ResponseKind::Metadata(response) =
        answer(request, 13, ResponseError::TopicAuthorizationFailed)
    else {
        panic!("not a Metadata response");
    };
    let code = ResponseError::TopicAuthorizationFailed.code();
    assert_eq!(response.error_code, code);
    assert_eq!(response.throttle_time_ms, THROTTLE_MS);
    assert!(response.brokers.is_empty());
    let [by_name, by_id] = &response.topics[..] else {
        panic!("{response:?}");
    };
    assert_eq!(by_name.name, Some(topic_name("orders")));
    assert_eq!(
        by_id.name,
        Some(TopicName::default()),
        "Kafka never answers a null name"
    );
    assert_eq!(by_id.topic_id, topic_id_holder(3).client_instance_id);
    for topic in [by_name, by_id] {
        assert_eq!(topic.error_code, code);
        assert!(!topic.is_internal);
        assert!(topic.partitions.is_empty());
    }
}

#[test]
fn metadata_for_all_topics_lists_none() {
    let request = MetadataRequest::default().with_topics(None);
    let ResponseKind::Metadata(response) = answer(request, 12, ResponseError::NetworkException)
    else {
        panic!("not a Metadata response");
    };
    assert!(response.topics.is_empty());
}

#[test]
fn find_coordinator_before_v4_answers_at_the_top_level() {
    let request = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
    let ResponseKind::FindCoordinator(response) =
        answer(request, 3, ResponseError::CoordinatorNotAvailable)
    else {
        panic!("not a FindCoordinator response");
    };
    assert_eq!(
        response.error_code,
        ResponseError::CoordinatorNotAvailable.code()
    );
    assert_eq!(response.node_id, BrokerId(-1));
    assert_eq!(response.host, StrBytes::default());
    assert_eq!(response.port, -1);
    assert_eq!(response.throttle_time_ms, THROTTLE_MS);
    assert!(response.coordinators.is_empty());
}

#[test]
fn find_coordinator_from_v4_answers_each_key() {
    let keys = ["g1", "g2"].map(StrBytes::from_static_str);
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(keys.to_vec());
    let ResponseKind::FindCoordinator(response) =
        answer(request, 4, ResponseError::CoordinatorNotAvailable)
    else {
        panic!("not a FindCoordinator response");
    };
    let answered: Vec<&StrBytes> = response.coordinators.iter().map(|c| &c.key).collect();
    assert_eq!(answered, keys.iter().collect::<Vec<_>>());
    for coordinator in &response.coordinators {
        assert_eq!(
            coordinator.error_code,
            ResponseError::CoordinatorNotAvailable.code()
        );
        assert_eq!(coordinator.node_id, BrokerId(-1));
        assert_eq!(coordinator.host, StrBytes::default());
        assert_eq!(coordinator.port, -1);
    }
    assert_eq!(response.throttle_time_ms, THROTTLE_MS);
}

#[test]
fn offset_commit_answers_each_partition() {
    let partition = |index| {
        offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(100)
    };
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id("g"))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic_name("orders"))
                .with_partitions(vec![partition(1), partition(2)]),
        ]);
    let ResponseKind::OffsetCommit(response) =
        answer(request, 8, ResponseError::GroupAuthorizationFailed)
    else {
        panic!("not an OffsetCommit response");
    };
    assert_eq!(response.throttle_time_ms, THROTTLE_MS);
    let topic = &response.topics[0];
    assert_eq!(topic.name, topic_name("orders"));
    let partitions: Vec<(i32, i16)> = topic
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    let code = ResponseError::GroupAuthorizationFailed.code();
    assert_eq!(partitions, [(1, code), (2, code)]);
}

#[test]
fn offset_fetch_v7_answers_the_group_and_its_partitions() {
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id("g"))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(topic_name("orders"))
                .with_partition_indexes(vec![0, 5]),
        ]));
    let ResponseKind::OffsetFetch(response) =
        answer(request, 7, ResponseError::CoordinatorLoadInProgress)
    else {
        panic!("not an OffsetFetch response");
    };
    let code = ResponseError::CoordinatorLoadInProgress.code();
    assert_eq!(response.error_code, code);
    assert_eq!(response.throttle_time_ms, THROTTLE_MS);
    assert!(response.groups.is_empty());
    let partitions = &response.topics[0].partitions;
    assert_eq!(
        partitions
            .iter()
            .map(|p| p.partition_index)
            .collect::<Vec<_>>(),
        [0, 5]
    );
    for partition in partitions {
        assert_eq!(partition.error_code, code);
        assert_eq!(partition.committed_offset, -1);
        assert_eq!(partition.committed_leader_epoch, -1);
        assert_eq!(partition.metadata, Some(StrBytes::default()));
    }
}

#[test]
fn offset_fetch_v8_answers_each_group() {
    let with_topics = offset_fetch_request::OffsetFetchRequestGroup::default()
        .with_group_id(group_id("g1"))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopics::default()
                .with_name(topic_name("orders"))
                .with_partition_indexes(vec![2]),
        ]));
    let all_topics = offset_fetch_request::OffsetFetchRequestGroup::default()
        .with_group_id(group_id("g2"))
        .with_topics(None);
    let request = OffsetFetchRequest::default().with_groups(vec![with_topics, all_topics]);
    let ResponseKind::OffsetFetch(response) =
        answer(request, 8, ResponseError::GroupAuthorizationFailed)
    else {
        panic!("not an OffsetFetch response");
    };
    let code = ResponseError::GroupAuthorizationFailed.code();
    assert_eq!(response.error_code, 0, "v8 has no top-level code");
    let [first, second] = &response.groups[..] else {
        panic!("{response:?}");
    };
    assert_eq!((&first.group_id, first.error_code), (&group_id("g1"), code));
    assert_eq!(
        (&second.group_id, second.error_code),
        (&group_id("g2"), code)
    );
    let partition = &first.topics[0].partitions[0];
    assert_eq!((partition.partition_index, partition.error_code), (2, code));
    assert_eq!(partition.committed_offset, -1);
    assert!(
        second.topics.is_empty(),
        "a null topic list names no partitions"
    );
}

/// v0 is how Kafka answers a probe newer than it knows; v3 is a flexible version.
#[test]
fn api_versions_lists_its_own_range_with_unsupported_version() {
    for version in [0, 3] {
        let ResponseKind::ApiVersions(response) = answer(
            ApiVersionsRequest::default(),
            version,
            ResponseError::UnsupportedVersion,
        ) else {
            panic!("not an ApiVersions response");
        };
        assert_eq!(
            response.error_code,
            ResponseError::UnsupportedVersion.code()
        );
        let [entry] = &response.api_keys[..] else {
            panic!("{response:?}");
        };
        let range = ApiKey::ApiVersions.valid_versions();
        assert_eq!(entry.api_key, ApiKey::ApiVersions as i16);
        assert_eq!(
            (entry.min_version, entry.max_version),
            (range.min, range.max)
        );
    }
}

#[test]
fn api_versions_lists_nothing_with_other_errors() {
    let ResponseKind::ApiVersions(response) = answer(
        ApiVersionsRequest::default(),
        2,
        ResponseError::ClusterAuthorizationFailed,
    ) else {
        panic!("not an ApiVersions response");
    };
    assert_eq!(
        response.error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    assert!(response.api_keys.is_empty());
}

#[test]
fn api_versions_header_is_v0_even_for_flexible_versions() {
    let request = RequestKind::from(ApiVersionsRequest::default());
    let body = error_response(&request, 3, ResponseError::UnsupportedVersion, 0).unwrap();
    let frame = encode_response(CORRELATION_ID, ApiKey::ApiVersions, 3, &body).unwrap();
    assert_eq!(&frame[..4], &CORRELATION_ID.to_be_bytes());
    // A v1 header would put its tagged-field count here; the body's error code follows
    // the correlation id directly.
    let code = ResponseError::UnsupportedVersion.code().to_be_bytes();
    assert_eq!(&frame[4..6], &code);
}

#[test]
fn flexible_versions_get_header_v1() {
    let request = RequestKind::from(MetadataRequest::default().with_topics(None));
    let body = error_response(&request, 9, ResponseError::NetworkException, 0).unwrap();
    let frame = encode_response(CORRELATION_ID, ApiKey::Metadata, 9, &body).unwrap();
    assert_eq!(frame[4], 0, "no tagged fields in the v1 header");
}

#[test]
fn leave_group_from_v3_answers_each_member() {
    let member = |id| {
        leave_group_request::MemberIdentity::default().with_member_id(StrBytes::from_static_str(id))
    };
    let members = vec![member("m1"), member("m2")];
    let request = LeaveGroupRequest::default()
        .with_group_id(group_id("g"))
        .with_members(members);
    let ResponseKind::LeaveGroup(response) = answer(request, 3, ResponseError::NotCoordinator)
    else {
        panic!("not a LeaveGroup response");
    };
    let code = ResponseError::NotCoordinator.code();
    assert_eq!(response.error_code, code);
    let answered: Vec<(&str, i16)> = response
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), m.error_code))
        .collect();
    assert_eq!(answered, [("m1", code), ("m2", code)]);
}

#[test]
fn join_group_protocol_name_is_empty_before_v7_and_null_after() {
    for (version, expected) in [(6, Some(StrBytes::default())), (7, None)] {
        let request = JoinGroupRequest::default().with_group_id(group_id("g"));
        let ResponseKind::JoinGroup(response) =
            answer(request, version, ResponseError::CoordinatorNotAvailable)
        else {
            panic!("not a JoinGroup response");
        };
        assert_eq!(response.protocol_name, expected, "v{version}");
        assert_eq!(response.generation_id, -1);
        assert_eq!(response.member_id, StrBytes::default());
    }
}

#[test]
fn success_is_not_an_error_answer() {
    let request = RequestKind::from(HeartbeatRequest::default());
    let result = error_response(&request, 0, ResponseError::Unknown(0), 0);
    assert!(matches!(result, Err(AnswerError::NotAnError)), "{result:?}");
}

#[test]
fn versions_outside_the_known_range_are_refused() {
    let request = RequestKind::from(ProduceRequest::default());
    let result = error_response(&request, 2, ResponseError::NotLeaderOrFollower, 0);
    assert!(
        matches!(
            result,
            Err(AnswerError::UnsupportedVersion {
                api_key: ApiKey::Produce,
                version: 2
            })
        ),
        "{result:?}"
    );
}

#[test]
fn a_body_of_another_api_is_refused() {
    let body = ResponseKind::Heartbeat(HeartbeatResponse::default());
    let result = encode_response(CORRELATION_ID, ApiKey::Fetch, 12, &body);
    assert!(
        matches!(
            result,
            Err(AnswerError::BodyMismatch {
                api_key: ApiKey::Fetch,
                body: Some(ApiKey::Heartbeat)
            })
        ),
        "{result:?}"
    );
}
