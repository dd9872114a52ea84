//! A plain, serializable view of the local Raft node for the admin API and `proxyctl`,
//! so neither has to understand openraft's generic metrics types.
//!
//! Fields that change on every heartbeat are left out on purpose: a watch on this
//! status fires only when something an operator or the controller cares about changes.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{RaftMetrics, ServerState};
use serde::{Deserialize, Serialize};

use crate::types::{Member, NodeId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl From<ServerState> for Role {
    fn from(s: ServerState) -> Self {
        match s {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    pub node_id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to the control state (openraft 0.9 does not
    /// report the commit index separately; applied trails it by at most one batch).
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    pub members: BTreeMap<NodeId, Member>,
}

impl RaftStatus {
    pub fn from_metrics(m: &RaftMetrics<NodeId, Member>) -> RaftStatus {
        let membership = m.membership_config.membership();
        RaftStatus {
            node_id: m.id,
            role: m.state.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            members: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
}
