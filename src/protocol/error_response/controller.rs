//! Error answers for the controller-quorum (KRaft) and broker-to-controller APIs. Their
//! per-partition entries report leader and replica state, which the proxy cannot know,
//! so as in Kafka only the top-level code (and the throttle time where there is one)
//! carries the error.

use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, AllocateProducerIdsRequest,
    AllocateProducerIdsResponse, AlterPartitionRequest, AlterPartitionResponse,
    AssignReplicasToDirsRequest, AssignReplicasToDirsResponse, BeginQuorumEpochRequest,
    BeginQuorumEpochResponse, BrokerHeartbeatRequest, BrokerHeartbeatResponse,
    BrokerRegistrationRequest, BrokerRegistrationResponse, ControllerRegistrationRequest,
    ControllerRegistrationResponse, DescribeQuorumRequest, DescribeQuorumResponse,
    EndQuorumEpochRequest, EndQuorumEpochResponse, EnvelopeRequest, EnvelopeResponse,
    FetchSnapshotRequest, FetchSnapshotResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
    UnregisterBrokerRequest, UnregisterBrokerResponse, UpdateRaftVoterRequest,
    UpdateRaftVoterResponse, VoteRequest, VoteResponse,
};

use super::Answer;

pub(super) fn vote(_request: &VoteRequest, answer: &Answer) -> VoteResponse {
    VoteResponse::default().with_error_code(answer.code)
}

pub(super) fn begin_quorum_epoch(
    _request: &BeginQuorumEpochRequest,
    answer: &Answer,
) -> BeginQuorumEpochResponse {
    BeginQuorumEpochResponse::default().with_error_code(answer.code)
}

pub(super) fn end_quorum_epoch(
    _request: &EndQuorumEpochRequest,
    answer: &Answer,
) -> EndQuorumEpochResponse {
    EndQuorumEpochResponse::default().with_error_code(answer.code)
}

pub(super) fn describe_quorum(
    _request: &DescribeQuorumRequest,
    answer: &Answer,
) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default().with_error_code(answer.code)
}

pub(super) fn fetch_snapshot(
    _request: &FetchSnapshotRequest,
    answer: &Answer,
) -> FetchSnapshotResponse {
    FetchSnapshotResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn alter_partition(
    _request: &AlterPartitionRequest,
    answer: &Answer,
) -> AlterPartitionResponse {
    AlterPartitionResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

/// The enveloped request's own answer is absent.
pub(super) fn envelope(_request: &EnvelopeRequest, answer: &Answer) -> EnvelopeResponse {
    EnvelopeResponse::default()
        .with_response_data(None)
        .with_error_code(answer.code)
}

/// Broker epoch -1: not registered.
pub(super) fn broker_registration(
    _request: &BrokerRegistrationRequest,
    answer: &Answer,
) -> BrokerRegistrationResponse {
    BrokerRegistrationResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

/// The broker stays fenced and not caught up, the defaults Kafka's answer keeps.
pub(super) fn broker_heartbeat(
    _request: &BrokerHeartbeatRequest,
    answer: &Answer,
) -> BrokerHeartbeatResponse {
    BrokerHeartbeatResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn unregister_broker(
    _request: &UnregisterBrokerRequest,
    answer: &Answer,
) -> UnregisterBrokerResponse {
    UnregisterBrokerResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn allocate_producer_ids(
    _request: &AllocateProducerIdsRequest,
    answer: &Answer,
) -> AllocateProducerIdsResponse {
    AllocateProducerIdsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn controller_registration(
    _request: &ControllerRegistrationRequest,
    answer: &Answer,
) -> ControllerRegistrationResponse {
    ControllerRegistrationResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn assign_replicas_to_dirs(
    _request: &AssignReplicasToDirsRequest,
    answer: &Answer,
) -> AssignReplicasToDirsResponse {
    AssignReplicasToDirsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn add_raft_voter(
    _request: &AddRaftVoterRequest,
    answer: &Answer,
) -> AddRaftVoterResponse {
    AddRaftVoterResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn remove_raft_voter(
    _request: &RemoveRaftVoterRequest,
    answer: &Answer,
) -> RemoveRaftVoterResponse {
    RemoveRaftVoterResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

/// No current leader is known: id and epoch -1.
pub(super) fn update_raft_voter(
    _request: &UpdateRaftVoterRequest,
    answer: &Answer,
) -> UpdateRaftVoterResponse {
    UpdateRaftVoterResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}
