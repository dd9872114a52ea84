//! The offset-reset fence on encoded requests, every API over every decodable version.

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use flotilla_raft::offset_resets::{OffsetReset, PartitionReset, ResetPhase};
use flotilla_raft::ControlState;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;

use super::owned::tests::subscription;
use super::{OffsetResets, HOLD};
use crate::cluster::offset_resets::evictions::{Eviction, Evictions, GroupProtocol};
use crate::metrics::Metrics;
use crate::protocol::decode::decodable_versions;
use crate::protocol::header::{parse_request, tests::encode_request};
use crate::proxy::filter::{Env, Filter, Listener, Session, Transport, Verdict};
use crate::proxy::message::Request;

const FENCED: &str = "fenced-group";
const OTHER: &str = "other-group";

struct Fixture {
    filter: OffsetResets,
    evictions: Arc<Evictions>,
    metrics: Arc<Metrics>,
    session: Session,
    control: ControlState,
}

impl Fixture {
    /// A state where FENCED is under an applying reset, and OTHER under a pending one.
    fn new() -> Fixture {
        let metrics = Arc::new(Metrics::new());
        let mut control = ControlState::default();
        for (id, group, phase) in [
            ("r1", FENCED, ResetPhase::Applying),
            ("r2", OTHER, ResetPhase::Pending),
            ("r0", FENCED, ResetPhase::Done),
        ] {
            control
                .offset_resets
                .insert(id.into(), reset(id, group, phase));
        }
        let evictions = Arc::new(Evictions::default());
        Fixture {
            filter: OffsetResets::new(&metrics, &evictions),
            evictions,
            metrics,
            session: Session::new(
                "127.0.0.1:1".parse().unwrap(),
                Listener::Bootstrap,
                Transport::Plaintext,
            ),
            control,
        }
    }

    fn on_request<R: Encodable>(&self, api_key: ApiKey, version: i16, body: &R) -> Verdict {
        assert!(self.filter.wants_request(api_key, version));
        let frame = encode_request(api_key, version, 77, body);
        let mut request = Request::new(parse_request(&frame).unwrap(), frame);
        let env = Env {
            session: &self.session,
            control: &self.control,
        };
        self.filter.on_request(&mut request, &env)
    }

    fn refused(&self, api: &str) -> u64 {
        self.metrics
            .offset_resets
            .refused_requests
            .with_label_values(&[api])
            .get()
    }

    fn stale_commits(&self) -> u64 {
        self.metrics.offset_resets.stale_commits.get()
    }
}

fn reset(id: &str, group: &str, phase: ResetPhase) -> OffsetReset {
    OffsetReset {
        id: id.into(),
        group: group.into(),
        partitions: vec![PartitionReset {
            topic: "t".into(),
            partition: 0,
            previous: Some(10),
            target: 0,
            applied: false,
        }],
        phase,
        spec: "to-earliest".into(),
        requested_by: "anonymous".into(),
        created_at_ms: 1,
        start_at_ms: 1,
        deadline_ms: u64::MAX,
        finished_at_ms: None,
    }
}

fn versions(api_key: ApiKey) -> RangeInclusive<i16> {
    let v = decodable_versions(api_key).unwrap();
    v.min..=v.max
}

