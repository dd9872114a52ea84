//! What a request of a fenced group is answered, API by API (the reasons are in the
//! module doc of `offset_reset`).

use flotilla_raft::offset_resets::{OffsetReset, ResetPhase};
use flotilla_raft::ControlState;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, JoinGroupRequest, OffsetCommitRequest, OffsetFetchRequest,
    RequestKind, TxnOffsetCommitRequest,
};
use kafka_protocol::ResponseError;

use super::owned::claims_owned_partitions;
use crate::cluster::offset_resets::evictions::GroupProtocol;

/// How long after a reset is done simple commits from connections older than it are
/// refused (see [`undone_by_simple_commit`]).
pub(super) const GUARD_MS: u64 = 15 * 60 * 1000;

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

/// The member a refused request speaks for, if it names one and may be removed from the
/// group at once: it has been told to drop its positions by this very answer. Commits
/// are left out (their protocol is unknown from the request; the member's own heartbeat
/// is refused next), and so are held answers (the member drops its positions only when
/// the hold ends).
pub(super) fn fenced_member(body: &RequestKind) -> Option<(&str, Option<&str>, GroupProtocol)> {
    let (member, instance, protocol) = match body {
        RequestKind::JoinGroup(r) => (&r.member_id, &r.group_instance_id, GroupProtocol::Classic),
        RequestKind::SyncGroup(r) => (&r.member_id, &r.group_instance_id, GroupProtocol::Classic),
        RequestKind::Heartbeat(r) => (&r.member_id, &r.group_instance_id, GroupProtocol::Classic),
        RequestKind::ConsumerGroupHeartbeat(r) if r.member_epoch > 0 => {
            (&r.member_id, &r.instance_id, GroupProtocol::Consumer)
        }
        _ => return None,
    };
    let instance = instance.as_ref().map(|i| i.as_str());
    (!member.is_empty()).then_some((member.as_str(), instance, protocol))
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

/// The finished reset a simple commit (an `assign()` consumer's) would undo: a reset of
/// the commit's group, done within [`GUARD_MS`] of `now_ms` but after the committing
/// connection was opened, covering a partition the commit names. That consumer read its
/// positions before the reset and, having no membership, was never told to drop them.
pub(super) fn undone_by_simple_commit<'a>(
    body: &RequestKind,
    control: &'a ControlState,
    opened_at_ms: u64,
    now_ms: u64,
) -> Option<&'a OffsetReset> {
    let (group, partitions) = simple_commit(body)?;
    control.offset_resets.values().find(|reset| {
        reset.group == group
            && reset.phase == ResetPhase::Done
            && reset
                .finished_at_ms
                .is_some_and(|done| done > opened_at_ms && now_ms.saturating_sub(done) < GUARD_MS)
            && partitions.iter().any(|(t, p)| reset.covers(t, *p))
    })
}

/// Whether a reset finished recently enough for its guard to hold.
pub(super) fn guarding(reset: &OffsetReset, now_ms: u64) -> bool {
    reset.phase == ResetPhase::Done
        && reset
            .finished_at_ms
            .is_some_and(|done| now_ms.saturating_sub(done) < GUARD_MS)
}

/// The group and partitions of a simple (no member) OffsetCommit or TxnOffsetCommit.
fn simple_commit(body: &RequestKind) -> Option<(&str, Vec<(&str, i32)>)> {
    match body {
        RequestKind::OffsetCommit(r)
            if !from_member(
                &r.member_id,
                r.generation_id_or_member_epoch,
                r.group_instance_id.as_deref(),
            ) =>
        {
            let partitions = r.topics.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.as_str(), p.partition_index))
            });
            Some((r.group_id.as_str(), partitions.collect()))
        }
        RequestKind::TxnOffsetCommit(r)
            if !from_member(
                &r.member_id,
                r.generation_id,
                r.group_instance_id.as_deref(),
            ) =>
        {
            let partitions = r.topics.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.as_str(), p.partition_index))
            });
            Some((r.group_id.as_str(), partitions.collect()))
        }
        _ => None,
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
