//! FindCoordinator across clusters: a group's coordinator is in the group's cluster, a
//! transactional id's in its own, whatever broker the client asked. Each key is asked of
//! its cluster (batched per cluster from v4 on), and the coordinator's id comes back as the
//! virtual identity, so the client's group and transaction requests then go over that
//! identity's connection, to the right cluster, with nothing more to route.
//!
//! A cluster that does not answer gives its keys COORDINATOR_NOT_AVAILABLE, which clients
//! retry.

use std::collections::BTreeMap;

use flotilla_raft::routes::RouteResource;
use futures::future::join_all;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{call, exchanged, Routed};
use crate::proxy::filter::Verdict;

/// FindCoordinator's key type of a transactional id (0 is a group, 2 a share group).
const TRANSACTION: i8 = 1;

fn resource(key_type: i8) -> RouteResource {
    match key_type {
        TRANSACTION => RouteResource::TransactionalId,
        _ => RouteResource::Group,
    }
}

pub(super) fn exchange(routed: Routed, body: FindCoordinatorRequest, version: i16) -> Verdict {
    if version < 4 {
        return exchange_one(routed, body, version);
    }
    let resource = resource(body.key_type);
    let mut by_cluster: BTreeMap<String, Vec<StrBytes>> = BTreeMap::new();
    for key in &body.coordinator_keys {
        let cluster = routed.state.cluster_for(resource, key).to_string();
        by_cluster.entry(cluster).or_default().push(key.clone());
    }
    exchanged(async move {
        let asked = by_cluster.iter().map(|(cluster, keys)| {
            let request = body.clone().with_coordinator_keys(keys.clone());
            let routed = &routed;
            async move {
                let cluster_handle = routed.cluster(cluster)?;
                call(&cluster_handle, version, &request).await
            }
        });
        let answers = join_all(asked).await;
        let mut found: BTreeMap<StrBytes, Coordinator> = BTreeMap::new();
        for ((cluster, keys), answer) in by_cluster.iter().zip(answers) {
            match answer {
                Ok(answer) => {
                    for mut coordinator in answer.coordinators {
                        coordinator.node_id = routed.virtual_id(cluster, coordinator.node_id);
                        found.insert(coordinator.key.clone(), coordinator);
                    }
                }
                Err(e) => {
                    tracing::warn!("FindCoordinator of {} keys: {e}", keys.len());
                    for key in keys {
                        found.insert(key.clone(), not_available(key.clone(), &e));
                    }
                }
            }
        }
        let coordinators = body
            .coordinator_keys
            .iter()
            .map(|key| {
                found
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| not_available(key.clone(), "no answer for the key"))
            })
            .collect();
        let merged = FindCoordinatorResponse::default().with_coordinators(coordinators);
        Ok(ResponseKind::FindCoordinator(merged))
    })
}

/// Versions before 4 name one key.
fn exchange_one(routed: Routed, body: FindCoordinatorRequest, version: i16) -> Verdict {
    let cluster = routed
        .state
        .cluster_for(resource(body.key_type), &body.key)
        .to_string();
    exchanged(async move {
        let answer = match routed.cluster(&cluster) {
            Ok(handle) => call(&handle, version, &body).await,
            Err(e) => Err(e),
        };
        let answer = match answer {
            Ok(mut answer) => {
                answer.node_id = routed.virtual_id(&cluster, answer.node_id);
                answer
            }
            Err(e) => {
                tracing::warn!("FindCoordinator: {e}");
                FindCoordinatorResponse::default()
                    .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                    .with_error_message(Some(StrBytes::from_string(e)))
                    .with_node_id(BrokerId(-1))
            }
        };
        Ok(ResponseKind::FindCoordinator(answer))
    })
}

fn not_available(key: StrBytes, reason: &str) -> Coordinator {
    Coordinator::default()
        .with_key(key)
        .with_node_id(BrokerId(-1))
        .with_error_code(ResponseError::CoordinatorNotAvailable.code())
        .with_error_message(Some(StrBytes::from_string(reason.to_string())))
}