fn group(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.into()))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// The answer and whether it was held, for a request the filter answered.
fn answered(verdict: Verdict) -> (ResponseKind, bool) {
    match verdict {
        Verdict::Answer(body) => (*body, false),
        Verdict::AnswerAfter(pause, body) => {
            assert_eq!(pause, HOLD);
            (*body, true)
        }
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn assert_forwarded(verdict: Verdict) {
    assert!(matches!(verdict, Verdict::Forward), "{verdict:?}");
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

#[test]
fn inactive_unless_a_reset_is_applying() {
    let f = Fixture::new();
    assert!(f.filter.is_active(&f.control));
    let mut control = f.control.clone();
    control.offset_resets.get_mut("r1").unwrap().phase = ResetPhase::Expired;
    assert!(
        !f.filter.is_active(&control),
        "pending and finished resets fence nothing"
    );
    assert!(!f.filter.is_active(&ControlState::default()));
}

#[test]
fn wants_only_group_coordination_requests() {
    let f = Fixture::new();
    for api in [
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::OffsetCommit,
        ApiKey::TxnOffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::ConsumerGroupHeartbeat,
    ] {
        for v in versions(api) {
            assert!(f.filter.wants_request(api, v), "{api:?} v{v}");
        }
    }
    for api in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::Metadata,
        ApiKey::LeaveGroup,
        ApiKey::DescribeGroups,
        ApiKey::FindCoordinator,
    ] {
        assert!(!f.filter.wants_request(api, 0), "{api:?}");
    }
    assert!(!f.filter.wants_response(ApiKey::OffsetFetch, 8));
}

#[test]
fn heartbeat_is_refused_as_unknown_member() {
    let f = Fixture::new();
    for v in versions(ApiKey::Heartbeat) {
        let body = HeartbeatRequest::default()
            .with_group_id(group(FENCED))
            .with_generation_id(5)
            .with_member_id(text("m-1"));
        let (answer, held) = answered(f.on_request(ApiKey::Heartbeat, v, &body));
        let ResponseKind::Heartbeat(answer) = answer else {
            panic!("v{v}: {answer:?}")
        };
        assert_eq!(
            answer.error_code,
            code(ResponseError::UnknownMemberId),
            "v{v}"
        );
        assert!(!held);
        let other = body.with_group_id(group(OTHER));
        assert_forwarded(f.on_request(ApiKey::Heartbeat, v, &other));
    }
    let count = versions(ApiKey::Heartbeat).count() as u64;
    assert_eq!(f.refused("heartbeat"), count);
    assert_eq!(f.stale_commits(), 0);
}

#[test]
fn sync_group_is_refused_as_unknown_member() {
    let f = Fixture::new();
    for v in versions(ApiKey::SyncGroup) {
        let mut body = SyncGroupRequest::default()
            .with_group_id(group(FENCED))
            .with_generation_id(5)
            .with_member_id(text("m-1"));
        if v >= 5 {
            body = body
                .with_protocol_type(Some(text("consumer")))
                .with_protocol_name(Some(text("range")));
        }
        let (answer, held) = answered(f.on_request(ApiKey::SyncGroup, v, &body));
        let ResponseKind::SyncGroup(answer) = answer else {
            panic!("v{v}: {answer:?}")
        };
        assert_eq!(
            answer.error_code,
            code(ResponseError::UnknownMemberId),
            "v{v}"
        );
        assert!(answer.assignment.is_empty());
        assert!(!held);
        let other = body.with_group_id(group(OTHER));
        assert_forwarded(f.on_request(ApiKey::SyncGroup, v, &other));
    }
    assert_eq!(
        f.refused("sync_group"),
        versions(ApiKey::SyncGroup).count() as u64
    );
}

fn join(member_id: &str, metadata: Vec<u8>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(FENCED))
        .with_session_timeout_ms(45_000)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(text("cooperative-sticky"))
        .with_metadata(Bytes::from(metadata))])
}

fn join_answer(f: &Fixture, version: i16, body: &JoinGroupRequest) -> (i16, bool) {
    let (answer, held) = answered(f.on_request(ApiKey::JoinGroup, version, body));
    let ResponseKind::JoinGroup(answer) = answer else {
        panic!("v{version}: {answer:?}")
    };
    assert_eq!(answer.generation_id, -1);
    assert!(answer.members.is_empty());
    (answer.error_code, held)
}

#[test]
fn join_group_with_a_member_id_is_refused_as_unknown_member() {
    let f = Fixture::new();
    for v in versions(ApiKey::JoinGroup) {
        let owning = join("m-1", subscription(&["t"], &[("t", &[0])]));
        assert_eq!(
            join_answer(&f, v, &owning),
            (code(ResponseError::UnknownMemberId), false),
            "v{v}"
        );
        assert_forwarded(f.on_request(ApiKey::JoinGroup, v, &owning.with_group_id(group(OTHER))));
    }
}

