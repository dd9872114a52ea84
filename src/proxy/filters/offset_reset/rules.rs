//! What a request of a fenced group is answered, API by API (the reasons are in the
//! module doc of `offset_reset`).

use flotilla_raft::offset_resets::OffsetReset;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, JoinGroupRequest, OffsetCommitRequest, OffsetFetchRequest,
    RequestKind, TxnOffsetCommitRequest,
};
use kafka_protocol::ResponseError;

use super::owned::claims_owned_partitions;

/// How a request of a fenced group is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// At once, with this error.
    Refuse(ResponseError),
    /// After the hold, with this error: the client retries.
    Hold(ResponseError),
}

use Decision::{Hold, Refuse};
use ResponseError::{
    CoordinatorLoadInProgress, FencedMemberEpoch, MemberIdRequired, UnknownMemberId,
};

/// The reset fencing the request's group and the answer, or `None` to forward it.
pub(super) fn decide<'a>(
    body: &RequestKind,
    fenced: &dyn Fn(&str) -> Option<&'a OffsetReset>,
) -> Option<(&'a OffsetReset, Decision)> {
    match body {
        RequestKind::JoinGroup(r) => Some((fenced(&r.group_id)?, join_group(r))),
        RequestKind::SyncGroup(r) => Some((fenced(&r.group_id)?, Refuse(UnknownMemberId))),
        RequestKind::Heartbeat(r) => Some((fenced(&r.group_id)?, Refuse(UnknownMemberId))),
        RequestKind::OffsetCommit(r) => Some((fenced(&r.group_id)?, offset_commit(r))),
        RequestKind::TxnOffsetCommit(r) => Some((fenced(&r.group_id)?, txn_offset_commit(r))),
        RequestKind::OffsetFetch(r) => {
            Some((offset_fetch(r, fenced)?, Hold(CoordinatorLoadInProgress)))
        }
        RequestKind::ConsumerGroupHeartbeat(r) => {
            Some((fenced(&r.group_id)?, consumer_group_heartbeat(r)?))
        }
        _ => None,
    }
}

fn join_group(request: &JoinGroupRequest) -> Decision {
    if !request.member_id.is_empty() {
        Refuse(UnknownMemberId)
    } else if claims_owned_partitions(request) {
        Hold(MemberIdRequired)
    } else {
        Hold(CoordinatorLoadInProgress)
    }
}

/// A commit from a member of the group, rather than a simple (`assign()`, admin) commit.
fn from_member(member_id: &str, generation: i32, instance_id: Option<&str>) -> bool {
    !member_id.is_empty() || generation >= 0 || instance_id.is_some()
}

fn offset_commit(request: &OffsetCommitRequest) -> Decision {
    let member = from_member(
        &request.member_id,
        request.generation_id_or_member_epoch,
        request.group_instance_id.as_deref(),
    );
    commit(member)
}

fn txn_offset_commit(request: &TxnOffsetCommitRequest) -> Decision {
    let member = from_member(
        &request.member_id,
        request.generation_id,
        request.group_instance_id.as_deref(),
    );
    commit(member)
}

fn commit(from_member: bool) -> Decision {
    if from_member {
        Refuse(UnknownMemberId)
    } else {
        Hold(CoordinatorLoadInProgress)
    }
}

/// The reset of the first fenced group the request names (v0-7 name one, v8+ a list).
fn offset_fetch<'a>(
    request: &OffsetFetchRequest,
    fenced: &dyn Fn(&str) -> Option<&'a OffsetReset>,
) -> Option<&'a OffsetReset> {
    if request.groups.is_empty() {
        return fenced(&request.group_id);
    }
    request.groups.iter().find_map(|g| fenced(&g.group_id))
}

/// `None` for a leave (epoch < 0), which is forwarded.
fn consumer_group_heartbeat(request: &ConsumerGroupHeartbeatRequest) -> Option<Decision> {
    let owns_some = request
        .topic_partitions
        .as_ref()
        .is_some_and(|topics| topics.iter().any(|t| !t.partitions.is_empty()));
    match request.member_epoch {
        epoch if epoch > 0 => Some(Refuse(FencedMemberEpoch)),
        0 if owns_some => Some(Hold(FencedMemberEpoch)),
        0 => Some(Hold(CoordinatorLoadInProgress)),
        _ => None,
    }
}
