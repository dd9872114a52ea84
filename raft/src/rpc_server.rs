//! Inbound Raft RPC on its own listener, so it can be bound to a private address apart
//! from the admin API and the client-facing ports.
//!
//! Bodies are bincode both ways. The response body is openraft's own `Result`, so an
//! error raised by the local Raft reaches the caller as a remote error it understands;
//! HTTP status codes are reserved for transport-level problems (bad body, wrong node).
//!
//! With mutual TLS (see `tls`) the listener runs its own accept loop over tokio-rustls
//! and hyper instead of `axum::serve`: a refused handshake is logged with the peer's
//! address and counted, and each request carries the peer's certificate so a handler can
//! check that it names the node the request claims to come from. A request names its
//! sender in its body (the vote openraft attaches: a leader's or a candidate's); the
//! sender header is only cross-checked, since a node of the previous release sends none.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::codec;
use crate::network::{
    APPEND_PATH, MEMBERS_PATH, SENDER_HEADER, SNAPSHOT_PATH, TARGET_HEADER, VOTE_PATH,
};
use crate::tls::{names_node, node_name};
use crate::types::{Member, NodeId, Raft, TypeConfig};

/// Largest accepted request body; snapshot chunks are configured well below this.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long shutdown waits for in-flight RPCs before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A peer that has not finished its TLS handshake this long after connecting is cut.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Peers refused by the TLS listener, for the node's metrics.
#[derive(Debug, Default)]
pub struct Refusals {
    handshake: AtomicU64,
    identity: AtomicU64,
}

/// Counts of [`Refusals`] so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    /// Connections whose TLS handshake failed: no certificate, one the fleet CA did not
    /// sign, an expired one, or no TLS at all.
    pub handshake: u64,
    /// Requests whose sender's certificate does not name the node they claim to come from.
    pub identity: u64,
}

impl Refusals {
    pub fn counts(&self) -> RefusalCounts {
        RefusalCounts {
            handshake: self.handshake.load(Ordering::Relaxed),
            identity: self.identity.load(Ordering::Relaxed),
        }
    }

    fn handshake_failed(&self, peer: SocketAddr, reason: &dyn std::fmt::Display) {
        self.handshake.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%peer, "refused a Raft RPC connection: TLS handshake failed: {reason}");
    }
}

/// The certificate a TLS peer presented, attached to each of its requests.
#[derive(Clone)]
struct Peer {
    addr: SocketAddr,
    cert: CertificateDer<'static>,
}

struct Shared {
    raft: Raft,
    node_id: NodeId,
    /// Set with TLS: every request's sender must be named by its peer's certificate.
    check_sender: bool,
    refusals: Arc<Refusals>,
}

