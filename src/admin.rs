//! The admin HTTP listener: Prometheus metrics, health and readiness probes, and the JSON
//! API that `proxyctl` reads (its types are in [`crate::api`]). This is the one place that
//! turns the cluster layer's errors into HTTP statuses.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::api::{ApiError, ClusterStatus, Drained, IdentitySummary, Removed};
use crate::cluster::error::ClusterError;
use crate::cluster::status;
use crate::context::Context;

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

/// Serves the admin API until `stop` resolves.
pub async fn serve(
    ctx: Arc<Context>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(ctx))
        .with_graceful_shutdown(stop)
        .await?;
    Ok(())
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

async fn drain(State(ctx): State<Arc<Context>>, Path(id): Path<u64>) -> Response {
    let done = match &ctx.fleet {
        Some(fleet) => status::drain(fleet, id).await,
        None => Err(ClusterError::Standalone),
    };
    answer(done.map(|()| Drained { drained: id }))
}

async fn remove_node(State(ctx): State<Arc<Context>>, Path(id): Path<u64>) -> Response {
    let done = match &ctx.fleet {
        Some(fleet) => status::remove(fleet, id).await,
        None => Err(ClusterError::Standalone),
    };
    answer(done.map(|()| Removed { removed: id }))
}

fn answer<T: Serialize>(done: Result<T, ClusterError>) -> Response {
    match done {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(e) => {
            let error = ApiError {
                error: e.to_string(),
            };
            (http_status(&e), Json(error)).into_response()
        }
    }
}

fn http_status(e: &ClusterError) -> StatusCode {
    match e {
        ClusterError::Standalone | ClusterError::NodeAlive(_) => StatusCode::CONFLICT,
        ClusterError::UnknownNode(_) | ClusterError::NotRaftMember(_) => StatusCode::NOT_FOUND,
        ClusterError::NoLeader | ClusterError::LeaderUnknown(_) => StatusCode::SERVICE_UNAVAILABLE,
        ClusterError::LeaderRefused { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        ClusterError::LeaderUnreachable { .. } => StatusCode::BAD_GATEWAY,
        ClusterError::Raft(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
