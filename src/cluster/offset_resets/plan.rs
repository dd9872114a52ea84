//! Planning a reset: from what an operator asked (`--to-earliest`, `--to-datetime`, ...)
//! to one concrete, clamped target offset per partition, checked against what Kafka
//! knows (the group and the topics exist).

use flotilla_raft::offset_resets::PartitionReset;

use crate::cluster::error::ClusterError;
use crate::context::Context;

/// A validated reset request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub group: String,
    pub topics: Vec<TopicSelection>,
    pub target: ResetTarget,
}

/// `TOPIC` (partitions `None`: every partition) or `TOPIC:0,1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSelection {
    pub topic: String,
    pub partitions: Option<Vec<i32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    Earliest,
    Latest,
    Offset(i64),
    /// The first offset whose record's timestamp is at or after this instant.
    Datetime {
        unix_ms: i64,
    },
    ShiftBy(i64),
}

/// Resolves `request` against the backend cluster: one entry per selected partition with
/// the group's committed offset now and the target, clamped to the partition's
/// [log start, high watermark]. Unknown groups and topics are refused by name.
pub async fn plan(
    _ctx: &Context,
    _request: &ResetRequest,
) -> Result<Vec<PartitionReset>, ClusterError> {
    Err(ClusterError::Invalid(
        "offset reset planning is not built yet".into(),
    ))
}
