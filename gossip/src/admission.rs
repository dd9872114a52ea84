//! The checks a node passes before it counts as started.
//!
//! Two mistakes are cheap to make and expensive to run with: starting a second node with
//! an id already in use (both would claim the same identities and Raft seat), and pointing
//! a node at another fleet's seeds (it would sit alone, believing it is the whole fleet).
//! Neither shows up without talking to the seeds, so start waits for them, bounded by a
//! few gossip rounds, since seeds may simply not be up yet: any subset of the fleet may be
//! a seed, and the first node of a fleet has nobody to ask.
//!
//! The wait ends early once every seed has answered and no other incarnation of our id is
//! in sight. "Answered" means chitchat has applied the seed's digest, not merely received
//! a message from it (the `transport` module says why and how we tell): only then would a
//! live node with our id that the seed knows be in sight. An incarnation of our id at
//! another address is a duplicate only if our failure detector sees it live; a dead one is
//! a previous run of this node (restarted on another port) and is ignored once the wait
//! is over. A node that reaches chitchat's liveness needs three heartbeat observations, two
//! or three rounds, which a starved machine may not manage within the wait; so an
//! incarnation whose heartbeat rises while we wait is taken for live too, since only a
//! running node raises its own heartbeat. A node restarted on another address within a
//! second or two of its previous run's death can be refused by this (gossip may bring
//! that run's last heartbeats late); its next start succeeds.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use chitchat::{Chitchat, ChitchatId, Heartbeat};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::GossipError;
use crate::transport::SharedPeerLog;

/// How many gossip rounds start waits for seeds at most.
pub(crate) const ADMISSION_ROUNDS: u32 = 10;

/// What one look at the cluster concluded.
enum Verdict {
    Refuse(GossipError),
    Admit,
    KeepWaiting,
}

/// Waits until the seeds have answered (or the deadline passes) and refuses a duplicate
/// node id or a seed of another cluster.
pub(crate) async fn admit(
    chitchat: &Mutex<Chitchat>,
    peers: &SharedPeerLog,
    interval: Duration,
) -> Result<(), GossipError> {
    let deadline = Instant::now() + interval * ADMISSION_ROUNDS;
    let mut first_heartbeats = HashMap::new();
    loop {
        let expired = Instant::now() >= deadline;
        let chitchat = chitchat.lock().await;
        let verdict = examine(&chitchat, peers, &mut first_heartbeats, expired);
        drop(chitchat);
        match verdict {
            Verdict::Refuse(error) => return Err(error),
            Verdict::Admit => return Ok(()),
            Verdict::KeepWaiting => tokio::time::sleep(interval / 2).await,
        }
    }
}

fn examine(
    chitchat: &Chitchat,
    peers: &SharedPeerLog,
    first_heartbeats: &mut HashMap<ChitchatId, Heartbeat>,
    expired: bool,
) -> Verdict {
    let seeds = other_seeds(chitchat);
    let peers = peers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(seed) = seeds.iter().find(|seed| peers.rejected_us(seed)) {
        return Verdict::Refuse(GossipError::ClusterMismatch {
            cluster_id: chitchat.cluster_id().to_string(),
            seed: *seed,
        });
    }
    let others = other_incarnations(chitchat);
    let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
    let mut beating = |id: &ChitchatId| {
        let Some(now) = chitchat.node_state(id).map(|state| state.heartbeat()) else {
            return false;
        };
        now > *first_heartbeats.entry(id.clone()).or_insert(now)
    };
    if let Some(duplicate) = others.iter().find(|id| live.contains(*id) || beating(id)) {
        return Verdict::Refuse(GossipError::DuplicateNodeId {
            node_id: chitchat.self_chitchat_id().node_id.to_string(),
            other_addr: duplicate.gossip_advertise_addr,
        });
    }
    let all_answered = seeds.iter().all(|seed| peers.has_answered(seed));
    if expired || (all_answered && others.is_empty()) {
        log_outcome(&seeds, &peers, &others, expired);
        return Verdict::Admit;
    }
    Verdict::KeepWaiting
}

/// Seed addresses other than our own.
fn other_seeds(chitchat: &Chitchat) -> Vec<SocketAddr> {
    let own = chitchat.self_chitchat_id().gossip_advertise_addr;
    let mut seeds: Vec<SocketAddr> = chitchat
        .seed_nodes()
        .into_iter()
        .filter(|s| *s != own)
        .collect();
    seeds.sort();
    seeds
}

/// Other chitchat nodes with our node id at another gossip address.
fn other_incarnations(chitchat: &Chitchat) -> Vec<ChitchatId> {
    let me = chitchat.self_chitchat_id();
    chitchat
        .node_states()
        .keys()
        .filter(|id| {
            id.node_id == me.node_id && id.gossip_advertise_addr != me.gossip_advertise_addr
        })
        .cloned()
        .collect()
}

fn log_outcome(
    seeds: &[SocketAddr],
    peers: &crate::transport::PeerLog,
    others: &[ChitchatId],
    expired: bool,
) {
    let silent: Vec<&SocketAddr> = seeds.iter().filter(|s| !peers.has_answered(s)).collect();
    if !silent.is_empty() {
        tracing::warn!(
            ?silent,
            "gossip seeds did not answer in time; starting without them"
        );
    }
    if !others.is_empty() {
        tracing::info!(
            ?others,
            "ignoring dead earlier incarnations of this node id"
        );
    }
    if !expired {
        tracing::debug!(?seeds, "every gossip seed answered");
    }
}
