//! The one handle the node holds on the Raft group: it owns storage, the RPC listener
//! and the openraft instance, and speaks in flotilla terms (commands, members, status)
//! so the rest of the node never touches openraft's generic types.
//!
//! Stop it with [`ControlPlane::shutdown`]; dropping it leaves Raft running in the
//! background until the runtime stops.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::InitializeError;
use openraft::{ChangeMembers, Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{ProposeError, RaftError};
use crate::log_store::{LogStore, StoreError};
use crate::network::NetworkFactory;
use crate::rpc_server::{RefusalCounts, Refusals, RpcServer};
use crate::state::{Command, CommandResult, ControlState};
use crate::state_machine::StateMachine;
use crate::status::RaftStatus;
use crate::tls::RaftTls;
use crate::types::{Member, NodeId, Raft};

/// Largest snapshot chunk sent in one RPC; well under the server's body limit.
const SNAPSHOT_CHUNK: u64 = 1024 * 1024;
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 2000;

#[derive(Debug, Clone)]
pub struct RaftConfig {
    pub node_id: NodeId,
    /// Where the Raft RPC listener binds (may be a private address).
    pub listen: SocketAddr,
    /// `host:port` peers use to reach `listen`.
    pub advertise_raft_addr: String,
    /// `host:port` of this node's admin API, published so writes can be forwarded.
    pub admin_addr: String,
    pub data_dir: PathBuf,
    pub heartbeat_interval: Duration,
    /// Randomized election timeout range (min, max).
    pub election_timeout: (Duration, Duration),
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log below the snapshot point (lets slow followers catch up
    /// from the log instead of a snapshot).
    pub keep_logs_after_snapshot: u64,
    /// Mutual TLS for Raft RPC, both ways; plain HTTP when unset.
    pub tls: Option<RaftTls>,
}

impl RaftConfig {
    /// A configuration with the default timings (100 ms heartbeat, 300-600 ms election
    /// timeout, snapshot every 1000 entries).
    pub fn new(
        node_id: NodeId,
        listen: SocketAddr,
        advertise_raft_addr: impl Into<String>,
        admin_addr: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> RaftConfig {
        RaftConfig {
            node_id,
            listen,
            advertise_raft_addr: advertise_raft_addr.into(),
            admin_addr: admin_addr.into(),
            data_dir: data_dir.into(),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
            snapshot_every: 1000,
            keep_logs_after_snapshot: 1000,
            tls: None,
        }
    }

    /// How this node appears in the Raft membership.
    pub fn member(&self) -> Member {
        Member::new(&self.advertise_raft_addr, &self.admin_addr)
    }

    fn openraft_config(&self) -> Result<Config, RaftError> {
        let ms = |d: Duration| d.as_millis() as u64;
        let config = Config {
            cluster_name: "flotilla".into(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout.0),
            election_timeout_max: ms(self.election_timeout.1),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_logs_after_snapshot,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK,
            // The last chunk's RPC includes installing (and fsyncing) the snapshot.
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            ..Config::default()
        };
        Ok(config.validate()?)
    }
}

pub struct ControlPlane {
    node_id: NodeId,
    raft: Raft,
    confirm_timeout: Duration,
    state_rx: watch::Receiver<Arc<ControlState>>,
    members_rx: watch::Receiver<BTreeMap<NodeId, Member>>,
    status_rx: watch::Receiver<RaftStatus>,
    status_task: JoinHandle<()>,
    server: RpcServer,
    refusals: Arc<Refusals>,
}

impl ControlPlane {
    /// Opens the data dir, binds the RPC listener and starts Raft. A node with an empty
    /// data dir stays a passive learner until [`initialize`](Self::initialize) is called
    /// or a leader adds it.
    pub async fn start(config: RaftConfig) -> Result<ControlPlane, RaftError> {
        let raft_config = Arc::new(config.openraft_config()?);
        let (log_store, state_machine) = open_storage(&config.data_dir, config.node_id).await?;
        let state_rx = state_machine.subscribe();
        let members_rx = state_machine.subscribe_members();
        let listener = bind(config.listen).await?;
        let client_tls = config.tls.as_ref().map(|t| t.client.clone());
        let network = NetworkFactory::new(config.node_id, config.election_timeout.0, client_tls)?;
        let raft = Raft::new(
            config.node_id,
            raft_config,
            network,
            log_store,
            state_machine,
        )
        .await?;
        let refusals = Arc::new(Refusals::default());
        let acceptor = config
            .tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.server.clone()));
        let server = RpcServer::spawn(
            listener,
            raft.clone(),
            config.node_id,
            acceptor,
            refusals.clone(),
        )
        .map_err(|source| bind_error(config.listen, source))?;
        let (status_rx, status_task) = watch_status(&raft);
        tracing::info!(node_id = config.node_id, rpc = %server.local_addr(), "raft started");
        Ok(ControlPlane {
            node_id: config.node_id,
            raft,
            confirm_timeout: config.election_timeout.1 * 2,
            state_rx,
            members_rx,
            status_rx,
            status_task,
            server,
            refusals,
        })
    }

    /// Bootstraps the group with `members` as voters. Safe to call on every initial
    /// member and on every start: it does nothing once this node has any log or vote.
    pub async fn initialize(&self, members: BTreeMap<NodeId, Member>) -> Result<(), RaftError> {
        if self.raft.is_initialized().await? {
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(openraft::error::RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(openraft::error::RaftError::APIError(InitializeError::NotInMembers(_))) => {
                Err(RaftError::NotInitialMember {
                    node_id: self.node_id,
                })
            }
            Err(openraft::error::RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// Commits `command` and returns what applying it did. Only the leader accepts
    /// commands; others answer `NotLeader` with the leader's addresses when known.
    /// A command of a feature level the fleet has not reached is refused here, before it
    /// could reach a member that cannot decode it.
    pub async fn propose(&self, command: Command) -> Result<CommandResult, ProposeError> {
        let committed = self.state_rx.borrow().feature_level;
        if command.feature_level() > committed {
            return Err(ProposeError::FeatureLevel {
                needed: command.feature_level(),
                committed,
            });
        }
        let response = self.raft.client_write(command).await?;
        Ok(response.data)
    }

    /// Adds a non-voting member that receives the log (or a snapshot), or updates the
    /// addresses of an existing member. Returns once the membership change is committed,
    /// without waiting for the learner to catch up; does nothing if already up to date.
    pub async fn add_learner(&self, id: NodeId, member: Member) -> Result<(), RaftError> {
        match self.status().members.get(&id) {
            Some(known) if *known == member => Ok(()),
            Some(_) => {
                let change = ChangeMembers::SetNodes(BTreeMap::from([(id, member)]));
                self.raft.change_membership(change, true).await?;
                Ok(())
            }
            None => {
                self.raft.add_learner(id, member, false).await?;
                Ok(())
            }
        }
    }

    /// Makes exactly `voters` the voting members; they must already be members
    /// (learners). Voters left out stay on as learners.
    pub async fn change_voters(&self, voters: BTreeSet<NodeId>) -> Result<(), RaftError> {
        let change = ChangeMembers::ReplaceAllVoters(voters);
        self.raft.change_membership(change, true).await?;
        Ok(())
    }

    /// Removes `id` from the group entirely, whether voter or learner.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), RaftError> {
        let status = self.status();
        let ids = BTreeSet::from([id]);
        let change = if status.voters.contains(&id) {
            ChangeMembers::RemoveVoters(ids)
        } else if status.learners.contains(&id) {
            ChangeMembers::RemoveNodes(ids)
        } else {
            return Ok(());
        };
        self.raft.change_membership(change, false).await?;
        Ok(())
    }

    /// The last applied control state; updated on every apply and snapshot install.
    pub fn state(&self) -> watch::Receiver<Arc<ControlState>> {
        self.state_rx.clone()
    }

    /// The members of the last committed membership, with the addresses it recorded;
    /// unlike [`status`](Self::status), never a change still being replicated.
    pub fn committed_members(&self) -> watch::Receiver<BTreeMap<NodeId, Member>> {
        self.members_rx.clone()
    }

    pub fn status(&self) -> RaftStatus {
        RaftStatus::from_metrics(&self.raft.metrics().borrow())
    }

    pub fn status_watch(&self) -> watch::Receiver<RaftStatus> {
        self.status_rx.clone()
    }

    /// True only if a quorum confirmed this node's leadership just now and the state
    /// is applied up to the read point: the basis for fencing a leader that was
    /// partitioned or paused.
    pub async fn is_leader_confirmed(&self) -> bool {
        let check = self.raft.ensure_linearizable();
        matches!(
            tokio::time::timeout(self.confirm_timeout, check).await,
            Ok(Ok(_))
        )
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Peers the RPC listener refused so far (always zero without TLS).
    pub fn rpc_refusals(&self) -> RefusalCounts {
        self.refusals.counts()
    }

    /// Address the RPC listener is bound to.
    pub fn local_rpc_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The underlying openraft handle, for metrics and waits not covered here.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Stops this node's Raft without consuming the handle (the RPC listener keeps
    /// answering, with errors, until the process ends). A leader stops heartbeating, so
    /// the others elect a new one once its lease has run out.
    pub async fn stop(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft core did not stop cleanly");
        }
    }

    /// Stops Raft first (so in-flight RPCs fail fast), then the RPC listener.
    pub async fn shutdown(self) {
        self.stop().await;
        self.server.stop().await;
        self.status_task.abort();
        tracing::info!(node_id = self.node_id, "raft stopped");
    }
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> RaftError {
    RaftError::Bind { addr, source }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RaftError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| bind_error(addr, source))
}

async fn open_storage(dir: &Path, node_id: NodeId) -> Result<(LogStore, StateMachine), RaftError> {
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|source| RaftError::DataDir {
        dir: dir.clone(),
        source,
    })?;
    let opened = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            Ok::<_, StoreError>((LogStore::open(&dir, node_id)?, StateMachine::open(&dir)?))
        })
        .await
        .map_err(StoreError::from)
        .and_then(|r| r)
    };
    opened.map_err(|e| match e {
        StoreError::ForeignNode { found, expected } => RaftError::ForeignDataDir {
            dir,
            found,
            expected,
        },
        source => RaftError::Storage { dir, source },
    })
}

/// Mirrors openraft's metrics into a [`RaftStatus`] watch that only fires on change.
fn watch_status(raft: &Raft) -> (watch::Receiver<RaftStatus>, JoinHandle<()>) {
    let mut metrics = raft.metrics();
    let initial = RaftStatus::from_metrics(&metrics.borrow_and_update());
    let (tx, rx) = watch::channel(initial);
    let task = tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let next = RaftStatus::from_metrics(&metrics.borrow_and_update());
            tx.send_if_modified(|current| {
                let changed = *current != next;
                if changed {
                    *current = next;
                }
                changed
            });
        }
    });
    (rx, task)
}
