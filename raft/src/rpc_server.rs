//! Inbound Raft RPC on its own listener, so it can be bound to a private address apart
//! from the admin API and the client-facing ports.
//!
//! Bodies are bincode both ways. The response body is openraft's own `Result`, so an
//! error raised by the local Raft reaches the caller as a remote error it understands;
//! HTTP status codes are reserved for transport-level problems (bad body, wrong node).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::codec;
use crate::network::{APPEND_PATH, MEMBERS_PATH, SNAPSHOT_PATH, TARGET_HEADER, VOTE_PATH};
use crate::types::{Member, NodeId, Raft};
use std::collections::BTreeMap;

/// Largest accepted request body; snapshot chunks are configured well below this.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long shutdown waits for in-flight RPCs before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

struct Shared {
    raft: Raft,
    node_id: NodeId,
}

/// A running RPC server; stop it with [`RpcServer::stop`].
pub struct RpcServer {
    local_addr: SocketAddr,
    stop_tx: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RpcServer {
    /// Serves Raft RPC for `raft` on an already bound listener.
    pub fn spawn(listener: TcpListener, raft: Raft, node_id: NodeId) -> std::io::Result<RpcServer> {
        let local_addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = router(Arc::new(Shared { raft, node_id }));
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "raft rpc server stopped with an error");
            }
        });
        Ok(RpcServer {
            local_addr,
            stop_tx,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight RPCs finish for a short while, then closes every
    /// connection so peers cannot keep talking to a stopped node over pooled connections.
    pub async fn stop(self) {
        let _ = self.stop_tx.send(());
        let mut task = self.task;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .route(MEMBERS_PATH, get(members))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

async fn append(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match accept(&s, &headers, &body) {
        Ok(req) => reply(&s.raft.append_entries(req).await),
        Err(r) => r.into_response(),
    }
}

async fn vote(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match accept(&s, &headers, &body) {
        Ok(req) => reply(&s.raft.vote(req).await),
        Err(r) => r.into_response(),
    }
}

async fn snapshot(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match accept(&s, &headers, &body) {
        Ok(req) => reply(&s.raft.install_snapshot(req).await),
        Err(r) => r.into_response(),
    }
}

/// The group's members as this node knows them, for a node that looks at the fleet before
/// it takes part (see [`crate::network::peer_members`]). Read on the Raft listener rather
/// than the admin API, which may ask for credentials a starting node does not have; the
/// Raft listener is the fleet's private network already.
async fn members(State(s): State<Arc<Shared>>) -> Response {
    let metrics = s.raft.metrics().borrow().clone();
    let members: BTreeMap<NodeId, Member> = metrics
        .membership_config
        .membership()
        .nodes()
        .map(|(id, m)| (*id, m.clone()))
        .collect();
    reply(&members)
}

/// Checks the request is meant for this node and decodes it.
fn accept<T: DeserializeOwned>(
    s: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, (StatusCode, String)> {
    let target = headers
        .get(TARGET_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<NodeId>().ok());
    if target != Some(s.node_id) {
        let msg = format!("this is node {}, request was for {target:?}", s.node_id);
        return Err((StatusCode::MISDIRECTED_REQUEST, msg));
    }
    codec::decode(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

fn reply<T: Serialize>(result: &T) -> Response {
    match codec::encode(result) {
        Ok(bytes) => bytes.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
