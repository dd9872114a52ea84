//! Online consumer offset resets: planning one (resolving `--to-earliest`, a timestamp,
//! a shift into concrete offsets, clamped to each partition's range), recording it in the
//! control state, and carrying it out from the Raft leader.
//!
//! How a reset reaches a running group (see `flotilla_raft::offset_resets` for why it is
//! replicated): once it is `applying`, every node's `offset_reset` filter refuses the
//! group's members (UNKNOWN_MEMBER_ID for the classic protocol, FENCED_MEMBER_EPOCH for
//! KIP-848), so each drops its positions without committing them, and holds back anyone
//! joining or reading the group's offsets. The refusing node then removes the member from
//! the group at the coordinator ([`evictions`]), so the group empties within a heartbeat
//! interval ([`driver::evict_fenced`]). The leader's driver waits for the group to be
//! empty (removing, after 15 s, members no node has fenced: their node died first, or
//! they reach Kafka past the fleet),
//! commits the targets exactly as Kafka's own tool does, and marks the reset `done`;
//! members rejoin and read the targets from Kafka itself.

pub mod driver;
pub mod evictions;
pub mod plan;

use flotilla_raft::offset_resets::{OffsetReset, ResetPhase};
use flotilla_raft::Command;

pub use flotilla_raft::offset_resets::LEVEL;

use super::error::ClusterError;
use super::fleet::Fleet;
use super::writes::commit;
use crate::api::{OffsetResetSummary, PartitionResetSummary};

/// Cancels reset `id`; only a pending reset can be, since an applying one has already
/// fenced the group.
pub async fn cancel(fleet: &Fleet, id: &str) -> Result<OffsetResetSummary, ClusterError> {
    let state = fleet.raft.state().borrow().clone();
    let Some(reset) = state.offset_resets.get(id) else {
        return Err(ClusterError::NotFound(format!("no offset reset {id}")));
    };
    if reset.phase != ResetPhase::Pending {
        return Err(ClusterError::Conflict(format!(
            "offset reset {id} is {}; only a pending reset can be cancelled",
            reset.phase
        )));
    }
    commit(
        fleet,
        Command::AdvanceOffsetReset {
            id: id.to_string(),
            from: ResetPhase::Pending,
            to: ResetPhase::Cancelled,
            at_ms: flotilla_raft::governance::unix_millis(),
        },
    )
    .await?;
    let state = fleet.raft.state().borrow().clone();
    match state.offset_resets.get(id) {
        Some(reset) if reset.phase == ResetPhase::Cancelled => Ok(summary_of(reset)),
        Some(reset) => Err(ClusterError::Conflict(format!(
            "offset reset {id} became {} before it could be cancelled",
            reset.phase
        ))),
        None => Err(ClusterError::NotFound(format!("no offset reset {id}"))),
    }
}

/// A reset as the admin API shows it.
pub fn summary_of(reset: &OffsetReset) -> OffsetResetSummary {
    OffsetResetSummary {
        id: reset.id.clone(),
        group: reset.group.clone(),
        state: reset.phase.name().to_string(),
        spec: reset.spec.clone(),
        requested_by: reset.requested_by.clone(),
        created_at_ms: reset.created_at_ms,
        start_at_ms: reset.start_at_ms,
        deadline_ms: reset.deadline_ms,
        finished_at_ms: reset.finished_at_ms,
        partitions: reset
            .partitions
            .iter()
            .map(|p| PartitionResetSummary {
                topic: p.topic.clone(),
                partition: p.partition,
                current: p.previous,
                target: p.target,
                applied: p.applied,
            })
            .collect(),
    }
}
