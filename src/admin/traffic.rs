//! `/api/v1/traffic` and `/api/v1/clients`: the busiest topics and clients, and the
//! client connections, of the whole fleet. The node asked answers with its own view
//! summed with every live peer's (`?scope=node` asks one node for its own view only);
//! a peer that does not answer in time is listed as missing rather than failing the
//! whole read, so an operator still sees the rest of the fleet while a node is down.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::auth::Caller;
use crate::api::{ClientsReport, TrafficReport};
use crate::context::Context;
use crate::monitoring::describe;

/// Longest wait for a peer's view.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

pub fn routes() -> axum::Router<Arc<Context>> {
    Router::new()
        .route("/api/v1/traffic", axum::routing::get(traffic))
        .route("/api/v1/clients", axum::routing::get(clients))
}

#[derive(Debug, Default, Deserialize)]
struct Scope {
    /// `node`: this node's view only.
    #[serde(default)]
    scope: Option<String>,
}

impl Scope {
    fn node_only(&self) -> bool {
        self.scope.as_deref() == Some("node")
    }
}

async fn traffic(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    Query(scope): Query<Scope>,
) -> Json<TrafficReport> {
    let node = ctx.config.node.id;
    let own = ctx.traffic.report(node);
    if scope.node_only() {
        return Json(own);
    }
    let (mut reports, missing) = from_peers(&ctx, &caller, "/api/v1/traffic?scope=node").await;
    reports.push(own);
    Json(TrafficReport::sum(node, &reports, missing))
}

async fn clients(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    Query(scope): Query<Scope>,
) -> Json<ClientsReport> {
    let node = ctx.config.node.id;
    let own = ClientsReport {
        answered_by: node,
        nodes: vec![node],
        missing: Vec::new(),
        clients: ctx
            .clients
            .connected()
            .iter()
            .map(|c| describe(node, c))
            .collect(),
    };
    if scope.node_only() {
        return Json(own);
    }
    let (mut reports, missing) = from_peers(&ctx, &caller, "/api/v1/clients?scope=node").await;
    reports.push(own);
    Json(ClientsReport::merge(node, reports, missing))
}

/// `path` from every live peer at once: the answers, and the peers that gave none.
async fn from_peers<T: DeserializeOwned>(
    ctx: &Context,
    caller: &Caller,
    path: &str,
) -> (Vec<T>, Vec<u64>) {
    let Some(fleet) = &ctx.fleet else {
        return (Vec::new(), Vec::new());
    };
    let peers: Vec<_> = fleet
        .gossip
        .members()
        .into_iter()
        .filter(|m| m.alive && !m.is_self)
        .collect();
    let authorization = caller.authorization.as_deref();
    let asks = peers.iter().map(|m| {
        fleet
            .peers
            .get_as::<T>(&m.state.admin_addr, path, authorization, PEER_TIMEOUT)
    });
    let answers = futures::future::join_all(asks).await;
    let mut reports = Vec::new();
    let mut missing = Vec::new();
    for (peer, answer) in peers.iter().zip(answers) {
        match answer {
            Some(report) => reports.push(report),
            None => missing.push(peer.state.node_id),
        }
    }
    (reports, missing)
}