#[test]
fn join_group_without_a_member_id_is_held() {
    let f = Fixture::new();
    for v in versions(ApiKey::JoinGroup) {
        let fresh = join("", subscription(&["t"], &[]));
        assert_eq!(
            join_answer(&f, v, &fresh),
            (code(ResponseError::CoordinatorLoadInProgress), true),
            "v{v}"
        );
        assert_forwarded(f.on_request(ApiKey::JoinGroup, v, &fresh.with_group_id(group(OTHER))));
    }
    assert_eq!(
        f.refused("join_group"),
        versions(ApiKey::JoinGroup).count() as u64
    );
}

/// librdkafka (cooperative) keeps its assignment after UNKNOWN_MEMBER_ID on JoinGroup
/// and shows it as owned partitions when it joins again without a member id.
#[test]
fn join_group_still_owning_partitions_is_told_to_drop_them() {
    let f = Fixture::new();
    for v in versions(ApiKey::JoinGroup) {
        let keeping = join("", subscription(&["t"], &[("t", &[0, 1])]));
        assert_eq!(
            join_answer(&f, v, &keeping),
            (code(ResponseError::MemberIdRequired), true),
            "v{v}"
        );
        // Connect and other protocol types carry other metadata: only held.
        let connect = keeping.with_protocol_type(text("connect"));
        assert_eq!(
            join_answer(&f, v, &connect),
            (code(ResponseError::CoordinatorLoadInProgress), true),
            "v{v}"
        );
    }
}

fn commit_topics() -> Vec<offset_commit_request::OffsetCommitRequestTopic> {
    vec![offset_commit_request::OffsetCommitRequestTopic::default()
        .with_name(TopicName(text("t")))
        .with_partitions(vec![
            offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(42),
            offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(1)
                .with_committed_offset(43),
        ])]
}

