//! The fleet as the admin API shows it, and the admin writes it forwards to the leader.

use axum::http::StatusCode;
use flotilla_raft::ProposeError;

use super::fleet::Fleet;
use crate::admin::{ClusterStatus, IdentitySummary, NodeSummary};
use crate::directory::Directory;

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
        nodes,
        identities,
    }
}

/// Commits "node `id` is drained" through the leader, forwarding the request to the
/// leader's admin API when this node is not the leader.
pub async fn drain(fleet: &Fleet, id: u64) -> Result<(), (StatusCode, String)> {
    if !fleet.gossip.members().iter().any(|m| m.state.node_id == id) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("node {id} is not a member of this fleet"),
        ));
    }
    match fleet.set_drained(id, true).await {
        Ok(()) => Ok(()),
        Err(ProposeError::NotLeader {
            leader: Some((_, leader)),
        }) => forward_drain(&leader.admin_addr, id).await,
        Err(ProposeError::NotLeader { leader: None }) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the fleet has no Raft leader (no quorum); try again when it has one".into(),
        )),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn forward_drain(leader_admin: &str, id: u64) -> Result<(), (StatusCode, String)> {
    let url = format!("http://{leader_admin}/api/v1/nodes/{id}/drain");
    let answer = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        agent
            .post(&url)
            .send_empty()
            .map(|_| ())
            .map_err(|e| format!("forwarding to the leader at {url}: {e}"))
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    answer.map_err(|e| (StatusCode::BAD_GATEWAY, e))
}
