//! The fleet as the admin API shows it, and the admin writes it forwards to the leader.

use super::fleet::Fleet;
use super::peer_api;
use crate::admin::{ClusterStatus, IdentitySummary, NodeSummary, RaftMemberSummary};
use crate::directory::Directory;
use axum::http::StatusCode;

pub fn fleet_status(fleet: &Fleet, directory: &Directory, self_id: u64) -> ClusterStatus {
    let raft = fleet.status();
    let state = fleet.raft.state().borrow().clone();
    let identities: Vec<IdentitySummary> = directory
        .identities()
        .into_iter()
        .map(IdentitySummary::from)
        .collect();
    let role = |id: u64| {
        if raft.leader == Some(id) {
            "leader"
        } else if raft.voters.contains(&id) {
            "voter"
        } else if raft.learners.contains(&id) {
            "learner"
        } else {
            "-"
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
                state: m.state.lifecycle.as_str().to_string(),
                alive: m.alive,
                raft_role: role(id).to_string(),
                identities: identities
                    .iter()
                    .filter(|i| i.owner == Some(id))
                    .map(|i| i.id)
                    .collect(),
                connections: m.state.load,
            }
        })
        .collect();
    ClusterStatus {
        answered_by: self_id,
        mode: "fleet".into(),
        leader: raft.leader,
        term: raft.term,
        assignment_epoch: state.assignment_epoch,
        degraded: fleet.degraded(),
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

/// An admin write that failed: the HTTP status and a sentence for the operator.
pub type AdminError = (StatusCode, String);

/// Commits "node `id` is drained" through the leader.
pub async fn drain(fleet: &Fleet, id: u64) -> Result<(), AdminError> {
    if !fleet.gossip.members().iter().any(|m| m.state.node_id == id) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("node {id} is not a member of this fleet"),
        ));
    }
    let path = format!("/api/v1/nodes/{id}/drain");
    on_leader(fleet, "POST", &path, || async {
        fleet.set_drained(id, true).await.map_err(|e| e.to_string())
    })
    .await
}

/// Removes node `id` from the Raft group through the leader, so that a node started
/// with that id and an empty data directory can join as a new member. Only a node that
/// gossip sees dead can be removed: a live one would keep answering as a member.
pub async fn remove(fleet: &Fleet, id: u64) -> Result<(), AdminError> {
    let members = fleet.gossip.members();
    if members.iter().any(|m| m.state.node_id == id && m.alive) {
        return Err((
            StatusCode::CONFLICT,
            format!(
                "node {id} is alive; stop it before removing it \
                 (drain it first to move its identities without a pause)"
            ),
        ));
    }
    if !fleet.status().members.contains_key(&id) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("node {id} is not a member of the Raft group"),
        ));
    }
    let path = format!("/api/v1/nodes/{id}");
    on_leader(fleet, "DELETE", &path, || fleet.remove_member(id)).await
}

/// Runs `write` if this node leads the Raft group, or replays the request at the
/// leader's admin API.
async fn on_leader<F, Fut>(
    fleet: &Fleet,
    method: &'static str,
    path: &str,
    write: F,
) -> Result<(), AdminError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let status = fleet.status();
    match status.leader {
        Some(leader) if leader == status.node_id => write()
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e)),
        Some(leader) => match status.members.get(&leader) {
            Some(member) => peer_api::forward(&member.admin_addr, method, path).await,
            None => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("leader {leader} is not in this node's membership yet; try again"),
            )),
        },
        None => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the fleet has no Raft leader (no quorum); try again when it has one".into(),
        )),
    }
}
