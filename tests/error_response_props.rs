//! `error_response` for every API and version kafka-protocol knows: the answer encodes,
//! decodes as that version's response, answers every resource the request named with
//! the error, and carries the error and the throttle time in every top-level field the
//! version has.
//!
//! Requests and responses are read through two small traits written from the message
//! schemas, not from the builder: [`Requested`] lists the resources a request names,
//! [`Answered`] a response's per-resource entries, top-level error codes and throttle
//! time. Whether a version carries a top-level field is not written down at all: the test
//! changes the field and sees whether the encoding changes.

use std::fmt::Display;

use bytes::{Bytes, BytesMut};
use flotilla::protocol::error_response::{encode_response, error_response};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// One level of a resource's address in a request or response.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// A topic by name, id or both; an empty name or a nil id is "not given".
    Topic {
        name: String,
        id: String,
    },
    Partition(i32),
    /// A group, member, coordinator key, transaction, user, config resource, ...
    Named(&'static str, String),
    /// Results matched to the request's entries by position (ACLs).
    Position(usize),
}

type Path = Vec<Part>;
type Entry = (Path, Option<i16>);

const NIL_ID: &str = "00000000-0000-0000-0000-000000000000";

fn topic(name: &str, id: impl Display) -> Part {
    Part::Topic {
        name: name.to_owned(),
        id: id.to_string(),
    }
}

fn named(kind: &'static str, value: impl Display) -> Part {
    Part::Named(kind, value.to_string())
}

/// An answered address matches a requested one if every part is the same, except that a
/// topic needs only the identities the answer gives (its version carries name or id).
fn path_matches(answered: &Path, requested: &Path) -> bool {
    let part_matches = |answered: &Part, requested: &Part| match (answered, requested) {
        (
            Part::Topic { name, id },
            Part::Topic {
                name: asked_name,
                id: asked_id,
            },
        ) => {
            let (has_name, has_id) = (!name.is_empty(), id != NIL_ID);
            (has_name || has_id) && (!has_name || name == asked_name) && (!has_id || id == asked_id)
        }
        _ => answered == requested,
    };
    answered.len() == requested.len()
        && answered
            .iter()
            .zip(requested)
            .all(|(a, r)| part_matches(a, r))
}

/// The resources a request names that its response answers with entries of their own.
trait Requested {
    fn requested(&self, _version: i16) -> Vec<Path> {
        Vec::new()
    }
}

/// What a response says: per-resource entries with their error code (None for an entry
/// without one), top-level error codes, throttle time.
trait Answered {
    fn entries(&self) -> Vec<Entry> {
        Vec::new()
    }
    fn top_level(&mut self) -> Vec<&mut i16>;
    fn throttle(&mut self) -> Option<&mut i32>;
}

fn list<T>(items: &[T], key: impl Fn(&T) -> Part) -> Vec<Path> {
    items.iter().map(|item| vec![key(item)]).collect()
}

fn nested<T>(outer: &[T], key: impl Fn(&T) -> Part, inner: impl Fn(&T) -> Vec<Part>) -> Vec<Path> {
    let paths = outer.iter().flat_map(|item| {
        let key = key(item);
        inner(item)
            .into_iter()
            .map(move |part| vec![key.clone(), part])
    });
    paths.collect()
}

fn list_entries<T>(items: &[T], entry: impl Fn(&T) -> (Part, Option<i16>)) -> Vec<Entry> {
    let entries = items.iter().map(|item| {
        let (part, code) = entry(item);
        (vec![part], code)
    });
    entries.collect()
}

fn nested_entries<T>(
    outer: &[T],
    key: impl Fn(&T) -> Part,
    inner: impl Fn(&T) -> Vec<(Part, Option<i16>)>,
) -> Vec<Entry> {
    let entries = outer.iter().flat_map(|item| {
        let key = key(item);
        let inner = inner(item).into_iter();
        inner.map(move |(part, code)| (vec![key.clone(), part], code))
    });
    entries.collect()
}

fn indexes(indexes: impl Iterator<Item = i32>) -> Vec<Part> {
    indexes.map(Part::Partition).collect()
}

fn indexed_codes(entries: impl Iterator<Item = (i32, i16)>) -> Vec<(Part, Option<i16>)> {
    entries
        .map(|(index, code)| (Part::Partition(index), Some(code)))
        .collect()
}

fn prefixed(prefix: Part, paths: Vec<Path>) -> Vec<Path> {
    let prefix_each = |mut path: Path| {
        path.insert(0, prefix.clone());
        path
    };
    paths.into_iter().map(prefix_each).collect()
}

fn prefixed_entries(prefix: Part, entries: Vec<Entry>) -> Vec<Entry> {
    let prefix_each = |(mut path, code): Entry| {
        path.insert(0, prefix.clone());
        (path, code)
    };
    entries.into_iter().map(prefix_each).collect()
}

macro_rules! requested {
    ($($request:ty => |$this:ident, $version:pat_param| $paths:expr;)*) => {$(
        impl Requested for $request {
            fn requested(&self, $version: i16) -> Vec<Path> {
                let $this = self;
                $paths
            }
        }
    )*};
}

macro_rules! nothing_requested {
    ($($request:ty),* $(,)?) => { $(impl Requested for $request {})* };
}

macro_rules! throttle_field {
    ($this:ident) => {
        None
    };
    ($this:ident, $field:ident) => {
        Some(&mut $this.$field)
    };
}

macro_rules! answered {
    ($($response:ty => |$this:ident| $entries:expr,
        top [$($top:ident),*], throttle [$($throttle:ident)?];)*) => {$(
        impl Answered for $response {
            fn entries(&self) -> Vec<Entry> {
                let $this = self;
                $entries
            }
            fn top_level(&mut self) -> Vec<&mut i16> {
                vec![$(&mut self.$top),*]
            }
            fn throttle(&mut self) -> Option<&mut i32> {
                throttle_field!(self $(, $throttle)?)
            }
        }
    )*};
}

macro_rules! top_level_only {
    ($($response:ty => throttle [$($throttle:ident)?]),* $(,)?) => {$(
        impl Answered for $response {
            fn top_level(&mut self) -> Vec<&mut i16> {
                vec![&mut self.error_code]
            }
            fn throttle(&mut self) -> Option<&mut i32> {
                throttle_field!(self $(, $throttle)?)
            }
        }
    )*};
}

nothing_requested!(
    JoinGroupRequest,
    HeartbeatRequest,
    SyncGroupRequest,
    ListGroupsRequest,
    SaslHandshakeRequest,
    ApiVersionsRequest,
    InitProducerIdRequest,
    AddOffsetsToTxnRequest,
    EndTxnRequest,
    DescribeAclsRequest,
    DescribeLogDirsRequest,
    SaslAuthenticateRequest,
    CreateDelegationTokenRequest,
    RenewDelegationTokenRequest,
    ExpireDelegationTokenRequest,
    DescribeDelegationTokenRequest,
    DescribeClientQuotasRequest,
    VoteRequest,
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    DescribeQuorumRequest,
    AlterPartitionRequest,
    EnvelopeRequest,
    FetchSnapshotRequest,
    DescribeClusterRequest,
    BrokerRegistrationRequest,
    BrokerHeartbeatRequest,
    UnregisterBrokerRequest,
    ListTransactionsRequest,
    AllocateProducerIdsRequest,
    ConsumerGroupHeartbeatRequest,
    ControllerRegistrationRequest,
    GetTelemetrySubscriptionsRequest,
    PushTelemetryRequest,
    AssignReplicasToDirsRequest,
    ListConfigResourcesRequest,
    ShareGroupHeartbeatRequest,
    AddRaftVoterRequest,
    RemoveRaftVoterRequest,
    UpdateRaftVoterRequest,
);

