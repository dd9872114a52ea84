//! The fleet as the admin API shows it, and the fleet's own admin writes (drain, remove).

use flotilla_gossip::Lifecycle;

use super::error::ClusterError;
use super::fleet::Fleet;
use super::peer_api::Replay;
use super::writes::on_leader;
use crate::api::{
    ClusterStatus, Drained, Mode, NodeState, NodeSummary, RaftMemberSummary, RaftRole, Removed,
};
use crate::directory::Directory;

pub fn fleet_status(fleet: &Fleet, directory: &Directory, self_id: u64) -> ClusterStatus {
    let raft = fleet.status();
    let state = fleet.raft.state().borrow().clone();
    let identities = directory.identity_summaries();
    let role = |id: u64| {
        if raft.leader == Some(id) {
            RaftRole::Leader
        } else if raft.voters.contains(&id) {
            RaftRole::Voter
        } else if raft.learners.contains(&id) {
            RaftRole::Learner
        } else {
            RaftRole::None
        }
    };
    let nodes = fleet
        .gossip
        .members()
        .into_iter()
        .map(|m| {
            let id = m.state.node_id;
            NodeSummary {
                id,
                address: format!("{}:{}", m.state.advertised_host, m.state.bootstrap_port),
                zone: m.state.zone.clone(),
                state: node_state(m.state.lifecycle),
                alive: m.alive,
                raft_role: role(id),
                identities: identities
                    .iter()
                    .filter(|i| i.owner == Some(id))
                    .map(|i| i.id)
                    .collect(),
                connections: m.state.load,
                feature_level: m.state.feature_level,
            }
        })
        .collect();
    ClusterStatus {
        answered_by: self_id,
        mode: Mode::Fleet,
        leader: raft.leader,
        term: raft.term,
        assignment_epoch: state.assignment_epoch,
        degraded: fleet.degraded(),
        feature_level: state.feature_level,
        raft_members: raft
            .members
            .iter()
            .map(|(id, m)| RaftMemberSummary {
                id: *id,
                voter: raft.voters.contains(id),
                raft_address: m.raft_addr.clone(),
                incarnation: m.incarnation.clone(),
            })
            .collect(),
        nodes,
        identities,
    }
}

pub fn node_state(lifecycle: Lifecycle) -> NodeState {
    match lifecycle {
        Lifecycle::Joining => NodeState::Joining,
        Lifecycle::Serving => NodeState::Serving,
        Lifecycle::Draining => NodeState::Draining,
        Lifecycle::BackendUnreachable => NodeState::BackendUnreachable,
    }
}

/// Commits "node `id` is drained" through the leader.
pub async fn drain(fleet: &Fleet, id: u64, replay: &Replay) -> Result<Drained, ClusterError> {
    if !fleet.gossip.members().iter().any(|m| m.state.node_id == id) {
        return Err(ClusterError::UnknownNode(id));
    }
    on_leader(fleet, replay, || async {
        fleet
            .set_drained(id, true)
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        Ok(Drained { drained: id })
    })
    .await
}

/// Removes node `id` from the Raft group through the leader, so that a node started
/// with that id and an empty data directory can join as a new member. Only a node that
/// gossip sees dead can be removed: a live one would keep answering as a member.
pub async fn remove(fleet: &Fleet, id: u64, replay: &Replay) -> Result<Removed, ClusterError> {
    let members = fleet.gossip.members();
    if members.iter().any(|m| m.state.node_id == id && m.alive) {
        return Err(ClusterError::NodeAlive(id));
    }
    if !fleet.status().members.contains_key(&id) {
        return Err(ClusterError::NotRaftMember(id));
    }
    on_leader(fleet, replay, || async {
        fleet.remove_member(id).await?;
        Ok(Removed { removed: id })
    })
    .await
}
