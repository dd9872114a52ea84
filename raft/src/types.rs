//! The openraft type configuration, kept in one place so every other module (and the
//! node) names the same concrete types instead of repeating generic parameters.
//!
//! A member carries two addresses because the Raft RPC listener is meant to be bound to
//! a private address, while writes arriving on another node's admin API must be
//! forwarded to the leader's *admin* address.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::state::{Command, CommandResult};

/// Identifies a node in the Raft group (and in gossip).
pub type NodeId = u64;

/// How a Raft member is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// `host:port` of the member's Raft RPC listener.
    pub raft_addr: String,
    /// `host:port` of the member's admin HTTP API (where writes are forwarded).
    pub admin_addr: String,
    /// The data directory that holds this member's seat (see `incarnation`); empty when
    /// unknown.
    pub incarnation: String,
}

impl Member {
    pub fn new(raft_addr: impl Into<String>, admin_addr: impl Into<String>) -> Self {
        Member {
            raft_addr: raft_addr.into(),
            admin_addr: admin_addr.into(),
            incarnation: String::new(),
        }
    }

    pub fn with_incarnation(self, incarnation: impl Into<String>) -> Self {
        Member {
            incarnation: incarnation.into(),
            ..self
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} admin={}", self.raft_addr, self.admin_addr)
    }
}

openraft::declare_raft_types!(
    /// The flotilla control plane's Raft type configuration.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
pub type StorageError = openraft::StorageError<NodeId>;
