//! Why a fleet operation was refused, in the cluster's own terms. The admin API decides
//! which HTTP status each becomes; nothing in the cluster layer speaks HTTP statuses.

/// A fleet write (drain, remove, ...) or a read of another node that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("this node runs standalone: there is no fleet to change")]
    Standalone,
    #[error("node {0} is not a member of this fleet")]
    UnknownNode(u64),
    #[error("node {0} is not a member of the Raft group")]
    NotRaftMember(u64),
    #[error(
        "node {0} is alive; stop it before removing it \
         (drain it first to move its identities without a pause)"
    )]
    NodeAlive(u64),
    #[error("the fleet has no Raft leader (no quorum); try again when it has one")]
    NoLeader,
    #[error("leader {0} is not in this node's membership yet; try again")]
    LeaderUnknown(u64),
    /// The leader was asked and refused; `status` is the HTTP status it answered with.
    #[error("the leader at {leader} answered: {error}")]
    LeaderRefused {
        leader: String,
        status: u16,
        error: String,
    },
    #[error("cannot reach the leader at {leader}: {error}")]
    LeaderUnreachable { leader: String, error: String },
    /// The write reached the leader's Raft and failed there.
    #[error("{0}")]
    Raft(String),
}
