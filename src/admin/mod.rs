//! The admin HTTP listener: Prometheus metrics, health and readiness probes, and the JSON
//! API that `proxyctl` reads (its types are in [`crate::api`]). This is the one place that
//! turns the cluster layer's errors into HTTP statuses.
//!
//! Every request passes `auth` first. The fleet's own resources (cluster, identities,
//! drain) are here; the fleet's security data has a file each (`users`, `acls`,
//! `tokens`), and so do traffic governance's resources (`breakers`, `quotas`,
//! `offset_resets`, `zones`), and so do the backend clusters and their routes (`routes`) and
//! the fleet-wide traffic reads (`traffic`). A write on a
//! node that does not lead Raft is replayed at the leader with the caller's credentials
//! (`cluster::writes`).

mod acls;
pub mod auth;
mod breakers;
pub mod listener;
mod offset_resets;
mod quotas;
mod routes;
mod tokens;
mod traffic;
mod users;
mod zones;

use std::sync::Arc;

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{middleware, Extension, Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::api::{ApiError, ClusterStatus, IdentitySummary};
use crate::cluster::error::ClusterError;
use crate::cluster::fleet::Fleet;
use crate::cluster::peer_api::{Replay, Write};
use crate::cluster::status;
use crate::context::Context;
use auth::{AdminAuth, Caller};
use listener::{AdminPeer, TlsListener};

pub fn router(ctx: Arc<Context>) -> Router {
    let auth = Arc::new(AdminAuth::new(&ctx.admin_config()));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/identities", get(identities))
        .route("/api/v1/nodes/{id}/drain", post(drain))
        .route("/api/v1/nodes/{id}", delete(remove_node))
        .merge(users::routes())
        .merge(acls::routes())
        .merge(quotas::routes())
        .merge(breakers::routes())
        .merge(offset_resets::routes())
        .merge(tokens::routes(auth.clone()))
        .merge(traffic::routes())
        .merge(zones::routes())
        .merge(routes::routes())
        .layer(middleware::from_fn_with_state(
            (ctx.clone(), auth),
            auth::authenticate,
        ))
        .with_state(ctx)
}

/// Serves the admin API, over HTTPS with an `[admin.tls]` section, until `stop` resolves.
pub async fn serve(
    ctx: Arc<Context>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = router(ctx.clone()).into_make_service_with_connect_info::<AdminPeer>();
    match ctx.admin_tls.clone() {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls);
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await?
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await?
        }
    }
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

async fn drain(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<u64>,
) -> Response {
    let replay = caller.replay(Write::Post, &uri, None);
    answer(match fleet_of(&ctx) {
        Ok(fleet) => status::drain(fleet, id, &replay).await,
        Err(e) => Err(e),
    })
}

async fn remove_node(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<u64>,
) -> Response {
    let replay = caller.replay(Write::Delete, &uri, None);
    answer(match fleet_of(&ctx) {
        Ok(fleet) => status::remove(fleet, id, &replay).await,
        Err(e) => Err(e),
    })
}

/// The fleet, for writes: a standalone node has no control state to change.
fn fleet_of(ctx: &Context) -> Result<&Fleet, ClusterError> {
    ctx.fleet.as_deref().ok_or(ClusterError::Standalone)
}

/// The fleet, for writes to its security data: only once every member understands them.
fn security_fleet(ctx: &Context) -> Result<&Fleet, ClusterError> {
    fleet_at_level(ctx, crate::cluster::security::LEVEL)
}

/// The fleet, if it has committed feature `level` (what a resource's writes need).
fn fleet_at_level(ctx: &Context, level: u16) -> Result<&Fleet, ClusterError> {
    let fleet = fleet_of(ctx)?;
    crate::cluster::writes::require_level(fleet, level)?;
    Ok(fleet)
}

impl Caller {
    /// This request, to replay at the Raft leader if this node does not lead.
    fn replay(&self, method: Write, uri: &axum::http::Uri, body: Option<Vec<u8>>) -> Replay {
        Replay {
            method,
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_string(), |p| p.to_string()),
            body,
            authorization: self.authorization.clone(),
        }
    }
}

/// A body or query the extractors could not read, as a 400 with the reason.
fn invalid_input(rejection: &impl std::fmt::Display) -> ClusterError {
    ClusterError::Invalid(rejection.to_string())
}

/// A request body to replay at the leader, as the caller sent it (re-encoded).
fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
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
        ClusterError::Standalone | ClusterError::NodeAlive(_) | ClusterError::Conflict(_) => {
            StatusCode::CONFLICT
        }
        ClusterError::UnknownNode(_)
        | ClusterError::NotRaftMember(_)
        | ClusterError::NotFound(_) => StatusCode::NOT_FOUND,
        ClusterError::NoLeader
        | ClusterError::LeaderUnknown(_)
        | ClusterError::FeatureLevel { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ClusterError::Invalid(_) => StatusCode::BAD_REQUEST,
        ClusterError::LeaderRefused { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        ClusterError::LeaderUnreachable { .. } => StatusCode::BAD_GATEWAY,
        ClusterError::Raft(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::error::MemberLevel;

    #[test]
    fn a_fleet_below_the_needed_level_is_unavailable_and_names_the_older_builds() {
        let e = ClusterError::FeatureLevel {
            needed: 2,
            committed: 1,
            older: vec![
                MemberLevel {
                    node: 3,
                    level: Some(1),
                },
                MemberLevel {
                    node: 4,
                    level: None,
                },
            ],
        };
        assert_eq!(http_status(&e), StatusCode::SERVICE_UNAVAILABLE);
        let text = e.to_string();
        assert!(text.contains("node 3 (level 1)"), "{text}");
        assert!(text.contains("node 4 (down, build unknown)"), "{text}");
        assert!(text.contains("upgrade them first"), "{text}");
    }

    #[test]
    fn input_errors_have_their_statuses() {
        let cases = [
            (ClusterError::Invalid("x".into()), StatusCode::BAD_REQUEST),
            (ClusterError::NotFound("x".into()), StatusCode::NOT_FOUND),
            (ClusterError::Conflict("x".into()), StatusCode::CONFLICT),
            (ClusterError::Standalone, StatusCode::CONFLICT),
        ];
        for (e, status) in cases {
            assert_eq!(http_status(&e), status, "{e}");
        }
        let relayed = ClusterError::LeaderRefused {
            leader: "n1".into(),
            status: 401,
            error: "unknown or deleted token".into(),
        };
        assert_eq!(http_status(&relayed), StatusCode::UNAUTHORIZED);
    }
}
