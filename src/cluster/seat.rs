//! The look a node takes at the fleet before it takes part in Raft. It asks the live
//! members' Raft listeners (or the admin APIs of members of an older release) what the
//! Raft group holds, and two answers matter:
//!
//! - the group holds a member with this node's id but another data directory (see
//!   `flotilla_raft::incarnation`): this node's data was wiped, and it must not take its
//!   former seat, so it refuses to start until an operator removes the old member;
//! - a group exists at all: the node waits to be added to it as a learner instead of
//!   initializing a new group from `initial_members`.
//!
//! A fleet that cannot be reached gives no answer; the node then behaves as
//! in a brand-new fleet, which is what it most likely is.

use std::time::Duration;

use flotilla_gossip::{Gossip, Member};
use flotilla_raft::network::{NetworkFactory, PeerMembers};

use super::peer_api::PeerApi;
use crate::api::{ClusterStatus, RaftMemberSummary};

/// How long one peer may take to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long to wait for gossip to show a peer's state at all. Joining gossip only means
/// a seed answered; its key-values arrive in the next rounds.
const PEER_SIGHTING_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seat {
    /// No live member reported a Raft group: initialize one if this node is an initial
    /// member.
    NewGroup,
    /// A Raft group exists; its leader adds this node.
    ExistingGroup,
}

/// Finds this node's place in the fleet's Raft group, or refuses a seat taken by another
/// data directory.
pub async fn find(
    gossip: &Gossip,
    peers: &PeerApi,
    raft_tls: Option<rustls::ClientConfig>,
    has_seeds: bool,
    id: u64,
    incarnation: &str,
) -> anyhow::Result<Seat> {
    let raft = NetworkFactory::new(id, PEER_TIMEOUT, raft_tls)?;
    if has_seeds {
        let mut members = gossip.watch();
        let any_peer = |m: &Vec<Member>| m.iter().any(|m| m.alive && !m.is_self);
        // No peer in time: most likely the first node of a new fleet.
        let _ = tokio::time::timeout(PEER_SIGHTING_TIMEOUT, members.wait_for(any_peer)).await;
    }
    let mut seat = Seat::NewGroup;
    for peer in gossip.members().iter().filter(|m| m.alive && !m.is_self) {
        let Some(group) = group_seen_by(peer, &raft, peers).await else {
            continue;
        };
        if let Some(old) = group
            .members
            .iter()
            .find(|m| m.id == id && !m.incarnation.is_empty() && m.incarnation != incarnation)
        {
            let endpoint = peers.url(&peer.state.admin_addr, "");
            anyhow::bail!(
                "node {id} starts with a new data directory (incarnation {incarnation}), but \
                 the fleet's Raft group still holds node {id} with data directory {} \
                 (according to node {}). If the old data is gone for good, remove the old \
                 member with `proxyctl --endpoint {endpoint} node remove {id}` and start \
                 again; otherwise start with the old data directory",
                old.incarnation,
                group.seen_by
            );
        }
        if !group.members.is_empty() {
            seat = Seat::ExistingGroup;
        }
    }
    Ok(seat)
}

/// The Raft group as one peer knows it.
struct GroupView {
    seen_by: u64,
    members: Vec<RaftMemberSummary>,
}

/// Asks `peer`'s Raft listener, which needs no admin credentials (with `[cluster.tls]`,
/// this node's fleet certificate); a peer of an older release has no such endpoint, so
/// its admin API is asked instead (open in those releases).
async fn group_seen_by(peer: &Member, raft: &NetworkFactory, peers: &PeerApi) -> Option<GroupView> {
    let seen_by = peer.state.node_id;
    let raft_addr = &peer.state.raft_addr;
    match raft.members_of(seen_by, raft_addr, PEER_TIMEOUT).await {
        PeerMembers::Known(members) => Some(GroupView {
            seen_by,
            members: members
                .into_iter()
                .map(|(id, m)| RaftMemberSummary {
                    id,
                    voter: false,
                    raft_address: m.raft_addr,
                    incarnation: m.incarnation,
                })
                .collect(),
        }),
        PeerMembers::Unreachable => None,
        PeerMembers::Unsupported => {
            let status: ClusterStatus = peers
                .get(&peer.state.admin_addr, "/api/v1/cluster", PEER_TIMEOUT)
                .await?;
            Some(GroupView {
                seen_by: status.answered_by,
                members: status.raft_members,
            })
        }
    }
}
