//! `/api/v1/routes` and `/api/v1/backend-clusters`: which backend cluster serves each
//! topic, consumer group and transactional id, and the clusters themselves. A route is
//! checked on the node that received it (a known resource kind, a name) and against the
//! leader's state (a registered cluster, no overlapping prefix) before it is proposed; the
//! state machine checks again, so two racing writes cannot both land.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use flotilla_raft::routes::{RouteKey, RouteResource, LEVEL};
use flotilla_raft::{Command, ControlState, TopicPattern};
use serde::Deserialize;

use super::auth::Caller;
use super::{answer, fleet_at_level, invalid_input, json_bytes};
use crate::api::{BackendBrokerView, BackendClusterView, DefaultRoute, RouteEntry, RouteTable};
use crate::backend::reaches_any;
use crate::cluster::error::ClusterError;
use crate::cluster::peer_api::Write;
use crate::cluster::writes::{commit, on_leader};
use crate::context::Context;

/// How long `GET /api/v1/backend-clusters` tries each cluster's brokers.
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/api/v1/routes", get(list).post(set))
        .route("/api/v1/routes/default", post(set_default))
        .route("/api/v1/routes/{resource}/{*name}", delete(remove))
        .route("/api/v1/backend-clusters", get(clusters))
}

async fn list(State(ctx): State<Arc<Context>>) -> Response {
    let state = ctx.control.load();
    answer(Ok(route_table(&state)))
}

fn route_table(state: &ControlState) -> RouteTable {
    let routes = state
        .routes
        .iter()
        .map(|(key, cluster)| entry(key, cluster))
        .collect();
    RouteTable {
        default_cluster: state.default_route().to_string(),
        routes,
    }
}

fn entry(key: &RouteKey, cluster: &str) -> RouteEntry {
    RouteEntry {
        resource: key.resource.to_string(),
        name: key.pattern.name.clone(),
        prefix: key.pattern.prefix,
        cluster: cluster.to_string(),
    }
}

/// The route key an operator named, checked for what needs no state.
fn route_key(resource: &str, name: &str, prefix: bool) -> Result<RouteKey, ClusterError> {
    let resource = RouteResource::parse(resource).ok_or_else(|| {
        ClusterError::Invalid(format!(
            "resource: `{resource}` is not one of topic, group, transactional-id"
        ))
    })?;
    if name.is_empty() {
        return Err(ClusterError::Invalid(
            "name: a route needs a non-empty name or prefix".into(),
        ));
    }
    Ok(RouteKey {
        resource,
        pattern: TopicPattern {
            name: name.to_string(),
            prefix,
        },
    })
}

async fn set(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<RouteEntry>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Json(new) = body.map_err(|e| invalid_input(&e))?;
            let key = route_key(&new.resource, &new.name, new.prefix)?;
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&new)));
            on_leader(fleet, &replay, || async {
                let checked = fleet.raft.state().borrow().check_route(&key, &new.cluster);
                checked.map_err(|e| ClusterError::Conflict(e.to_string()))?;
                let command = Command::SetRoute {
                    key: key.clone(),
                    cluster: new.cluster.clone(),
                };
                commit(fleet, command).await?;
                Ok(entry(&key, &new.cluster))
            })
            .await
        }
        .await,
    )
}

async fn set_default(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<DefaultRoute>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Json(new) = body.map_err(|e| invalid_input(&e))?;
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&new)));
            on_leader(fleet, &replay, || async {
                let command = Command::SetDefaultCluster {
                    cluster: new.cluster.clone(),
                };
                commit(fleet, command).await?;
                Ok(new.clone())
            })
            .await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    prefix: bool,
}

async fn remove(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path((resource, name)): Path<(String, String)>,
    query: Result<Query<RemoveQuery>, QueryRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Query(query) = query.map_err(|e| invalid_input(&e))?;
            let key = route_key(&resource, &name, query.prefix)?;
            let replay = caller.replay(Write::Delete, &uri, None);
            on_leader(fleet, &replay, || async {
                let Some(cluster) = fleet.raft.state().borrow().routes.get(&key).cloned() else {
                    return Err(ClusterError::NotFound(format!(
                        "there is no route for the {key}"
                    )));
                };
                commit(fleet, Command::DeleteRoute { key: key.clone() }).await?;
                Ok(entry(&key, &cluster))
            })
            .await
        }
        .await,
    )
}

/// Every registered cluster, each probed from this node at once.
async fn clusters(State(ctx): State<Arc<Context>>) -> Response {
    let state = ctx.control.load_full();
    let names = state.cluster_names();
    let probes = names.iter().map(|name| async {
        match ctx.clusters.get(name) {
            Some(cluster) => Some(reaches_any(&cluster.candidates(), REACH_TIMEOUT).await),
            None => None,
        }
    });
    let reachable = futures::future::join_all(probes).await;
    let views: Vec<BackendClusterView> = names
        .iter()
        .zip(reachable)
        .map(|(name, reachable)| cluster_view(&state, name, reachable))
        .collect();
    answer(Ok(views))
}

fn cluster_view(state: &ControlState, name: &str, reachable: Option<bool>) -> BackendClusterView {
    let brokers = state
        .identities
        .values()
        .filter(|i| state.broker_of(i.id).0 == name)
        .map(|i| BackendBrokerView {
            broker_id: state.broker_of(i.id).1,
            identity: i.id,
            address: format!("{}:{}", i.broker.host, i.broker.port),
            present: i.present,
            owner: i.owner,
        })
        .collect();
    BackendClusterView {
        name: name.to_string(),
        number: state.backend_clusters.get(name).map_or(0, |c| c.number),
        reachable,
        configured: reachable.is_some(),
        brokers,
        routes: state.routes.values().filter(|c| *c == name).count(),
        is_default: state.default_route() == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_name_what_is_wrong() {
        let err = route_key("topics", "orders", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource: `topics` is not one of topic, group, transactional-id"
        );
        assert!(route_key("group", "", true).is_err());
        let key = route_key("transactional-id", "tx-", true).unwrap();
        assert_eq!(key.to_string(), "transactional-id prefix `tx-`");
    }
}