top_level_only!(
    JoinGroupResponse => throttle [throttle_time_ms],
    HeartbeatResponse => throttle [throttle_time_ms],
    SyncGroupResponse => throttle [throttle_time_ms],
    ListGroupsResponse => throttle [throttle_time_ms],
    ApiVersionsResponse => throttle [throttle_time_ms],
    InitProducerIdResponse => throttle [throttle_time_ms],
    AddOffsetsToTxnResponse => throttle [throttle_time_ms],
    EndTxnResponse => throttle [throttle_time_ms],
    DescribeAclsResponse => throttle [throttle_time_ms],
    CreateDelegationTokenResponse => throttle [throttle_time_ms],
    RenewDelegationTokenResponse => throttle [throttle_time_ms],
    ExpireDelegationTokenResponse => throttle [throttle_time_ms],
    DescribeDelegationTokenResponse => throttle [throttle_time_ms],
    DescribeClientQuotasResponse => throttle [throttle_time_ms],
    AlterPartitionResponse => throttle [throttle_time_ms],
    FetchSnapshotResponse => throttle [throttle_time_ms],
    DescribeClusterResponse => throttle [throttle_time_ms],
    BrokerRegistrationResponse => throttle [throttle_time_ms],
    BrokerHeartbeatResponse => throttle [throttle_time_ms],
    UnregisterBrokerResponse => throttle [throttle_time_ms],
    ListTransactionsResponse => throttle [throttle_time_ms],
    AllocateProducerIdsResponse => throttle [throttle_time_ms],
    ConsumerGroupHeartbeatResponse => throttle [throttle_time_ms],
    ControllerRegistrationResponse => throttle [throttle_time_ms],
    GetTelemetrySubscriptionsResponse => throttle [throttle_time_ms],
    PushTelemetryResponse => throttle [throttle_time_ms],
    AssignReplicasToDirsResponse => throttle [throttle_time_ms],
    ListConfigResourcesResponse => throttle [throttle_time_ms],
    ShareGroupHeartbeatResponse => throttle [throttle_time_ms],
    AddRaftVoterResponse => throttle [throttle_time_ms],
    RemoveRaftVoterResponse => throttle [throttle_time_ms],
    UpdateRaftVoterResponse => throttle [throttle_time_ms],
    SaslHandshakeResponse => throttle [],
    SaslAuthenticateResponse => throttle [],
    VoteResponse => throttle [],
    BeginQuorumEpochResponse => throttle [],
    EndQuorumEpochResponse => throttle [],
    DescribeQuorumResponse => throttle [],
    EnvelopeResponse => throttle [],
);

// Partition data and look-ups.
requested! {
    ProduceRequest => |r, _| nested(&r.topic_data, |t| topic(&t.name.0, t.topic_id),
        |t| indexes(t.partition_data.iter().map(|p| p.index)));
    FetchRequest => |r, _| nested(&r.topics, |t| topic(&t.topic.0, t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition)));
    ListOffsetsRequest => |r, _| nested(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
    MetadataRequest => |r, _| list(r.topics.as_deref().unwrap_or_default(),
        |t| topic(&t.name.clone().unwrap_or_default().0, t.topic_id));
    DeleteRecordsRequest => |r, _| nested(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
    OffsetForLeaderEpochRequest => |r, _| nested(&r.topics, |t| topic(&t.topic.0, NIL_ID),
        |t| indexes(t.partitions.iter().map(|p| p.partition)));
    DescribeTopicPartitionsRequest => |r, _| list(&r.topics, |t| topic(&t.name.0, NIL_ID));
    ShareFetchRequest => |r, _| nested(&r.topics, |t| topic("", t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
    ShareAcknowledgeRequest => |r, _| nested(&r.topics, |t| topic("", t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
}

answered! {
    ProduceResponse => |r| nested_entries(&r.responses, |t| topic(&t.name.0, t.topic_id),
        |t| indexed_codes(t.partition_responses.iter().map(|p| (p.index, p.error_code)))),
        top [], throttle [throttle_time_ms];
    FetchResponse => |r| nested_entries(&r.responses, |t| topic(&t.topic.0, t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [error_code], throttle [throttle_time_ms];
    ListOffsetsResponse => |r| nested_entries(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [], throttle [throttle_time_ms];
    MetadataResponse => |r| list_entries(&r.topics,
        |t| (topic(&t.name.clone().unwrap_or_default().0, t.topic_id), Some(t.error_code))),
        top [error_code], throttle [throttle_time_ms];
    DeleteRecordsResponse => |r| nested_entries(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [], throttle [throttle_time_ms];
    OffsetForLeaderEpochResponse => |r| nested_entries(&r.topics, |t| topic(&t.topic.0, NIL_ID),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition, p.error_code)))),
        top [], throttle [throttle_time_ms];
    DescribeTopicPartitionsResponse => |r| list_entries(&r.topics,
        |t| (topic(&t.name.clone().unwrap_or_default().0, t.topic_id), Some(t.error_code))),
        top [], throttle [throttle_time_ms];
    ShareFetchResponse => |r| nested_entries(&r.responses, |t| topic("", t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [error_code], throttle [throttle_time_ms];
    ShareAcknowledgeResponse => |r| nested_entries(&r.responses, |t| topic("", t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [error_code], throttle [throttle_time_ms];
}

// Groups and their offsets.
requested! {
    OffsetCommitRequest => |r, _| nested(&r.topics, |t| topic(&t.name.0, t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
    OffsetFetchRequest => |r, _| {
        let single_group = nested(r.topics.as_deref().unwrap_or_default(),
            |t| topic(&t.name.0, NIL_ID), |t| indexes(t.partition_indexes.iter().copied()));
        let groups = r.groups.iter().flat_map(|g| {
            let group = named("group", &g.group_id.0);
            let topics = nested(g.topics.as_deref().unwrap_or_default(),
                |t| topic(&t.name.0, t.topic_id), |t| indexes(t.partition_indexes.iter().copied()));
            std::iter::once(vec![group.clone()]).chain(prefixed(group, topics))
        });
        single_group.into_iter().chain(groups).collect()
    };
    FindCoordinatorRequest => |r, _| list(&r.coordinator_keys, |k| named("key", k));
    LeaveGroupRequest => |r, _| list(&r.members, |m| named("member", &m.member_id));
    DescribeGroupsRequest => |r, _| list(&r.groups, |g| named("group", &g.0));
    DeleteGroupsRequest => |r, _| list(&r.groups_names, |g| named("group", &g.0));
    OffsetDeleteRequest => |r, _| nested(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
    ConsumerGroupDescribeRequest => |r, _| list(&r.group_ids, |g| named("group", &g.0));
    ShareGroupDescribeRequest => |r, _| list(&r.group_ids, |g| named("group", &g.0));
    InitializeShareGroupStateRequest => |r, _| nested(&r.topics, |t| topic("", t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition)));
    ReadShareGroupStateRequest => |r, _| nested(&r.topics, |t| topic("", t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition)));
    WriteShareGroupStateRequest => |r, _| nested(&r.topics, |t| topic("", t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition)));
    DeleteShareGroupStateRequest => |r, _| nested(&r.topics, |t| topic("", t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition)));
    ReadShareGroupStateSummaryRequest => |r, _| nested(&r.topics, |t| topic("", t.topic_id),
        |t| indexes(t.partitions.iter().map(|p| p.partition)));
    DescribeShareGroupOffsetsRequest => |r, _| r.groups.iter().flat_map(|g| {
        let group = named("group", &g.group_id.0);
        let topics = nested(g.topics.as_deref().unwrap_or_default(),
            |t| topic(&t.topic_name.0, NIL_ID), |t| indexes(t.partitions.iter().copied()));
        std::iter::once(vec![group.clone()]).chain(prefixed(group, topics))
    }).collect();
    AlterShareGroupOffsetsRequest => |r, _| nested(&r.topics, |t| topic(&t.topic_name.0, NIL_ID),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
    DeleteShareGroupOffsetsRequest => |r, _| list(&r.topics, |t| topic(&t.topic_name.0, NIL_ID));
}

answered! {
    OffsetCommitResponse => |r| nested_entries(&r.topics, |t| topic(&t.name.0, t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [], throttle [throttle_time_ms];
    OffsetFetchResponse => |r| {
        let single_group = nested_entries(&r.topics, |t| topic(&t.name.0, NIL_ID),
            |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code))));
        let groups = r.groups.iter().flat_map(|g| {
            let group = named("group", &g.group_id.0);
            let topics = nested_entries(&g.topics, |t| topic(&t.name.0, t.topic_id),
                |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code))));
            std::iter::once((vec![group.clone()], Some(g.error_code)))
                .chain(prefixed_entries(group, topics))
        });
        single_group.into_iter().chain(groups).collect()
    }, top [error_code], throttle [throttle_time_ms];
    FindCoordinatorResponse => |r| list_entries(&r.coordinators,
        |c| (named("key", &c.key), Some(c.error_code))),
        top [error_code], throttle [throttle_time_ms];
    LeaveGroupResponse => |r| list_entries(&r.members,
        |m| (named("member", &m.member_id), Some(m.error_code))),
        top [error_code], throttle [throttle_time_ms];
    DescribeGroupsResponse => |r| list_entries(&r.groups,
        |g| (named("group", &g.group_id.0), Some(g.error_code))),
        top [], throttle [throttle_time_ms];
    DeleteGroupsResponse => |r| list_entries(&r.results,
        |g| (named("group", &g.group_id.0), Some(g.error_code))),
        top [], throttle [throttle_time_ms];
    OffsetDeleteResponse => |r| nested_entries(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [error_code], throttle [throttle_time_ms];
    ConsumerGroupDescribeResponse => |r| list_entries(&r.groups,
        |g| (named("group", &g.group_id.0), Some(g.error_code))),
        top [], throttle [throttle_time_ms];
    ShareGroupDescribeResponse => |r| list_entries(&r.groups,
        |g| (named("group", &g.group_id.0), Some(g.error_code))),
        top [], throttle [throttle_time_ms];
    InitializeShareGroupStateResponse => |r| nested_entries(&r.results, |t| topic("", t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition, p.error_code)))),
        top [], throttle [];
    ReadShareGroupStateResponse => |r| nested_entries(&r.results, |t| topic("", t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition, p.error_code)))),
        top [], throttle [];
    WriteShareGroupStateResponse => |r| nested_entries(&r.results, |t| topic("", t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition, p.error_code)))),
        top [], throttle [];
    DeleteShareGroupStateResponse => |r| nested_entries(&r.results, |t| topic("", t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition, p.error_code)))),
        top [], throttle [];
    ReadShareGroupStateSummaryResponse => |r| nested_entries(&r.results, |t| topic("", t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition, p.error_code)))),
        top [], throttle [];
    DescribeShareGroupOffsetsResponse => |r| r.groups.iter().flat_map(|g| {
        let group = named("group", &g.group_id.0);
        let topics = nested_entries(&g.topics, |t| topic(&t.topic_name.0, t.topic_id),
            |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code))));
        std::iter::once((vec![group.clone()], Some(g.error_code)))
            .chain(prefixed_entries(group, topics))
    }).collect(), top [], throttle [throttle_time_ms];
    AlterShareGroupOffsetsResponse => |r| nested_entries(&r.responses,
        |t| topic(&t.topic_name.0, t.topic_id),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [error_code], throttle [throttle_time_ms];
    DeleteShareGroupOffsetsResponse => |r| list_entries(&r.responses,
        |t| (topic(&t.topic_name.0, t.topic_id), Some(t.error_code))),
        top [error_code], throttle [throttle_time_ms];
}

