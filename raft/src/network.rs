//! Outbound Raft RPC: how openraft reaches a peer's Raft listener.
//!
//! Plain HTTP/1 POSTs with bincode bodies to `/raft/*`, through one pooled reqwest
//! client. Failures are classified for openraft's retry logic: a refused or failed
//! connect is `Unreachable` (openraft backs off instead of hammering a dead peer), any
//! other transport failure is `Network` (retried at once), and an error returned by the
//! peer's Raft is a `RemoteError`. Each request names the node id it is meant for, so a
//! peer that now runs under another id at the same address is treated as unreachable
//! rather than fed someone else's log.

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::types::{Member, NodeId, TypeConfig};

/// Header carrying the node id a request is addressed to.
pub const TARGET_HEADER: &str = "x-flotilla-raft-target";
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
}

impl NetworkFactory {
    pub fn new(connect_timeout: Duration) -> Result<NetworkFactory, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(NetworkFactory { http })
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        PeerClient {
            http: self.http.clone(),
            target,
            base: format!("http://{}", node.raft_addr),
        }
    }
}

pub struct PeerClient {
    http: reqwest::Client,
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

/// Asks the Raft listener at `raft_addr` which members its group holds.
pub async fn peer_members(raft_addr: &str, timeout: Duration) -> PeerMembers {
    let Ok(http) = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
    else {
        return PeerMembers::Unreachable;
    };
    let url = format!("http://{raft_addr}{MEMBERS_PATH}");
    let Ok(resp) = http.get(url).send().await else {
        return PeerMembers::Unreachable;
    };
    match resp.status() {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => PeerMembers::Unsupported,
        status if status.is_success() => match resp.bytes().await {
            Ok(bytes) => codec::decode(&bytes).map_or(PeerMembers::Unreachable, PeerMembers::Known),
            Err(_) => PeerMembers::Unreachable,
        },
        _ => PeerMembers::Unreachable,
    }
}
