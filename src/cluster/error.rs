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
    /// The command needs a fleet feature level the fleet has not committed: some member
    /// runs an older build (or is down and its build unknown).
    #[error(
        "the fleet is at feature level {committed} and this needs level {needed}; {}",
        behind_text(older)
    )]
    FeatureLevel {
        needed: u16,
        committed: u16,
        older: Vec<MemberLevel>,
    },
    /// The request itself is wrong (an unknown name, a value out of range).
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what exists (a name already taken).
    #[error("{0}")]
    Conflict(String),
}

/// A Raft member and the feature level its build publishes in gossip (`None`: gossip
/// does not show it, so its build is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLevel {
    pub node: u64,
    pub level: Option<u16>,
}

fn behind_text(older: &[MemberLevel]) -> String {
    if older.is_empty() {
        return "every member now runs a build that has it; the leader raises the level \
                within a second, try again"
            .into();
    }
    let nodes: Vec<String> = older
        .iter()
        .map(|m| match m.level {
            Some(level) => format!("node {} (level {level})", m.node),
            None => format!("node {} (down, build unknown)", m.node),
        })
        .collect();
    format!(
        "these members still run an older build: {}; upgrade them first",
        nodes.join(", ")
    )
}