// Transactions.
requested! {
    AddPartitionsToTxnRequest => |r, _| {
        let partitions = |t: &add_partitions_to_txn_request::AddPartitionsToTxnTopic| {
            indexes(t.partitions.iter().copied())
        };
        let single = nested(&r.v3_and_below_topics, |t| topic(&t.name.0, NIL_ID), partitions);
        let batched = r.transactions.iter().flat_map(|txn| {
            let topics = nested(&txn.topics, |t| topic(&t.name.0, NIL_ID), partitions);
            prefixed(named("transaction", &txn.transactional_id.0), topics)
        });
        single.into_iter().chain(batched).collect()
    };
    WriteTxnMarkersRequest => |r, _| r.markers.iter().flat_map(|marker| {
        let topics = nested(&marker.topics, |t| topic(&t.name.0, NIL_ID),
            |t| indexes(t.partition_indexes.iter().copied()));
        prefixed(named("producer", marker.producer_id.0), topics)
    }).collect();
    TxnOffsetCommitRequest => |r, _| nested(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
    DescribeTransactionsRequest => |r, _| list(&r.transactional_ids,
        |id| named("transaction", &id.0));
    DescribeProducersRequest => |r, _| nested(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexes(t.partition_indexes.iter().copied()));
}

answered! {
    AddPartitionsToTxnResponse => |r| {
        let partitions = |t: &add_partitions_to_txn_response::AddPartitionsToTxnTopicResult| {
            let results = t.results_by_partition.iter();
            indexed_codes(results.map(|p| (p.partition_index, p.partition_error_code)))
        };
        let single = nested_entries(&r.results_by_topic_v3_and_below,
            |t| topic(&t.name.0, NIL_ID), partitions);
        let batched = r.results_by_transaction.iter().flat_map(|txn| {
            let topics =
                nested_entries(&txn.topic_results, |t| topic(&t.name.0, NIL_ID), partitions);
            prefixed_entries(named("transaction", &txn.transactional_id.0), topics)
        });
        single.into_iter().chain(batched).collect()
    }, top [error_code], throttle [throttle_time_ms];
    WriteTxnMarkersResponse => |r| r.markers.iter().flat_map(|marker| {
        let topics = nested_entries(&marker.topics, |t| topic(&t.name.0, NIL_ID),
            |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code))));
        prefixed_entries(named("producer", marker.producer_id.0), topics)
    }).collect(), top [], throttle [];
    TxnOffsetCommitResponse => |r| nested_entries(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [], throttle [throttle_time_ms];
    DescribeTransactionsResponse => |r| list_entries(&r.transaction_states,
        |s| (named("transaction", &s.transactional_id.0), Some(s.error_code))),
        top [], throttle [throttle_time_ms];
    DescribeProducersResponse => |r| nested_entries(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [], throttle [throttle_time_ms];
}

// Admin.
requested! {
    CreateTopicsRequest => |r, _| list(&r.topics, |t| topic(&t.name.0, NIL_ID));
    DeleteTopicsRequest => |r, _| {
        let by_name = list(&r.topic_names, |name| topic(&name.0, NIL_ID));
        let by_state = list(&r.topics,
            |t| topic(&t.name.clone().unwrap_or_default().0, t.topic_id));
        by_name.into_iter().chain(by_state).collect()
    };
    CreatePartitionsRequest => |r, _| list(&r.topics, |t| topic(&t.name.0, NIL_ID));
    DescribeConfigsRequest => |r, _| list(&r.resources,
        |c| config(c.resource_type, &c.resource_name));
    AlterConfigsRequest => |r, _| list(&r.resources, |c| config(c.resource_type, &c.resource_name));
    IncrementalAlterConfigsRequest => |r, _| list(&r.resources,
        |c| config(c.resource_type, &c.resource_name));
    CreateAclsRequest => |r, _| (0..r.creations.len()).map(|i| vec![Part::Position(i)]).collect();
    DeleteAclsRequest => |r, _| (0..r.filters.len()).map(|i| vec![Part::Position(i)]).collect();
    AlterReplicaLogDirsRequest => |r, _| r.dirs.iter().flat_map(|dir| nested(&dir.topics,
        |t| topic(&t.name.0, NIL_ID), |t| indexes(t.partitions.iter().copied()))).collect();
    ElectLeadersRequest => |r, _| nested(r.topic_partitions.as_deref().unwrap_or_default(),
        |t| topic(&t.topic.0, NIL_ID), |t| indexes(t.partitions.iter().copied()));
    AlterPartitionReassignmentsRequest => |r, _| nested(&r.topics, |t| topic(&t.name.0, NIL_ID),
        |t| indexes(t.partitions.iter().map(|p| p.partition_index)));
    ListPartitionReassignmentsRequest => |r, _| nested(r.topics.as_deref().unwrap_or_default(),
        |t| topic(&t.name.0, NIL_ID), |t| indexes(t.partition_indexes.iter().copied()));
    AlterClientQuotasRequest => |r, _| list(&r.entries, |e| entity(e.entity.iter()
        .map(|d| (&d.entity_type, &d.entity_name))));
    DescribeUserScramCredentialsRequest => |r, _| list(r.users.as_deref().unwrap_or_default(),
        |u| named("user", &u.name));
    AlterUserScramCredentialsRequest => |r, _| {
        let deleted = r.deletions.iter().map(|d| &d.name);
        let mut users: Vec<_> = deleted.chain(r.upsertions.iter().map(|u| &u.name)).collect();
        users.sort();
        users.dedup();
        list(&users, |user| named("user", user))
    };
    // v2 answers with the top-level code only.
    UpdateFeaturesRequest => |r, version| if version < 2 {
        list(&r.feature_updates, |f| named("feature", &f.feature))
    } else {
        Vec::new()
    };
}

answered! {
    CreateTopicsResponse => |r| list_entries(&r.topics,
        |t| (topic(&t.name.0, t.topic_id), Some(t.error_code))),
        top [], throttle [throttle_time_ms];
    DeleteTopicsResponse => |r| list_entries(&r.responses,
        |t| (topic(&t.name.clone().unwrap_or_default().0, t.topic_id), Some(t.error_code))),
        top [], throttle [throttle_time_ms];
    CreatePartitionsResponse => |r| list_entries(&r.results,
        |t| (topic(&t.name.0, NIL_ID), Some(t.error_code))),
        top [], throttle [throttle_time_ms];
    DescribeConfigsResponse => |r| list_entries(&r.results,
        |c| (config(c.resource_type, &c.resource_name), Some(c.error_code))),
        top [], throttle [throttle_time_ms];
    AlterConfigsResponse => |r| list_entries(&r.responses,
        |c| (config(c.resource_type, &c.resource_name), Some(c.error_code))),
        top [], throttle [throttle_time_ms];
    IncrementalAlterConfigsResponse => |r| list_entries(&r.responses,
        |c| (config(c.resource_type, &c.resource_name), Some(c.error_code))),
        top [], throttle [throttle_time_ms];
    CreateAclsResponse => |r| r.results.iter().enumerate()
        .map(|(i, result)| (vec![Part::Position(i)], Some(result.error_code))).collect(),
        top [], throttle [throttle_time_ms];
    DeleteAclsResponse => |r| r.filter_results.iter().enumerate()
        .map(|(i, result)| (vec![Part::Position(i)], Some(result.error_code))).collect(),
        top [], throttle [throttle_time_ms];
    AlterReplicaLogDirsResponse => |r| nested_entries(&r.results,
        |t| topic(&t.topic_name.0, NIL_ID),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [], throttle [throttle_time_ms];
    ElectLeadersResponse => |r| nested_entries(&r.replica_election_results,
        |t| topic(&t.topic.0, NIL_ID),
        |t| indexed_codes(t.partition_result.iter().map(|p| (p.partition_id, p.error_code)))),
        top [error_code], throttle [throttle_time_ms];
    AlterPartitionReassignmentsResponse => |r| nested_entries(&r.responses,
        |t| topic(&t.name.0, NIL_ID),
        |t| indexed_codes(t.partitions.iter().map(|p| (p.partition_index, p.error_code)))),
        top [error_code], throttle [throttle_time_ms];
    // The listed partitions have no error field of their own.
    ListPartitionReassignmentsResponse => |r| nested_entries(&r.topics,
        |t| topic(&t.name.0, NIL_ID),
        |t| t.partitions.iter().map(|p| (Part::Partition(p.partition_index), None)).collect()),
        top [error_code], throttle [throttle_time_ms];
    AlterClientQuotasResponse => |r| list_entries(&r.entries,
        |e| {
            let entity = entity(e.entity.iter().map(|d| (&d.entity_type, &d.entity_name)));
            (entity, Some(e.error_code))
        }),
        top [], throttle [throttle_time_ms];
    DescribeUserScramCredentialsResponse => |r| list_entries(&r.results,
        |u| (named("user", &u.user), Some(u.error_code))),
        top [error_code], throttle [throttle_time_ms];
    AlterUserScramCredentialsResponse => |r| list_entries(&r.results,
        |u| (named("user", &u.user), Some(u.error_code))),
        top [], throttle [throttle_time_ms];
    UpdateFeaturesResponse => |r| list_entries(&r.results,
        |f| (named("feature", &f.feature), Some(f.error_code))),
        top [error_code], throttle [throttle_time_ms];
}

/// Log directories are not requested resources: each result's code is read as a
/// top-level one, and must carry the error like any.
impl Answered for DescribeLogDirsResponse {
    fn top_level(&mut self) -> Vec<&mut i16> {
        let results = self.results.iter_mut().map(|result| &mut result.error_code);
        std::iter::once(&mut self.error_code)
            .chain(results)
            .collect()
    }
    fn throttle(&mut self) -> Option<&mut i32> {
        Some(&mut self.throttle_time_ms)
    }
}

fn config(resource_type: i8, name: &StrBytes) -> Part {
    named("config", format!("{resource_type}/{name}"))
}

fn entity<'a>(parts: impl Iterator<Item = (&'a StrBytes, &'a Option<StrBytes>)>) -> Part {
    let parts: Vec<String> = parts
        .map(|(kind, name)| format!("{kind}={}", name.as_deref().unwrap_or("<default>")))
        .collect();
    named("entity", parts.join(","))
}

/// The request and response enums name their variants after the API keys.
macro_rules! views {
    ($($api:ident),* $(,)?) => {
        fn requested_of(request: &RequestKind) -> &dyn Requested {
            match request {
                $(RequestKind::$api(request) => request,)*
                _ => panic!("a request kind this test does not know"),
            }
        }

        fn answered_of(body: &mut ResponseKind) -> &mut dyn Answered {
            match body {
                $(ResponseKind::$api(body) => body,)*
                _ => panic!("a response kind this test does not know"),
            }
        }
    };
}

views!(
    Produce,
    Fetch,
    ListOffsets,
    Metadata,
    OffsetCommit,
    OffsetFetch,
    FindCoordinator,
    JoinGroup,
    Heartbeat,
    LeaveGroup,
    SyncGroup,
    DescribeGroups,
    ListGroups,
    SaslHandshake,
    ApiVersions,
    CreateTopics,
    DeleteTopics,
    DeleteRecords,
    InitProducerId,
    OffsetForLeaderEpoch,
    AddPartitionsToTxn,
    AddOffsetsToTxn,
    EndTxn,
    WriteTxnMarkers,
    TxnOffsetCommit,
    DescribeAcls,
    CreateAcls,
    DeleteAcls,
    DescribeConfigs,
    AlterConfigs,
    AlterReplicaLogDirs,
    DescribeLogDirs,
    SaslAuthenticate,
    CreatePartitions,
    CreateDelegationToken,
    RenewDelegationToken,
    ExpireDelegationToken,
    DescribeDelegationToken,
    DeleteGroups,
    ElectLeaders,
    IncrementalAlterConfigs,
    AlterPartitionReassignments,
    ListPartitionReassignments,
    OffsetDelete,
    DescribeClientQuotas,
    AlterClientQuotas,
    DescribeUserScramCredentials,
    AlterUserScramCredentials,
    Vote,
    BeginQuorumEpoch,
    EndQuorumEpoch,
    DescribeQuorum,
    AlterPartition,
    UpdateFeatures,
    Envelope,
    FetchSnapshot,
    DescribeCluster,
    DescribeProducers,
    BrokerRegistration,
    BrokerHeartbeat,
    UnregisterBroker,
    DescribeTransactions,
    ListTransactions,
    AllocateProducerIds,
    ConsumerGroupHeartbeat,
    ConsumerGroupDescribe,
    ControllerRegistration,
    GetTelemetrySubscriptions,
    PushTelemetry,
    AssignReplicasToDirs,
    ListConfigResources,
    DescribeTopicPartitions,
    ShareGroupHeartbeat,
    ShareGroupDescribe,
    ShareFetch,
    ShareAcknowledge,
    AddRaftVoter,
    RemoveRaftVoter,
    UpdateRaftVoter,
    InitializeShareGroupState,
    ReadShareGroupState,
    WriteShareGroupState,
    DeleteShareGroupState,
    ReadShareGroupStateSummary,
    DescribeShareGroupOffsets,
    AlterShareGroupOffsets,
    DeleteShareGroupOffsets,
);

/// Random but reproducible request contents: 1 to 3 entries at every level, unique names
/// and partition indexes, random topic ids.
struct Gen {
    state: u64,
    serial: u32,
}

/// kafka-protocol does not re-export the `uuid` crate, so ids are borrowed from a decoded
/// message that holds one.
type IdLender = GetTelemetrySubscriptionsRequest;

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            state: seed,
            serial: 0,
        }
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 0
    }

    fn list<T>(&mut self, mut make: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let count = 1 + self.next() % 3;
        (0..count).map(|_| make(self)).collect()
    }

    /// Zero-padded so that sorting names keeps the order they were made in.
    fn name(&mut self, kind: &str) -> StrBytes {
        self.serial += 1;
        StrBytes::from_string(format!("{kind}-{:05}", self.serial))
    }

    fn topic_name(&mut self) -> TopicName {
        TopicName(self.name("topic"))
    }

    fn group_id(&mut self) -> GroupId {
        GroupId(self.name("group"))
    }

    fn partition(&mut self) -> i32 {
        self.serial += 1;
        self.serial as i32
    }

    fn id(&mut self) -> IdLender {
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&self.next().to_be_bytes());
        bytes.extend_from_slice(&(self.next() | 1).to_be_bytes());
        bytes.extend_from_slice(&[0]); // no tagged fields
        IdLender::decode(&mut bytes.freeze(), 0).expect("16 bytes and no tags decode")
    }

    fn partitions(&mut self) -> Vec<i32> {
        self.list(Gen::partition)
    }
}

