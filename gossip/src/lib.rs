//! Fleet membership and liveness over chitchat gossip.
//!
//! The fleet needs to know who is in it, who is alive, and what each node offers, without
//! a coordinator that could itself be the node that died: the identity controller moves a
//! dead node's identities, degraded mode computes fallback owners from live members, and
//! Raft finds new nodes to add as learners. Gossip gives every node that view on its own,
//! converging in a few rounds, and chitchat's failure detector turns missing heartbeats
//! into liveness (see [`config`] for why its defaults are retuned here).
//!
//! This crate keeps chitchat's loosely typed world (string key-values per incarnation) at
//! the edge: callers see one typed [`Member`] per node id, and a `watch` channel that
//! carries a new snapshot on every change rather than something to poll.
//!
//! Start refuses a node id already live elsewhere and a seed from another cluster (the
//! `admission` module says how long it waits and why). chitchat has no API for the second: a peer of another
//! cluster answers with a `BadCluster` message that chitchat only logs. We see it because
//! we give chitchat a socket that notes what it receives. The message does not carry the
//! other cluster's id, so the error can name the seed but not its cluster, and only seeds
//! that answer within the start-up wait are checked; a mismatch that appears later (a seed
//! re-pointed at another fleet) is only in chitchat's warning log.
//!
//! # What gossip exposes
//!
//! Gossip runs over UDP with no authentication and no encryption. Anyone who can reach a
//! node's gossip address can read what every node publishes (its id, advertised host and
//! ports, zone, Raft and admin addresses, lifecycle, load and feature level) and can
//! publish states of its own under any node id. The cluster id only keeps honest fleets
//! apart; it is sent in clear and is no secret. So bind `cluster.gossip_listen` to a
//! private network, as the Raft listener. Within those limits the crate refuses what it
//! can tell is wrong: a seed of another cluster and a duplicate node id at start (see
//! `admission`), and, once the node has told it the Raft membership
//! ([`Gossip::set_raft_addrs`]), members whose Raft address is not the recorded one (see
//! `vetting`): an impostor claiming a member's id can neither make it look alive nor take
//! its place.

mod admission;
pub mod config;
mod error;
mod member;
mod node_state;
mod transport;
mod usage;
mod vetting;
mod watcher;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::transport::Transport;
use chitchat::{Chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, ProtocolVersion};
use tokio::sync::{watch, Mutex};
use tracing::{info, warn};

pub use config::GossipConfig;
pub use error::GossipError;
pub use member::Member;
pub use node_state::{DecodeError, Lifecycle, NodeState};
pub use vetting::{impostor_of, Impostor};

use transport::BoundTransport;
use vetting::Vetting;
use watcher::AbortOnDrop;

/// How many gossip rounds pass between reconciliations that catch forgotten dead nodes.
const RECONCILE_ROUNDS: u32 = 10;

/// This node's membership in the fleet's gossip; dropping it leaves the gossip.
pub struct Gossip {
    self_id: u64,
    gossip_addr: SocketAddr,
    generation: u64,
    handle: ChitchatHandle,
    chitchat: Arc<Mutex<Chitchat>>,
    members: Arc<watch::Sender<Vec<Member>>>,
    vetting: Arc<StdMutex<Vetting>>,
    _watcher: AbortOnDrop,
}

impl Gossip {
    /// Binds the gossip socket, publishes `state`, and joins the fleet through the seeds.
    pub async fn start(config: GossipConfig, state: NodeState) -> Result<Gossip, GossipError> {
        config.validate().map_err(GossipError::Config)?;
        let (transport, bound, peers) = bind(config.listen_addr).await?;
        let chitchat_config = chitchat_config(&config, state.node_id, bound);
        let id = chitchat_config.chitchat_id.clone();
        let handle = spawn(chitchat_config, &state, &transport, bound).await?;
        let chitchat = handle.chitchat();
        if let Err(error) = admission::admit(&chitchat, &peers, config.interval).await {
            stop(handle).await;
            return Err(error);
        }
        info!(node = ?id, cluster = %config.cluster_id, "joined gossip");
        Ok(Self::assemble(state.node_id, id, handle, &config).await)
    }

    async fn assemble(
        self_id: u64,
        id: ChitchatId,
        handle: ChitchatHandle,
        config: &GossipConfig,
    ) -> Gossip {
        let chitchat = handle.chitchat();
        let members = Arc::new(watch::Sender::new(Vec::new()));
        let vetting = Arc::new(StdMutex::new(Vetting::default()));
        watcher::refresh(&chitchat, &members, &vetting).await;
        let reconcile = config.interval * RECONCILE_ROUNDS;
        let task = watcher::spawn(
            chitchat.clone(),
            members.clone(),
            vetting.clone(),
            reconcile,
        );
        Gossip {
            self_id,
            gossip_addr: id.gossip_advertise_addr,
            generation: id.generation_id,
            handle,
            chitchat,
            members,
            vetting,
            _watcher: AbortOnDrop(task),
        }
    }

    pub fn self_id(&self) -> u64 {
        self.self_id
    }

    /// The address other nodes gossip with us on (the bound port if port 0 was asked for).
    pub fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// This incarnation's generation (start time in milliseconds since the Unix epoch).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Everyone known, ourselves included, sorted by node id, with liveness.
    pub fn members(&self) -> Vec<Member> {
        self.members.borrow().clone()
    }

