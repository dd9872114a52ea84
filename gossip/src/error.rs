//! Why gossip could not start; each message names what to fix.
//!
//! Causes are part of the message rather than a `source` chain because the node prints
//! start errors once and exits: the operator should not need a chain walker to see them.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    #[error("gossip configuration: {0}")]
    Config(String),
    #[error("cannot bind gossip UDP address {addr}: {cause}")]
    Bind { addr: SocketAddr, cause: String },
    #[error("cannot start gossip on {addr}: {cause:#}")]
    Start {
        addr: SocketAddr,
        cause: anyhow::Error,
    },
    #[error(
        "node id {node_id} is already in use by a live node gossiping at {other_addr}; \
         give this node another id or stop the other one"
    )]
    DuplicateNodeId {
        node_id: String,
        other_addr: SocketAddr,
    },
    #[error(
        "gossip seed {seed} belongs to another cluster (ours is `{cluster_id}`); \
         check the cluster id and the seed list"
    )]
    ClusterMismatch {
        cluster_id: String,
        seed: SocketAddr,
    },
}