/// A request of `api` at `version` naming random resources. Versions decide only what the
/// version can carry at all (kafka-protocol refuses to encode anything else).
fn request(api: ApiKey, version: i16, g: &mut Gen) -> RequestKind {
    match api {
        ApiKey::Produce => ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(g.list(|g| {
                produce_request::TopicProduceData::default()
                    .with_name(g.topic_name())
                    .with_topic_id(g.id().client_instance_id)
                    .with_partition_data(g.list(|g| {
                        produce_request::PartitionProduceData::default().with_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::Fetch => FetchRequest::default()
            .with_session_id(if version >= 7 { g.next() as i32 } else { 0 })
            .with_topics(g.list(|g| {
                fetch_request::FetchTopic::default()
                    .with_topic(g.topic_name())
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        fetch_request::FetchPartition::default().with_partition(g.partition())
                    }))
            }))
            .into(),
        ApiKey::ListOffsets => ListOffsetsRequest::default()
            .with_topics(g.list(|g| {
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(g.topic_name())
                    .with_partitions(g.list(|g| {
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::Metadata => MetadataRequest::default()
            .with_topics(Some(g.list(|g| {
                // From v12 a topic can be named by id alone.
                let by_id_only = version >= 12 && g.coin();
                let name = g.topic_name();
                metadata_request::MetadataRequestTopic::default()
                    .with_name((!by_id_only).then_some(name))
                    .with_topic_id(g.id().client_instance_id)
            })))
            .into(),
        ApiKey::OffsetCommit => OffsetCommitRequest::default()
            .with_group_id(g.group_id())
            .with_topics(g.list(|g| {
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(g.topic_name())
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::OffsetFetch => offset_fetch_request(version, g).into(),
        ApiKey::FindCoordinator => find_coordinator_request(version, g).into(),
        ApiKey::LeaveGroup => leave_group_request(version, g).into(),
        ApiKey::DescribeGroups => DescribeGroupsRequest::default()
            .with_groups(g.list(Gen::group_id))
            .into(),
        ApiKey::CreateTopics => CreateTopicsRequest::default()
            .with_topics(g.list(|g| {
                create_topics_request::CreatableTopic::default().with_name(g.topic_name())
            }))
            .into(),
        ApiKey::DeleteTopics => delete_topics_request(version, g).into(),
        ApiKey::DeleteRecords => DeleteRecordsRequest::default()
            .with_topics(g.list(|g| {
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(g.topic_name())
                    .with_partitions(g.list(|g| {
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::default()
            .with_topics(g.list(|g| {
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(g.topic_name())
                    .with_partitions(g.list(|g| {
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_partition(g.partition())
                    }))
            }))
            .into(),
        ApiKey::AddPartitionsToTxn => add_partitions_to_txn_request(version, g).into(),
        ApiKey::WriteTxnMarkers => WriteTxnMarkersRequest::default()
            .with_markers(g.list(|g| {
                write_txn_markers_request::WritableTxnMarker::default()
                    .with_producer_id(ProducerId(g.next() as i64 & 0xffff_ffff))
                    .with_topics(g.list(|g| {
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(g.topic_name())
                            .with_partition_indexes(g.partitions())
                    }))
            }))
            .into(),
        ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::default()
            .with_topics(g.list(|g| {
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(g.topic_name())
                    .with_partitions(g.list(|g| {
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::CreateAcls => CreateAclsRequest::default()
            .with_creations(g.list(|g| {
                create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(g.name("acl"))
                    .with_principal(StrBytes::from_static_str("User:alice"))
            }))
            .into(),
        ApiKey::DeleteAcls => DeleteAclsRequest::default()
            .with_filters(g.list(|g| {
                delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(2)
                    .with_resource_name_filter(Some(g.name("acl")))
            }))
            .into(),
        ApiKey::DescribeConfigs => DescribeConfigsRequest::default()
            .with_resources(g.list(|g| {
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(g.name("resource"))
            }))
            .into(),
        ApiKey::AlterConfigs => AlterConfigsRequest::default()
            .with_resources(g.list(|g| {
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(g.name("resource"))
            }))
            .into(),
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default()
            .with_resources(g.list(|g| {
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(g.name("resource"))
            }))
            .into(),
        ApiKey::AlterReplicaLogDirs => AlterReplicaLogDirsRequest::default()
            .with_dirs(g.list(|g| {
                alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                    .with_path(g.name("/data"))
                    .with_topics(g.list(|g| {
                        alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                            .with_name(g.topic_name())
                            .with_partitions(g.partitions())
                    }))
            }))
            .into(),
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::default()
            .with_topics(Some(g.list(|g| {
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(g.topic_name())
                    .with_partitions(g.partitions())
            })))
            .into(),
        ApiKey::CreatePartitions => CreatePartitionsRequest::default()
            .with_topics(g.list(|g| {
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(g.topic_name())
                    .with_count(6)
            }))
            .into(),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default()
            .with_groups_names(g.list(Gen::group_id))
            .into(),
        ApiKey::ElectLeaders => ElectLeadersRequest::default()
            .with_topic_partitions(Some(g.list(|g| {
                elect_leaders_request::TopicPartitions::default()
                    .with_topic(g.topic_name())
                    .with_partitions(g.partitions())
            })))
            .into(),
        ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::default()
            .with_topics(g.list(|g| {
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(g.topic_name())
                    .with_partitions(g.list(|g| {
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::default()
            .with_topics(Some(g.list(|g| {
                list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                    .with_name(g.topic_name())
                    .with_partition_indexes(g.partitions())
            })))
            .into(),
        ApiKey::OffsetDelete => OffsetDeleteRequest::default()
            .with_group_id(g.group_id())
            .with_topics(g.list(|g| {
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(g.topic_name())
                    .with_partitions(g.list(|g| {
                        offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::AlterClientQuotas => AlterClientQuotasRequest::default()
            .with_entries(g.list(|g| {
                alter_client_quotas_request::EntryData::default().with_entity(g.list(|g| {
                    let name = g.coin().then(|| g.name("client"));
                    alter_client_quotas_request::EntityData::default()
                        .with_entity_type(g.name("type"))
                        .with_entity_name(name)
                }))
            }))
            .into(),
        ApiKey::DescribeUserScramCredentials => DescribeUserScramCredentialsRequest::default()
            .with_users(Some(g.list(|g| {
                describe_user_scram_credentials_request::UserName::default()
                    .with_name(g.name("user"))
            })))
            .into(),
        ApiKey::AlterUserScramCredentials => alter_user_scram_credentials_request(g).into(),
        ApiKey::UpdateFeatures => UpdateFeaturesRequest::default()
            .with_feature_updates(g.list(|g| {
                update_features_request::FeatureUpdateKey::default().with_feature(g.name("feature"))
            }))
            .into(),
        ApiKey::DescribeProducers => DescribeProducersRequest::default()
            .with_topics(g.list(|g| {
                describe_producers_request::TopicRequest::default()
                    .with_name(g.topic_name())
                    .with_partition_indexes(g.partitions())
            }))
            .into(),
        ApiKey::DescribeTransactions => DescribeTransactionsRequest::default()
            .with_transactional_ids(g.list(|g| TransactionalId(g.name("txn"))))
            .into(),
        ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::default()
            .with_group_ids(g.list(Gen::group_id))
            .into(),
        ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsRequest::default()
            .with_topics(g.list(|g| {
                describe_topic_partitions_request::TopicRequest::default().with_name(g.topic_name())
            }))
            .into(),
        ApiKey::ShareGroupDescribe => ShareGroupDescribeRequest::default()
            .with_group_ids(g.list(Gen::group_id))
            .into(),
        ApiKey::ShareFetch => ShareFetchRequest::default()
            .with_group_id(Some(g.group_id()))
            .with_topics(g.list(|g| {
                share_fetch_request::FetchTopic::default()
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        share_fetch_request::FetchPartition::default()
                            .with_partition_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::ShareAcknowledge => ShareAcknowledgeRequest::default()
            .with_group_id(Some(g.group_id()))
            .with_topics(g.list(|g| {
                share_acknowledge_request::AcknowledgeTopic::default()
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        share_acknowledge_request::AcknowledgePartition::default()
                            .with_partition_index(g.partition())
                    }))
            }))
            .into(),
        ApiKey::InitializeShareGroupState => InitializeShareGroupStateRequest::default()
            .with_topics(g.list(|g| {
                initialize_share_group_state_request::InitializeStateData::default()
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        initialize_share_group_state_request::PartitionData::default()
                            .with_partition(g.partition())
                    }))
            }))
            .into(),
        ApiKey::ReadShareGroupState => ReadShareGroupStateRequest::default()
            .with_topics(g.list(|g| {
                read_share_group_state_request::ReadStateData::default()
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        read_share_group_state_request::PartitionData::default()
                            .with_partition(g.partition())
                    }))
            }))
            .into(),
        ApiKey::WriteShareGroupState => WriteShareGroupStateRequest::default()
            .with_topics(g.list(|g| {
                write_share_group_state_request::WriteStateData::default()
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        write_share_group_state_request::PartitionData::default()
                            .with_partition(g.partition())
                    }))
            }))
            .into(),
        ApiKey::DeleteShareGroupState => DeleteShareGroupStateRequest::default()
            .with_topics(g.list(|g| {
                delete_share_group_state_request::DeleteStateData::default()
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        delete_share_group_state_request::PartitionData::default()
                            .with_partition(g.partition())
                    }))
            }))
            .into(),
        ApiKey::ReadShareGroupStateSummary => ReadShareGroupStateSummaryRequest::default()
            .with_topics(g.list(|g| {
                read_share_group_state_summary_request::ReadStateSummaryData::default()
                    .with_topic_id(g.id().client_instance_id)
                    .with_partitions(g.list(|g| {
                        read_share_group_state_summary_request::PartitionData::default()
                            .with_partition(g.partition())
                    }))
            }))
            .into(),
        ApiKey::DescribeShareGroupOffsets => describe_share_group_offsets_request(g).into(),
        ApiKey::AlterShareGroupOffsets => alter_share_group_offsets_request(g).into(),
        ApiKey::DeleteShareGroupOffsets => delete_share_group_offsets_request(g).into(),
        ApiKey::JoinGroup => JoinGroupRequest::default()
            .with_group_id(g.group_id())
            .into(),
        ApiKey::Heartbeat => HeartbeatRequest::default()
            .with_group_id(g.group_id())
            .into(),
        ApiKey::SyncGroup => SyncGroupRequest::default()
            .with_group_id(g.group_id())
            .into(),
        ApiKey::ListGroups => ListGroupsRequest::default().into(),
        ApiKey::SaslHandshake => SaslHandshakeRequest::default().into(),
        ApiKey::ApiVersions => ApiVersionsRequest::default().into(),
        ApiKey::InitProducerId => InitProducerIdRequest::default().into(),
        ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::default().into(),
        ApiKey::EndTxn => EndTxnRequest::default().into(),
        ApiKey::DescribeAcls => DescribeAclsRequest::default().into(),
        ApiKey::SaslAuthenticate => SaslAuthenticateRequest::default().into(),
        ApiKey::CreateDelegationToken => CreateDelegationTokenRequest::default().into(),
        ApiKey::RenewDelegationToken => RenewDelegationTokenRequest::default().into(),
        ApiKey::ExpireDelegationToken => ExpireDelegationTokenRequest::default().into(),
        ApiKey::DescribeDelegationToken => DescribeDelegationTokenRequest::default().into(),
        ApiKey::DescribeClientQuotas => DescribeClientQuotasRequest::default().into(),
        ApiKey::Vote => VoteRequest::default().into(),
        ApiKey::BeginQuorumEpoch => BeginQuorumEpochRequest::default().into(),
        ApiKey::EndQuorumEpoch => EndQuorumEpochRequest::default().into(),
        ApiKey::DescribeQuorum => DescribeQuorumRequest::default().into(),
        ApiKey::AlterPartition => AlterPartitionRequest::default().into(),
        ApiKey::Envelope => EnvelopeRequest::default().into(),
        ApiKey::FetchSnapshot => FetchSnapshotRequest::default().into(),
        ApiKey::DescribeCluster => DescribeClusterRequest::default().into(),
        ApiKey::BrokerRegistration => BrokerRegistrationRequest::default().into(),
        ApiKey::BrokerHeartbeat => BrokerHeartbeatRequest::default().into(),
        ApiKey::UnregisterBroker => UnregisterBrokerRequest::default().into(),
        ApiKey::ListTransactions => ListTransactionsRequest::default().into(),
        ApiKey::AllocateProducerIds => AllocateProducerIdsRequest::default().into(),
        ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::default().into(),
        ApiKey::ControllerRegistration => ControllerRegistrationRequest::default().into(),
        ApiKey::GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest::default().into(),
        ApiKey::PushTelemetry => PushTelemetryRequest::default().into(),
        ApiKey::AssignReplicasToDirs => AssignReplicasToDirsRequest::default().into(),
        ApiKey::ListConfigResources => ListConfigResourcesRequest::default().into(),
        ApiKey::ShareGroupHeartbeat => ShareGroupHeartbeatRequest::default().into(),
        ApiKey::AddRaftVoter => AddRaftVoterRequest::default().into(),
        ApiKey::RemoveRaftVoter => RemoveRaftVoterRequest::default().into(),
        ApiKey::UpdateRaftVoter => UpdateRaftVoterRequest::default().into(),
    }
}

/// Groups, some of them with a null topic list, which asks for all the group's topics.
fn describe_share_group_offsets_request(g: &mut Gen) -> DescribeShareGroupOffsetsRequest {
    use describe_share_group_offsets_request::{
        DescribeShareGroupOffsetsRequestGroup as Group,
        DescribeShareGroupOffsetsRequestTopic as Topic,
    };
    DescribeShareGroupOffsetsRequest::default().with_groups(g.list(|g| {
        let topics = g.coin().then(|| {
            g.list(|g| {
                Topic::default()
                    .with_topic_name(g.topic_name())
                    .with_partitions(g.partitions())
            })
        });
        Group::default()
            .with_group_id(g.group_id())
            .with_topics(topics)
    }))
}

fn alter_share_group_offsets_request(g: &mut Gen) -> AlterShareGroupOffsetsRequest {
    use alter_share_group_offsets_request::{
        AlterShareGroupOffsetsRequestPartition as Partition,
        AlterShareGroupOffsetsRequestTopic as Topic,
    };
    AlterShareGroupOffsetsRequest::default()
        .with_group_id(g.group_id())
        .with_topics(g.list(|g| {
            Topic::default()
                .with_topic_name(g.topic_name())
                .with_partitions(
                    g.list(|g| Partition::default().with_partition_index(g.partition())),
                )
        }))
}

fn delete_share_group_offsets_request(g: &mut Gen) -> DeleteShareGroupOffsetsRequest {
    use delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic as Topic;
    DeleteShareGroupOffsetsRequest::default()
        .with_group_id(g.group_id())
        .with_topics(g.list(|g| Topic::default().with_topic_name(g.topic_name())))
}

/// One group and its topics before v8, a batch of groups from v8. A null topic list (all
/// of the group's offsets) exists from v2.
fn offset_fetch_request(version: i16, g: &mut Gen) -> OffsetFetchRequest {
    let request = OffsetFetchRequest::default();
    if version < 8 {
        let all_topics = version >= 2 && g.coin();
        let topics = (!all_topics).then(|| {
            g.list(|g| {
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(g.topic_name())
                    .with_partition_indexes(g.partitions())
            })
        });
        return request.with_group_id(g.group_id()).with_topics(topics);
    }
    request.with_groups(g.list(|g| {
        let topics = g.coin().then(|| {
            g.list(|g| {
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(g.topic_name())
                    .with_topic_id(g.id().client_instance_id)
                    .with_partition_indexes(g.partitions())
            })
        });
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(g.group_id())
            .with_topics(topics)
    }))
}

/// One key before v4, a batch of keys from v4.
fn find_coordinator_request(version: i16, g: &mut Gen) -> FindCoordinatorRequest {
    if version < 4 {
        FindCoordinatorRequest::default().with_key(g.name("group"))
    } else {
        FindCoordinatorRequest::default().with_coordinator_keys(g.list(|g| g.name("group")))
    }
}

/// One member before v3, a batch of members from v3.
fn leave_group_request(version: i16, g: &mut Gen) -> LeaveGroupRequest {
    let request = LeaveGroupRequest::default().with_group_id(g.group_id());
    if version < 3 {
        return request.with_member_id(g.name("member"));
    }
    request.with_members(g.list(|g| {
        let instance_id = g.coin().then(|| g.name("instance"));
        leave_group_request::MemberIdentity::default()
            .with_member_id(g.name("member"))
            .with_group_instance_id(instance_id)
    }))
}

/// Topic names before v6, names or ids from v6.
fn delete_topics_request(version: i16, g: &mut Gen) -> DeleteTopicsRequest {
    if version < 6 {
        return DeleteTopicsRequest::default().with_topic_names(g.list(Gen::topic_name));
    }
    DeleteTopicsRequest::default().with_topics(g.list(|g| {
        let by_name = g.coin();
        let name = g.topic_name();
        delete_topics_request::DeleteTopicState::default()
            .with_name(by_name.then_some(name))
            .with_topic_id(g.id().client_instance_id)
    }))
}

/// One transaction before v4, a batch of transactions from v4.
fn add_partitions_to_txn_request(version: i16, g: &mut Gen) -> AddPartitionsToTxnRequest {
    let topics = |g: &mut Gen| {
        g.list(|g| {
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(g.topic_name())
                .with_partitions(g.partitions())
        })
    };
    if version < 4 {
        return AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(g.name("txn")))
            .with_v3_and_below_topics(topics(g));
    }
    AddPartitionsToTxnRequest::default().with_transactions(g.list(|g| {
        add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(g.name("txn")))
            .with_topics(topics(g))
    }))
}

/// Deletions and upsertions, some of them for the same user.
fn alter_user_scram_credentials_request(g: &mut Gen) -> AlterUserScramCredentialsRequest {
    let deletions = g.list(|g| {
        alter_user_scram_credentials_request::ScramCredentialDeletion::default()
            .with_name(g.name("user"))
            .with_mechanism(1)
    });
    let upserted_again = deletions[0].name.clone();
    let mut upsertions = g.list(|g| {
        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
            .with_name(g.name("user"))
            .with_mechanism(2)
            .with_iterations(4096)
    });
    upsertions.push(
        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
            .with_name(upserted_again)
            .with_mechanism(2)
            .with_iterations(4096),
    );
    AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions)
}

/// The request as the proxy would hold it after decoding it off the wire: only what the
/// version carries. kafka-protocol cannot encode a few request versions whose responses
/// it knows (OffsetCommit v10, OffsetFetch v10, InitProducerId v6); those stay as built.
fn as_received(api: ApiKey, request: RequestKind, version: i16) -> RequestKind {
    let mut buf = BytesMut::new();
    match request.encode(&mut buf, version) {
        Ok(()) => {}
        Err(e) if format!("{e:#}").contains("version not supported") => return request,
        Err(e) => panic!("the test built an invalid v{version} request: {e:#}\n{request:?}"),
    }
    RequestKind::decode(api, &mut buf.freeze(), version).expect("own encoding decodes")
}

fn encode_body(body: &ResponseKind, version: i16) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).ok().map(|()| buf.freeze())
}

/// Whether `version` carries the field `change` changes: the encoding changes with it.
fn carries(body: &ResponseKind, version: i16, change: impl Fn(&mut ResponseKind)) -> bool {
    let mut changed = body.clone();
    change(&mut changed);
    match (encode_body(body, version), encode_body(&changed, version)) {
        (Some(original), Some(changed)) => original != changed,
        _ => false,
    }
}

struct Case {
    seed: u64,
    code: i16,
    throttle_time_ms: i32,
    correlation_id: i32,
}

fn check(api: ApiKey, version: i16, case: &Case) -> Result<(), TestCaseError> {
    let context = format!("{api:?} v{version}");
    let fail = |what: &str, e: &dyn Display| TestCaseError::fail(format!("{context}: {what}{e}"));
    let mut g = Gen::new(case.seed ^ ((api as u64) << 32) ^ version as u64);
    let request = as_received(api, request(api, version, &mut g), version);
    let error = ResponseError::try_from_code(case.code).expect("non-zero code");

    let body = error_response(&request, version, error, case.throttle_time_ms)
        .map_err(|e| fail("", &e))?;
    let frame =
        encode_response(case.correlation_id, api, version, &body).map_err(|e| fail("", &e))?;
    let mut decoded = read_as_a_client(api, version, frame, case, &context)?;

    let entries = answered_of(&mut decoded).entries();
    check_entries(
        &entries,
        &requested_of(&request).requested(version),
        case,
        &context,
    )?;
    let top_level_codes = check_top_level(&decoded, version, case, &context)?;
    let entry_codes = entries.iter().filter(|(_, code)| code.is_some()).count();
    prop_assert!(
        entry_codes + top_level_codes > 0,
        "{}: the error reaches the client nowhere",
        context
    );
    check_throttle(&mut decoded, version, case, &context)
}

/// Decodes the frame as a client would: header, then the whole rest as the body.
fn read_as_a_client(
    api: ApiKey,
    version: i16,
    mut frame: Bytes,
    case: &Case,
    context: &str,
) -> Result<ResponseKind, TestCaseError> {
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let header = ResponseHeader::decode(&mut frame, header_version)
        .map_err(|e| TestCaseError::fail(format!("{context}: header: {e:#}")))?;
    prop_assert_eq!(header.correlation_id, case.correlation_id, "{}", context);
    let body = ResponseKind::decode(api, &mut frame, version)
        .map_err(|e| TestCaseError::fail(format!("{context}: body: {e:#}")))?;
    prop_assert!(
        frame.is_empty(),
        "{}: {} bytes after the body",
        context,
        frame.len()
    );
    Ok(body)
}

/// One entry per requested resource, in the request's order, each with the error.
fn check_entries(
    entries: &[Entry],
    requested: &[Path],
    case: &Case,
    context: &str,
) -> Result<(), TestCaseError> {
    let answered: Vec<&Path> = entries.iter().map(|(path, _)| path).collect();
    let each_matches = answered
        .iter()
        .zip(requested)
        .all(|(a, r)| path_matches(a, r));
    prop_assert!(
        answered.len() == requested.len() && each_matches,
        "{}: requested {:?}\nanswered {:?}",
        context,
        requested,
        answered
    );
    for (path, code) in entries {
        prop_assert!(
            code.is_none() || *code == Some(case.code),
            "{}: {:?} answered with {:?}",
            context,
            path,
            code
        );
    }
    Ok(())
}

/// Every top-level error code the version carries holds the error; returns how many.
fn check_top_level(
    decoded: &ResponseKind,
    version: i16,
    case: &Case,
    context: &str,
) -> Result<usize, TestCaseError> {
    let mut decoded = decoded.clone();
    let codes: Vec<i16> = answered_of(&mut decoded)
        .top_level()
        .into_iter()
        .map(|c| *c)
        .collect();
    let mut carried = 0;
    for (i, code) in codes.into_iter().enumerate() {
        let bump = |body: &mut ResponseKind| {
            let field = answered_of(body).top_level().swap_remove(i);
            *field = field.wrapping_add(1);
        };
        if carries(&decoded, version, bump) {
            prop_assert_eq!(code, case.code, "{}: top-level error code {}", context, i);
            carried += 1;
        }
    }
    Ok(carried)
}

/// The throttle time, where the version carries one.
fn check_throttle(
    decoded: &mut ResponseKind,
    version: i16,
    case: &Case,
    context: &str,
) -> Result<(), TestCaseError> {
    let Some(throttle) = answered_of(decoded).throttle().map(|t| *t) else {
        return Ok(());
    };
    let bump = |body: &mut ResponseKind| {
        let field = answered_of(body).throttle().expect("a throttle field");
        *field = field.wrapping_add(1);
    };
    if carries(decoded, version, bump) {
        prop_assert_eq!(
            throttle,
            case.throttle_time_ms,
            "{}: throttle time",
            context
        );
    }
    Ok(())
}

fn error_code() -> impl Strategy<Value = i16> {
    // UNSUPPORTED_VERSION shapes an ApiVersions answer differently; give it a fair share.
    prop_oneof![
        1 => Just(ResponseError::UnsupportedVersion.code()),
        4 => any::<i16>().prop_filter("an error, not success", |code| *code != 0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        // A failure prints its seed; every case is rebuilt from that.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_api_and_version_answers_every_requested_resource(
        seed in any::<u64>(),
        code in error_code(),
        throttle_time_ms in any::<i32>(),
        correlation_id in any::<i32>(),
    ) {
        let case = Case { seed, code, throttle_time_ms, correlation_id };
        for api in ApiKey::iter() {
            let versions = api.valid_versions();
            for version in versions.min..=versions.max {
                check(api, version, &case)?;
            }
        }
    }
}