    /// A receiver that sees a new snapshot on every membership, liveness or state change.
    pub fn watch(&self) -> watch::Receiver<Vec<Member>> {
        self.members.subscribe()
    }

    /// Publishes a new lifecycle stage.
    pub async fn set_lifecycle(&self, lifecycle: Lifecycle) {
        self.publish(node_state::LIFECYCLE, lifecycle.as_str())
            .await;
    }

    /// Publishes a new load (open client connections).
    ///
    /// Every change is gossiped to the whole fleet and wakes every watcher, so publish a
    /// sampled value (say once a second), not every connection opened or closed.
    pub async fn set_load(&self, load: u64) {
        self.publish(node_state::LOAD, &load.to_string()).await;
    }

    /// Publishes this node's usage report of `kind` (see [`usage`]); keep it small and
    /// publish it at most about once a second, since every change is gossiped.
    pub async fn publish_usage(&self, kind: &str, report: &str) {
        usage::publish(&mut *self.chitchat.lock().await, kind, report);
    }

    /// The latest usage report of `kind` of every other live member, by node id.
    pub async fn usage_reports(&self, kind: &str) -> Vec<(u64, String)> {
        let members = self.members();
        usage::reports(&*self.chitchat.lock().await, &members, kind)
    }

    async fn publish(&self, key: &str, value: &str) {
        self.chitchat.lock().await.self_node_state().set(key, value);
        self.refresh().await;
    }

    async fn refresh(&self) {
        watcher::refresh(&self.chitchat, &self.members, &self.vetting).await;
    }

    /// Tells gossip the Raft address the Raft membership records for each member; from
    /// then on a gossip incarnation of one of them that publishes another address is an
    /// impostor (see `vetting`): shown dead, never speaking for its node id.
    pub async fn set_raft_addrs(&self, recorded: BTreeMap<u64, String>) {
        let changed = self.lock_vetting().set_recorded(recorded);
        if changed {
            self.refresh().await;
        }
    }

    /// The gossip incarnations currently ignored as impostors.
    pub fn impostors(&self) -> Vec<Impostor> {
        self.lock_vetting().current()
    }

    /// How many impostor incarnations were seen since start (each counted once).
    pub fn impostors_detected(&self) -> u64 {
        self.lock_vetting().detected()
    }

    fn lock_vetting(&self) -> std::sync::MutexGuard<'_, Vetting> {
        self.vetting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Members currently seen live, ourselves included.
    pub fn live_count(&self) -> usize {
        self.members.borrow().iter().filter(|m| m.alive).count()
    }

    /// Members currently seen dead and not yet forgotten.
    pub fn dead_count(&self) -> usize {
        self.members.borrow().iter().filter(|m| !m.alive).count()
    }

    /// For each live peer, how long a silence would now make it dead, as the failure
    /// detector currently estimates it (it adapts to the observed heartbeat rate). Peers
    /// without enough heartbeats yet are left out.
    pub async fn detection_timeouts(&self) -> Vec<(u64, Duration)> {
        let chitchat = self.chitchat.lock().await;
        let mut timeouts: Vec<(u64, Duration)> = chitchat
            .live_nodes()
            .filter_map(|id| {
                let timeout = chitchat.failure_detection_timeout(id)?;
                Some((id.node_id.parse().ok()?, timeout))
            })
            .collect();
        timeouts.sort();
        timeouts
    }

    /// Leaves the gossip: stops answering and closes the UDP socket, so peers see us die.
    pub async fn shutdown(self) {
        let Gossip {
            handle, _watcher, ..
        } = self;
        drop(_watcher);
        stop(handle).await;
    }
}

async fn bind(
    addr: SocketAddr,
) -> Result<(BoundTransport, SocketAddr, transport::SharedPeerLog), GossipError> {
    BoundTransport::bind(addr)
        .await
        .map_err(|error| GossipError::Bind {
            addr,
            cause: error.root_cause().to_string(),
        })
}

async fn spawn(
    config: ChitchatConfig,
    state: &NodeState,
    transport: &dyn Transport,
    bound: SocketAddr,
) -> Result<ChitchatHandle, GossipError> {
    chitchat::spawn_chitchat(config, state.to_key_values(), transport)
        .await
        .map_err(|cause| GossipError::Start { addr: bound, cause })
}

async fn stop(handle: ChitchatHandle) {
    if let Err(error) = handle.shutdown().await {
        warn!(%error, "gossip server stopped with an error");
    }
}

fn chitchat_config(config: &GossipConfig, node_id: u64, bound: SocketAddr) -> ChitchatConfig {
    let mut advertise = config.advertise_addr;
    if advertise.port() == 0 {
        advertise.set_port(bound.port());
    }
    ChitchatConfig {
        chitchat_id: ChitchatId::new(node_id.to_string(), generation_now(), advertise),
        cluster_id: config.cluster_id.clone(),
        gossip_interval: config.interval,
        listen_addr: bound,
        seed_nodes: config.seeds.clone(),
        failure_detector_config: config.failure_detector(),
        // Tombstones of deleted keys; we never delete, so any period will do.
        marked_for_deletion_grace_period: config.dead_node_grace_period,
        catchup_callback: None,
        extra_liveness_predicate: None,
        // V1 compresses digests, which only pays off in fleets far larger than ours, and
        // would lock out any node on an older chitchat during a rolling upgrade.
        protocol_version: ProtocolVersion::V0,
    }
}

/// A generation that grows across restarts, so a restarted node replaces its old self.
fn generation_now() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_millis() as u64
}