/// A running RPC server; stop it with [`RpcServer::stop`].
pub struct RpcServer {
    local_addr: SocketAddr,
    stop_tx: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RpcServer {
    /// Serves Raft RPC for `raft` on an already bound listener: over mutual TLS when
    /// `tls` is given (counting refused peers in `refusals`), plain HTTP otherwise.
    pub fn spawn(
        listener: TcpListener,
        raft: Raft,
        node_id: NodeId,
        tls: Option<TlsAcceptor>,
        refusals: Arc<Refusals>,
    ) -> std::io::Result<RpcServer> {
        let local_addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let shared = Shared {
            raft,
            node_id,
            check_sender: tls.is_some(),
            refusals: refusals.clone(),
        };
        let app = router(Arc::new(shared));
        let task = match tls {
            Some(acceptor) => tokio::spawn(serve_tls(listener, app, acceptor, refusals, stop_rx)),
            None => tokio::spawn(serve_plain(listener, app, stop_rx)),
        };
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

async fn serve_plain(listener: TcpListener, app: Router, stop_rx: oneshot::Receiver<()>) {
    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    if let Err(e) = serve.await {
        tracing::warn!(error = %e, "raft rpc server stopped with an error");
    }
}

/// Accepts until told to stop, then lets open connections finish their requests. The
/// connections live in a `JoinSet` owned by this task, so aborting the task (after the
/// drain timeout) closes them all.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    acceptor: TlsAcceptor,
    refusals: Arc<Refusals>,
    mut stop_rx: oneshot::Receiver<()>,
) {
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop_rx => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = serve_tls_connection(
                        stream, peer, acceptor.clone(), app.clone(), refusals.clone(), closing.clone(),
                    );
                    connections.spawn(conn);
                }
                Err(e) => {
                    // Out of file descriptors, most likely; the next accept may succeed.
                    tracing::warn!(error = %e, "raft rpc accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
}

async fn serve_tls_connection(
    stream: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    app: Router,
    refusals: Arc<Refusals>,
    mut closing: watch::Receiver<bool>,
) {
    let Some((tls, peer)) = handshake(stream, addr, &acceptor, &refusals).await else {
        return;
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        app.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = closing.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%addr, error = %e, "raft rpc connection ended with an error");
    }
}

/// The TLS handshake, and the certificate the peer presented; `None` (logged and counted)
/// if the peer is refused.
async fn handshake(
    stream: TcpStream,
    addr: SocketAddr,
    acceptor: &TlsAcceptor,
    refusals: &Refusals,
) -> Option<(TlsStream<TcpStream>, Peer)> {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            refusals.handshake_failed(addr, &e);
            return None;
        }
        Err(_) => {
            refusals.handshake_failed(addr, &"timed out");
            return None;
        }
    };
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let Some(cert) = leaf.map(|c| c.clone().into_owned()) else {
        refusals.handshake_failed(addr, &"no client certificate");
        return None;
    };
    Some((tls, Peer { addr, cert }))
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

type PeerExt = Option<Extension<Peer>>;

async fn append(
    State(s): State<Arc<Shared>>,
    peer: PeerExt,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept::<AppendEntriesRequest<TypeConfig>>(&s, peer, &headers, &body) {
        Ok(req) => reply(&s.raft.append_entries(req).await),
        Err(r) => r.into_response(),
    }
}

async fn vote(
    State(s): State<Arc<Shared>>,
    peer: PeerExt,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept::<VoteRequest<NodeId>>(&s, peer, &headers, &body) {
        Ok(req) => reply(&s.raft.vote(req).await),
        Err(r) => r.into_response(),
    }
}

async fn snapshot(
    State(s): State<Arc<Shared>>,
    peer: PeerExt,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept::<InstallSnapshotRequest<TypeConfig>>(&s, peer, &headers, &body) {
        Ok(req) => reply(&s.raft.install_snapshot(req).await),
        Err(r) => r.into_response(),
    }
}

/// The node a Raft request comes from, as its body says: the leader for appends and
/// snapshots, the candidate for votes.
trait Sent {
    fn sender(&self) -> Option<NodeId>;
}

impl Sent for AppendEntriesRequest<TypeConfig> {
    fn sender(&self) -> Option<NodeId> {
        self.vote.leader_id().voted_for()
    }
}

impl Sent for VoteRequest<NodeId> {
    fn sender(&self) -> Option<NodeId> {
        self.vote.leader_id().voted_for()
    }
}

impl Sent for InstallSnapshotRequest<TypeConfig> {
    fn sender(&self) -> Option<NodeId> {
        self.vote.leader_id().voted_for()
    }
}

type Refused = (StatusCode, String);

/// The group's members as this node knows them, for a node that looks at the fleet before
/// it takes part (see [`crate::network::NetworkFactory::members_of`]). Read on the Raft
/// listener rather than the admin API, which may ask for credentials a starting node does
/// not have; the Raft listener is the fleet's private network (and with TLS, only the
/// fleet's certificates reach it).
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

/// Checks the request is meant for this node, decodes it, and with TLS checks that the
/// peer's certificate names its sender.
fn accept<T: DeserializeOwned + Sent>(
    s: &Shared,
    peer: PeerExt,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Refused> {
    let target = header_id(headers, TARGET_HEADER);
    if target != Some(s.node_id) {
        let msg = format!("this is node {}, request was for {target:?}", s.node_id);
        return Err((StatusCode::MISDIRECTED_REQUEST, msg));
    }
    let req: T = codec::decode(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    if s.check_sender {
        check_sender(s, peer.map(|Extension(p)| p), headers, req.sender())?;
    }
    Ok(req)
}

fn header_id(headers: &HeaderMap, name: &str) -> Option<NodeId> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<NodeId>().ok())
}

fn check_sender(
    s: &Shared,
    peer: Option<Peer>,
    headers: &HeaderMap,
    claimed: Option<NodeId>,
) -> Result<(), Refused> {
    let forbidden = |msg: String| Err((StatusCode::FORBIDDEN, msg));
    let Some(peer) = peer else {
        return forbidden("no client certificate".into());
    };
    let sender = match (header_id(headers, SENDER_HEADER), claimed) {
        (Some(h), Some(c)) if h != c => {
            return forbidden(format!("sender header says node {h}, the request node {c}"))
        }
        (h, c) => c.or(h),
    };
    let Some(sender) = sender else {
        return forbidden("the request names no sender".into());
    };
    if names_node(&peer.cert, sender) {
        return Ok(());
    }
    s.refusals.identity.fetch_add(1, Ordering::Relaxed);
    let name = node_name(sender);
    tracing::warn!(peer = %peer.addr, claimed = sender, "refused a Raft RPC request: the peer's certificate does not name {name}");
    forbidden(format!("your certificate does not name {name}"))
}

fn reply<T: Serialize>(result: &T) -> Response {
    match codec::encode(result) {
        Ok(bytes) => bytes.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