/// The error of every partition of an OffsetCommit answer, which must name both.
fn commit_errors(answer: ResponseKind) -> Vec<i16> {
    let ResponseKind::OffsetCommit(answer) = answer else {
        panic!("{answer:?}")
    };
    let partitions: Vec<_> = answer.topics.iter().flat_map(|t| &t.partitions).collect();
    assert_eq!(
        partitions
            .iter()
            .map(|p| p.partition_index)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    partitions.iter().map(|p| p.error_code).collect()
}

#[test]
fn member_commits_are_refused_as_unknown_member() {
    let f = Fixture::new();
    let unknown = code(ResponseError::UnknownMemberId);
    let mut refused = 0;
    // v0 has no member id or generation: every v0 commit is a simple one.
    for v in versions(ApiKey::OffsetCommit).filter(|v| *v >= 1) {
        let member = OffsetCommitRequest::default()
            .with_group_id(group(FENCED))
            .with_generation_id_or_member_epoch(7)
            .with_member_id(text("m-1"))
            .with_topics(commit_topics());
        let (answer, held) = answered(f.on_request(ApiKey::OffsetCommit, v, &member));
        refused += 1;
        assert_eq!(commit_errors(answer), [unknown, unknown], "v{v}");
        assert!(!held);
        // librdkafka after resetting its member id: no id, but its generation.
        let no_id = member.clone().with_member_id(text(""));
        let (answer, held) = answered(f.on_request(ApiKey::OffsetCommit, v, &no_id));
        refused += 1;
        assert_eq!(commit_errors(answer), [unknown, unknown], "v{v}");
        assert!(!held);
        assert_forwarded(f.on_request(
            ApiKey::OffsetCommit,
            v,
            &member.with_group_id(group(OTHER)),
        ));
    }
    assert_eq!(f.refused("offset_commit"), refused);
    assert_eq!(f.stale_commits(), refused);
}

#[test]
fn simple_commits_are_held() {
    let f = Fixture::new();
    let loading = code(ResponseError::CoordinatorLoadInProgress);
    for v in versions(ApiKey::OffsetCommit) {
        let simple = OffsetCommitRequest::default()
            .with_group_id(group(FENCED))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(commit_topics());
        let (answer, held) = answered(f.on_request(ApiKey::OffsetCommit, v, &simple));
        assert_eq!(commit_errors(answer), [loading, loading], "v{v}");
        assert!(held);
    }
}

#[test]
fn transactional_commits_are_refused_or_held() {
    let f = Fixture::new();
    let topics = vec![
        txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(text("t")))
            .with_partitions(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(3)
                    .with_committed_offset(9),
            ]),
    ];
    let errors = |answer: ResponseKind| -> Vec<i16> {
        let ResponseKind::TxnOffsetCommit(answer) = answer else {
            panic!("{answer:?}")
        };
        answer
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| {
                assert_eq!(p.partition_index, 3);
                p.error_code
            })
            .collect()
    };
    let mut refused = 0;
    for v in versions(ApiKey::TxnOffsetCommit) {
        let simple = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(text("tx")))
            .with_group_id(group(FENCED))
            .with_topics(topics.clone());
        let (answer, held) = answered(f.on_request(ApiKey::TxnOffsetCommit, v, &simple));
        refused += 1;
        assert_eq!(
            errors(answer),
            [code(ResponseError::CoordinatorLoadInProgress)]
        );
        assert!(held, "v{v}");
        if v >= 3 {
            let member = simple
                .clone()
                .with_generation_id(4)
                .with_member_id(text("m-1"));
            let (answer, held) = answered(f.on_request(ApiKey::TxnOffsetCommit, v, &member));
            refused += 1;
            assert_eq!(
                errors(answer),
                [code(ResponseError::UnknownMemberId)],
                "v{v}"
            );
            assert!(!held);
        }
        let other = simple.with_group_id(group(OTHER));
        assert_forwarded(f.on_request(ApiKey::TxnOffsetCommit, v, &other));
    }
    assert_eq!(f.refused("txn_offset_commit"), refused);
    assert_eq!(f.stale_commits(), refused);
}

fn fetch_topics_v0_7() -> Option<Vec<offset_fetch_request::OffsetFetchRequestTopic>> {
    Some(vec![
        offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(TopicName(text("t")))
            .with_partition_indexes(vec![0, 1]),
    ])
}

#[test]
fn offset_fetch_of_a_fenced_group_is_held() {
    let f = Fixture::new();
    let loading = code(ResponseError::CoordinatorLoadInProgress);
    for v in versions(ApiKey::OffsetFetch).filter(|v| *v < 8) {
        let body = OffsetFetchRequest::default()
            .with_group_id(group(FENCED))
            .with_topics(fetch_topics_v0_7());
        let (answer, held) = answered(f.on_request(ApiKey::OffsetFetch, v, &body));
        let ResponseKind::OffsetFetch(answer) = answer else {
            panic!("v{v}: {answer:?}")
        };
        assert!(held);
        if v >= 2 {
            assert_eq!(answer.error_code, loading, "v{v}");
        }
        let partitions: Vec<_> = answer.topics.iter().flat_map(|t| &t.partitions).collect();
        assert_eq!(partitions.len(), 2, "v{v}");
        assert!(partitions
            .iter()
            .all(|p| p.error_code == loading && p.committed_offset == -1));
        let other = body.with_group_id(group(OTHER));
        assert_forwarded(f.on_request(ApiKey::OffsetFetch, v, &other));
    }
}

