//! Errors of the control-plane facade, flattened from openraft's generic error tree into
//! what a caller can act on: forward to the leader, fix the configuration, retry later,
//! or give up because the local Raft stopped.

use std::net::SocketAddr;
use std::path::PathBuf;

use openraft::error::{ChangeMembershipError, ClientWriteError, Fatal, ForwardToLeader};

use crate::log_store::StoreError;
use crate::types::{Member, NodeId};

#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("cannot create raft data dir {dir}: {source}")]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("raft data dir {dir} belongs to node {found}, but this node is {expected}; point it at its own dir")]
    ForeignDataDir {
        dir: PathBuf,
        found: NodeId,
        expected: NodeId,
    },
    #[error("cannot open raft storage in {dir}: {source}")]
    Storage { dir: PathBuf, source: StoreError },
    #[error("cannot bind raft rpc listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid raft configuration: {0}")]
    Config(Box<openraft::ConfigError>),
    #[error("cannot build raft rpc client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot build raft rpc client's TLS configuration: {0}")]
    ClientTls(#[from] rustls::Error),
    #[error("node {node_id} is not among the initial members it was asked to bootstrap")]
    NotInitialMember { node_id: NodeId },
    #[error("not the raft leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, Member)> },
    #[error("membership change refused: {0}")]
    Membership(Box<ChangeMembershipError<NodeId>>),
    #[error("raft stopped: {0}")]
    Fatal(Box<Fatal<NodeId>>),
}

macro_rules! boxed_from {
    ($($variant:ident($t:ty)),*) => {$(
        impl From<$t> for RaftError {
            fn from(e: $t) -> Self {
                RaftError::$variant(Box::new(e))
            }
        }
    )*};
}
boxed_from!(
    Config(openraft::ConfigError),
    Membership(ChangeMembershipError<NodeId>),
    Fatal(Fatal<NodeId>)
);

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader accepts commands; forward to `leader` when it is known.
    #[error("not the raft leader (leader: {leader:?})")]
    NotLeader { leader: Option<(NodeId, Member)> },
    /// Not every member of the fleet understands this command yet (a rolling upgrade is
    /// under way, or a member running an older release is down).
    #[error(
        "the fleet is at feature level {committed} and this needs level {needed}: \
         upgrade every node first"
    )]
    FeatureLevel { needed: u16, committed: u16 },
    #[error(transparent)]
    Raft(RaftError),
}

impl From<RaftError> for ProposeError {
    fn from(e: RaftError) -> Self {
        match e {
            RaftError::NotLeader { leader } => ProposeError::NotLeader { leader },
            other => ProposeError::Raft(other),
        }
    }
}

pub(crate) type WriteError = openraft::error::RaftError<NodeId, ClientWriteError<NodeId, Member>>;

fn leader_of(f: ForwardToLeader<NodeId, Member>) -> Option<(NodeId, Member)> {
    f.leader_id.zip(f.leader_node)
}

impl From<WriteError> for RaftError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::APIError(ClientWriteError::ForwardToLeader(f)) => RaftError::NotLeader {
                leader: leader_of(f),
            },
            WriteError::APIError(ClientWriteError::ChangeMembershipError(c)) => c.into(),
            WriteError::Fatal(f) => f.into(),
        }
    }
}

impl From<WriteError> for ProposeError {
    fn from(e: WriteError) -> Self {
        RaftError::from(e).into()
    }
}
