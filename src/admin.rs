//! The admin HTTP listener: Prometheus metrics, health and readiness probes, and the JSON
//! API that `proxyctl` reads. The JSON types are shared with `proxyctl`, so the CLI and
//! the server cannot drift apart.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::node::Context;

/// `GET /api/v1/cluster`: the fleet as the answering node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub answered_by: u64,
    /// `standalone` (one node owns everything) or `fleet`.
    pub mode: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub assignment_epoch: u64,
    /// The Raft group has no quorum; owners of dead nodes are fallbacks, not committed.
    pub degraded: bool,
    /// The Raft group's members as the answering node knows them; empty when standalone.
    #[serde(default)]
    pub raft_members: Vec<RaftMemberSummary>,
    pub nodes: Vec<NodeSummary>,
    pub identities: Vec<IdentitySummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSummary {
    pub id: u64,
    pub address: String,
    pub zone: Option<String>,
    pub state: String,
    pub alive: bool,
    pub raft_role: String,
    pub identities: Vec<i32>,
    pub connections: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RaftMemberSummary {
    pub id: u64,
    /// A voter, or else a learner.
    pub voter: bool,
    pub raft_address: String,
    /// The member's data directory (see `flotilla_raft::incarnation`).
    pub incarnation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentitySummary {
    pub id: i32,
    pub slot: u16,
    pub owner: Option<u64>,
    pub address: String,
    pub broker: String,
}

impl From<crate::directory::IdentityView> for IdentitySummary {
    fn from(v: crate::directory::IdentityView) -> Self {
        IdentitySummary {
            id: v.id,
            slot: v.slot,
            owner: v.owner,
            address: v.address,
            broker: v.broker.address(),
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/identities", get(identities))
        .route("/api/v1/nodes/{id}/drain", post(drain))
        .route("/api/v1/nodes/{id}", delete(remove_node))
        .with_state(ctx)
}

pub async fn serve(ctx: Arc<Context>, listener: TcpListener) {
    if let Err(e) = axum::serve(listener, router(ctx)).await {
        tracing::error!("admin listener failed: {e}");
    }
}

async fn metrics(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        ctx.metrics.render(),
    )
}

async fn readyz(State(ctx): State<Arc<Context>>) -> impl IntoResponse {
    match ctx.not_ready_reason() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

async fn cluster(State(ctx): State<Arc<Context>>) -> Json<ClusterStatus> {
    Json(ctx.cluster_status())
}

async fn identities(State(ctx): State<Arc<Context>>) -> Json<Vec<IdentitySummary>> {
    Json(ctx.cluster_status().identities)
}

async fn drain(State(ctx): State<Arc<Context>>, Path(id): Path<u64>) -> impl IntoResponse {
    let done = ctx.fleet_write(id, crate::cluster::status::drain).await;
    answer(done, serde_json::json!({ "drained": id }))
}

async fn remove_node(State(ctx): State<Arc<Context>>, Path(id): Path<u64>) -> impl IntoResponse {
    let done = ctx.fleet_write(id, crate::cluster::status::remove).await;
    answer(done, serde_json::json!({ "removed": id }))
}

fn answer(
    done: Result<(), (StatusCode, String)>,
    ok: serde_json::Value,
) -> axum::response::Response {
    match done {
        Ok(()) => (StatusCode::OK, Json(ok)).into_response(),
        Err((status, error)) => (status, Json(ApiError { error })).into_response(),
    }
}