/// Admin tools batch groups in one OffsetFetch (v8+); one fenced group holds the whole
/// request, and every group is answered.
#[test]
fn offset_fetch_naming_a_fenced_group_among_others_is_held_whole() {
    let f = Fixture::new();
    let loading = code(ResponseError::CoordinatorLoadInProgress);
    for v in versions(ApiKey::OffsetFetch).filter(|v| *v >= 8) {
        let request_group = |name: &str| {
            let group = offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(group(name))
                .with_topics(None);
            if v >= 9 {
                group.with_member_id(Some(text("m-1"))).with_member_epoch(3)
            } else {
                group
            }
        };
        let body = OffsetFetchRequest::default()
            .with_groups(vec![request_group(OTHER), request_group(FENCED)]);
        let (answer, held) = answered(f.on_request(ApiKey::OffsetFetch, v, &body));
        let ResponseKind::OffsetFetch(answer) = answer else {
            panic!("v{v}: {answer:?}")
        };
        assert!(held);
        let groups: Vec<_> = answer
            .groups
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.error_code))
            .collect();
        assert_eq!(
            groups,
            [(OTHER.to_string(), loading), (FENCED.to_string(), loading)],
            "v{v}"
        );
        let unfenced = OffsetFetchRequest::default()
            .with_groups(vec![request_group(OTHER), request_group("third")]);
        assert_forwarded(f.on_request(ApiKey::OffsetFetch, v, &unfenced));
    }
    assert!(f.refused("offset_fetch") > 0);
    assert_eq!(f.stale_commits(), 0);
}

fn heartbeat_848(epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group(FENCED))
        .with_member_id(text("m-848"))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(300_000)
        .with_subscribed_topic_names(Some(vec![TopicName(text("t"))]))
        .with_topic_partitions(Some(Vec::new()))
}

fn heartbeat_848_answer(
    f: &Fixture,
    version: i16,
    body: &ConsumerGroupHeartbeatRequest,
) -> (i16, bool) {
    let (answer, held) = answered(f.on_request(ApiKey::ConsumerGroupHeartbeat, version, body));
    let ResponseKind::ConsumerGroupHeartbeat(answer) = answer else {
        panic!("v{version}: {answer:?}")
    };
    assert!(answer.assignment.is_none());
    (answer.error_code, held)
}

#[test]
fn consumer_group_heartbeat_fences_members_holds_joins_and_passes_leaves() {
    let f = Fixture::new();
    let fenced = code(ResponseError::FencedMemberEpoch);
    let loading = code(ResponseError::CoordinatorLoadInProgress);
    for v in versions(ApiKey::ConsumerGroupHeartbeat) {
        assert_eq!(
            heartbeat_848_answer(&f, v, &heartbeat_848(12)),
            (fenced, false),
            "v{v}"
        );
        assert_eq!(
            heartbeat_848_answer(&f, v, &heartbeat_848(0)),
            (loading, true),
            "v{v}"
        );
        let owning = heartbeat_848(0).with_topic_partitions(Some(vec![
            consumer_group_heartbeat_request::TopicPartitions::default()
                .with_topic_id(uuid::Uuid::from_u128(7))
                .with_partitions(vec![0]),
        ]));
        assert_eq!(heartbeat_848_answer(&f, v, &owning), (fenced, true), "v{v}");
        for leave in [-1, -2] {
            assert_forwarded(f.on_request(
                ApiKey::ConsumerGroupHeartbeat,
                v,
                &heartbeat_848(leave),
            ));
        }
        let other = heartbeat_848(12).with_group_id(group(OTHER));
        assert_forwarded(f.on_request(ApiKey::ConsumerGroupHeartbeat, v, &other));
    }
    assert_eq!(
        f.refused("consumer_group_heartbeat"),
        3 * versions(ApiKey::ConsumerGroupHeartbeat).count() as u64
    );
}

#[test]
fn a_finished_reset_fences_nothing() {
    let mut f = Fixture::new();
    f.control.offset_resets.get_mut("r1").unwrap().phase = ResetPhase::Done;
    let body = HeartbeatRequest::default()
        .with_group_id(group(FENCED))
        .with_member_id(text("m-1"));
    assert_forwarded(f.on_request(ApiKey::Heartbeat, 4, &body));
}

