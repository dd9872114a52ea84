//! The admin HTTP listener: Prometheus metrics, health and readiness probes, and the JSON
//! API that `proxyctl` reads.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::directory::IdentityView;
use crate::node::Context;

/// `GET /api/v1/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: u64,
    pub advertised_host: String,
    pub bootstrap: String,
    pub ready: bool,
    pub not_ready_reason: Option<String>,
    pub identities: Vec<IdentitySummary>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IdentitySummary {
    pub id: i32,
    pub slot: u16,
    pub address: String,
    pub broker: String,
}

impl From<IdentityView> for IdentitySummary {
    fn from(v: IdentityView) -> Self {
        IdentitySummary {
            id: v.id,
            slot: v.slot,
            address: v.address,
            broker: v.broker.address(),
        }
    }
}

pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
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

async fn status(State(ctx): State<Arc<Context>>) -> Json<NodeStatus> {
    let node = &ctx.config.node;
    let not_ready_reason = ctx.not_ready_reason();
    Json(NodeStatus {
        node_id: node.id,
        advertised_host: node.advertised_host.clone(),
        bootstrap: format!("{}:{}", node.advertised_host, node.bootstrap_port),
        ready: not_ready_reason.is_none(),
        not_ready_reason,
        identities: ctx
            .directory
            .identities()
            .into_iter()
            .map(Into::into)
            .collect(),
    })
}
