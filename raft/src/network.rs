//! Outbound Raft RPC: how openraft reaches a peer's Raft listener.
//!
//! Plain HTTP/1 POSTs with bincode bodies to `/raft/*`, through one pooled reqwest
//! client. Failures are classified for openraft's retry logic: a refused or failed
//! connect is `Unreachable` (openraft backs off instead of hammering a dead peer), any
//! other transport failure is `Network` (retried at once), and an error returned by the
//! peer's Raft is a `RemoteError`. Each request names the node id it is meant for, so a
//! peer that now runs under another id at the same address is treated as unreachable
//! rather than fed someone else's log, and the node id it comes from (a node of the
//! previous release sends none; see `rpc_server`).
//!
//! With mutual TLS the URL's host is the peer's node name (`node-<id>`, see `tls`), so
//! rustls checks that the peer's certificate names the node we meant to reach; a resolver
//! of our own maps that name to the member's recorded Raft address.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::error::RaftError as StartError;
use crate::tls::node_name;
use crate::types::{Member, NodeId, TypeConfig};

/// Header carrying the node id a request is addressed to.
pub const TARGET_HEADER: &str = "x-flotilla-raft-target";
/// Header carrying the node id a request comes from.
pub const SENDER_HEADER: &str = "x-flotilla-raft-sender";
pub const APPEND_PATH: &str = "/raft/append";
pub const VOTE_PATH: &str = "/raft/vote";
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";
pub const MEMBERS_PATH: &str = "/raft/members";

/// Pause before retrying an unreachable peer.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(250);

type RpcResult<T, E> = Result<T, RPCError<NodeId, Member, E>>;

/// Creates one [`PeerClient`] per replication target; all share a connection pool.
#[derive(Clone)]
pub struct NetworkFactory {
    http: reqwest::Client,
    self_id: NodeId,
    /// Present with TLS: where each peer's node name resolves to.
    names: Option<Arc<PeerNames>>,
}

impl NetworkFactory {
    /// A client for node `self_id`'s outbound RPC: over TLS with `tls` (which must trust
    /// the fleet CA and present this node's certificate), plain HTTP otherwise.
    pub fn new(
        self_id: NodeId,
        connect_timeout: Duration,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<NetworkFactory, StartError> {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        let (builder, names) = match tls {
            Some(config) => {
                let names = Arc::new(PeerNames::default());
                let builder = builder
                    .tls_backend_preconfigured(config)
                    .https_only(true)
                    .dns_resolver(names.clone());
                (builder, Some(names))
            }
            // reqwest would otherwise build a TLS configuration from the process-wide
            // crypto provider (and panic without one), though plain HTTP never uses it.
            None => (builder.tls_backend_preconfigured(unused_tls()?), None),
        };
        Ok(NetworkFactory {
            http: builder.build()?,
            self_id,
            names,
        })
    }

    fn base_url(&self, target: NodeId, raft_addr: &str) -> String {
        let Some(names) = &self.names else {
            return format!("http://{raft_addr}");
        };
        let name = node_name(target);
        let port = raft_addr.rsplit_once(':').map_or("", |(_, port)| port);
        names.insert(&name, raft_addr);
        format!("https://{name}:{port}")
    }
}

/// What a peer's Raft listener says about the group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMembers {
    /// The members it knows; empty when it belongs to no group yet.
    Known(BTreeMap<NodeId, Member>),
    /// It runs a release without [`MEMBERS_PATH`]; ask its admin API instead.
    Unsupported,
    /// No answer in time.
    Unreachable,
}

impl NetworkFactory {
    /// Asks node `target`'s Raft listener at `raft_addr` which members its group holds.
    pub async fn members_of(
        &self,
        target: NodeId,
        raft_addr: &str,
        timeout: Duration,
    ) -> PeerMembers {
        let url = format!("{}{MEMBERS_PATH}", self.base_url(target, raft_addr));
        let sent = self.http.get(url).timeout(timeout).send().await;
        let Ok(resp) = sent else {
            return PeerMembers::Unreachable;
        };
        match resp.status() {
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => PeerMembers::Unsupported,
            status if status.is_success() => match resp.bytes().await {
                Ok(bytes) => {
                    codec::decode(&bytes).map_or(PeerMembers::Unreachable, PeerMembers::Known)
                }
                Err(_) => PeerMembers::Unreachable,
            },
            _ => PeerMembers::Unreachable,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        PeerClient {
            http: self.http.clone(),
            self_id: self.self_id,
            target,
            base: self.base_url(target, &node.raft_addr),
        }
    }
}

/// A TLS configuration on ring that trusts no one, for a client that speaks plain HTTP.
fn unused_tls() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(config)
}

/// Resolves `node-<id>` to the Raft address the membership records for that node.
#[derive(Debug, Default)]
struct PeerNames {
    addrs: RwLock<HashMap<String, String>>,
}

impl PeerNames {
    fn insert(&self, name: &str, raft_addr: &str) {
        let mut addrs = self.addrs.write().unwrap_or_else(|e| e.into_inner());
        addrs.insert(name.to_string(), raft_addr.to_string());
    }

    fn lookup(&self, name: &str) -> Option<String> {
        let addrs = self.addrs.read().unwrap_or_else(|e| e.into_inner());
        addrs.get(name).cloned()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no Raft address known for {0}")]
struct UnknownPeer(String);

impl Resolve for PeerNames {
    fn resolve(&self, name: Name) -> Resolving {
        let found = self.lookup(name.as_str());
        let name = name.as_str().to_string();
        Box::pin(async move {
            let raft_addr = found.ok_or(UnknownPeer(name))?;
            let addrs: Vec<_> = tokio::net::lookup_host(raft_addr).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

pub struct PeerClient {
    http: reqwest::Client,
    self_id: NodeId,
    target: NodeId,
    base: String,
}

fn transport_error<E: Error>(e: reqwest::Error) -> RPCError<NodeId, Member, E> {
    if e.is_connect() {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("peer answered {status}: {body}")]
struct PeerRejected {
    status: StatusCode,
    body: String,
}

async fn rejected<E: Error>(resp: reqwest::Response) -> RPCError<NodeId, Member, E> {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let err = PeerRejected { status, body };
    if status == StatusCode::MISDIRECTED_REQUEST {
        RPCError::Unreachable(Unreachable::new(&err))
    } else {
        RPCError::Network(NetworkError::new(&err))
    }
}

impl PeerClient {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let body = codec::encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(TARGET_HEADER, self.target.to_string())
            .header(SENDER_HEADER, self.self_id.to_string())
            .timeout(option.hard_ttl())
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        if !resp.status().is_success() {
            return Err(rejected(resp).await);
        }
        let bytes = resp.bytes().await.map_err(transport_error)?;
        let result: Result<Resp, E> =
            codec::decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.call(APPEND_PATH, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(SNAPSHOT_PATH, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(VOTE_PATH, &rpc, &option).await
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(UNREACHABLE_BACKOFF))
    }
}