#[test]
fn an_undecodable_body_closes_the_connection() {
    let f = Fixture::new();
    let frame = encode_request(ApiKey::Heartbeat, 4, 77, &HeartbeatRequest::default());
    let truncated = frame.slice(..frame.len() - 3);
    let mut request = Request::new(parse_request(&truncated).unwrap(), truncated);
    let env = Env {
        session: &f.session,
        control: &f.control,
    };
    assert!(matches!(
        f.filter.on_request(&mut request, &env),
        Verdict::Close(_)
    ));
}

/// Members refused at once are handed to the evictor, each once per reset; held answers
/// and commits hand over nobody.
#[test]
fn refused_members_are_handed_to_the_evictor_once() {
    let f = Fixture::new();
    let mut handed = f.evictions.take_receiver().unwrap();
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group(FENCED))
        .with_generation_id(5)
        .with_member_id(text("m-1"))
        .with_group_instance_id(Some(text("static-1")));
    f.on_request(ApiKey::Heartbeat, 4, &heartbeat);
    f.on_request(ApiKey::Heartbeat, 4, &heartbeat);
    let fresh = join("", subscription(&["t"], &[]));
    f.on_request(ApiKey::JoinGroup, 9, &fresh);
    let commit = OffsetCommitRequest::default()
        .with_group_id(group(FENCED))
        .with_generation_id_or_member_epoch(5)
        .with_member_id(text("m-2"));
    f.on_request(ApiKey::OffsetCommit, 8, &commit);
    let kip848 = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group(FENCED))
        .with_member_id(text("m-3"))
        .with_member_epoch(7);
    f.on_request(ApiKey::ConsumerGroupHeartbeat, 0, &kip848);
    let expected = [
        ("m-1", Some("static-1"), GroupProtocol::Classic),
        ("m-3", None, GroupProtocol::Consumer),
    ];
    for (member, instance, protocol) in expected {
        let eviction = handed.try_recv().expect("a member handed over");
        assert_eq!(
            eviction,
            Eviction {
                reset_id: "r1".into(),
                group: FENCED.into(),
                member_id: member.into(),
                group_instance_id: instance.map(str::to_string),
                protocol,
            }
        );
    }
    assert!(handed.try_recv().is_err(), "nobody else handed over");
}

/// A simple commit (an `assign()` consumer's) from a connection opened before a reset was
/// done would put pre-reset positions back: refused while the reset's guard holds. The
/// same commit from a newer connection, of another partition, or from a member passes.
#[test]
fn simple_commits_from_connections_older_than_a_done_reset_are_refused() {
    const DONE: &str = "done-group";
    let mut f = Fixture::new();
    let finished = flotilla_raft::governance::unix_millis() - 1_000;
    let mut done = reset("r9", DONE, ResetPhase::Done);
    done.finished_at_ms = Some(finished);
    f.control.offset_resets.insert("r9".into(), done);
    let commit = |partition: i32, member: &str, generation: i32| {
        OffsetCommitRequest::default()
            .with_group_id(group(DONE))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(text(member))
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(text("t")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(10),
                    ]),
            ])
    };
    f.session.opened_at_ms = finished - 5_000;
    let (answer, held) = answered(f.on_request(ApiKey::OffsetCommit, 8, &commit(0, "", -1)));
    let ResponseKind::OffsetCommit(answer) = answer else {
        panic!("{answer:?}")
    };
    assert!(!held);
    assert_eq!(
        answer.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(f.stale_commits(), 1);
    assert_forwarded(f.on_request(ApiKey::OffsetCommit, 8, &commit(1, "", -1)));
    assert_forwarded(f.on_request(ApiKey::OffsetCommit, 8, &commit(0, "m-1", 3)));
    f.session.opened_at_ms = finished + 1;
    assert_forwarded(f.on_request(ApiKey::OffsetCommit, 8, &commit(0, "", -1)));
    assert_eq!(f.stale_commits(), 1);
}
