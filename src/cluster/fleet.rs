//! This node as a member of the fleet: starts gossip and Raft, and runs the tasks that
//! connect them to the data path.
//!
//! - bootstrap: a brand-new cluster's `initial_members` initialize the Raft group once,
//!   as soon as gossip has shown each of them (their Raft addresses come from gossip);
//! - routes: every change of the committed state or of the gossip view re-installs what
//!   this node advertises (see `routes`);
//! - controller: on the Raft leader only, commits broker changes and identity owners, and
//!   grows the Raft group from gossip (learners, then voters up to `cluster.voters`);
//! - lifecycle: publishes serving/draining (or backend-unreachable, see `backend_reach`)
//!   and the connection count in gossip;
//! - stopping: a node on its way out publishes draining, waits until the controller has
//!   committed other owners for its identities, and leaves Raft;
//! - vetting: gossip is told the Raft addresses the committed membership records, so a
//!   gossip member claiming a Raft member's id from elsewhere counts for nothing (see
//!   `flotilla_gossip`'s vetting).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use flotilla_config::{ClusterConfig, Config};
use flotilla_gossip::{Gossip, GossipConfig, Lifecycle, Member, NodeState};
use flotilla_raft::{
    Command, CommandResult, ControlPlane, ControlState, Member as RaftMember, ProposeError,
    RaftConfig, RaftStatus, RaftTls,
};

use super::backend_reach::{self, ReachWatch};
use super::controller::{self, View};
use super::error::ClusterError;
use super::peer_api::PeerApi;
use super::routes;
use super::seat::{self, Seat};
use crate::backend::Clusters;
use crate::directory::{Broker, Directory};
use crate::metrics::Metrics;

/// How often the leader's controller looks again even when nothing has changed, so that
/// deadlines (a node dead for `takeover_after`) are noticed.
const CONTROLLER_TICK: Duration = Duration::from_millis(200);

pub struct Fleet {
    pub gossip: Gossip,
    pub raft: ControlPlane,
    pub config: ClusterConfig,
    /// Other nodes' admin APIs: writes forwarded to the leader, status reads.
    pub peers: PeerApi,
    node_id: u64,
    seat: Seat,
    /// True while this node has reached no broker for longer than `takeover_after`. When
    /// it turns true every client connection closes (see `connection`), since its requests
    /// are stuck on a broker connection that will not answer, and the client should go to
    /// the new owner.
    cut_off: tokio::sync::watch::Sender<bool>,
    /// Set once the node is stopping: it publishes draining from then on.
    stopping: AtomicBool,
}

impl Fleet {
    /// Joins gossip and starts Raft (its RPC over mutual TLS with `raft_tls`); errors name
    /// what could not be bound or opened.
    pub async fn start(config: &Config, raft_tls: Option<RaftTls>) -> anyhow::Result<Arc<Fleet>> {
        let cluster = config.cluster.clone().context("no [cluster] table")?;
        let node = &config.node;
        let incarnation =
            flotilla_raft::data_incarnation(&cluster.data_dir).with_context(|| {
                format!(
                    "cannot open cluster.data_dir {}",
                    cluster.data_dir.display()
                )
            })?;
        let state = NodeState {
            node_id: node.id,
            advertised_host: node.advertised_host.clone(),
            bootstrap_port: node.bootstrap_port,
            identity_port_base: node.identity_port_base,
            zone: cluster.zone.clone(),
            raft_addr: cluster.raft_listen.to_string(),
            admin_addr: node.admin_listen.to_string(),
            incarnation: incarnation.clone(),
            lifecycle: Lifecycle::Joining,
            load: 0,
            feature_level: flotilla_raft::FEATURE_LEVEL,
            tls_identity_port_base: config.tls.as_ref().map(|t| t.identity_port_base),
        };
        let mut gossip_config = GossipConfig::new(
            cluster.id.clone(),
            cluster.gossip_listen,
            cluster.seeds.clone(),
        );
        gossip_config.interval = cluster.gossip_interval;
        let gossip = Gossip::start(gossip_config, state)
            .await
            .context("cannot join the fleet's gossip")?;
        let has_seeds = !cluster.seeds.is_empty();
        let peers = PeerApi::new(config)?;
        let raft_client = raft_tls.as_ref().map(|tls| tls.client.clone());
        let seat = seat::find(
            &gossip,
            &peers,
            raft_client,
            has_seeds,
            node.id,
            &incarnation,
        )
        .await?;
        let mut raft_config = RaftConfig::new(
            node.id,
            cluster.raft_listen,
            cluster.raft_listen.to_string(),
            node.admin_listen.to_string(),
            cluster.data_dir.clone(),
        );
        raft_config.tls = raft_tls;
        let raft = ControlPlane::start(raft_config)
            .await
            .context("cannot start Raft")?;
        Ok(Arc::new(Fleet {
            gossip,
            raft,
            config: cluster,
            peers,
            node_id: node.id,
            seat,
            cut_off: tokio::sync::watch::Sender::new(false),
            stopping: AtomicBool::new(false),
        }))
    }

    /// Runs every fleet task for the life of the node, keeping `directory` and `control`
    /// current with what the fleet committed.
    pub async fn run(
        self: Arc<Self>,
        directory: Arc<Directory>,
        control: Arc<ArcSwap<ControlState>>,
        metrics: Arc<Metrics>,
        clusters: Arc<Clusters>,
    ) {
        tokio::join!(
            self.vet_gossip(),
            self.bootstrap(),
            self.keep_routes(&directory, &control),
            self.control(&directory, &metrics, &clusters),
            self.watch_backend(&directory, &metrics),
            self.publish_lifecycle(&directory, &metrics),
            self.publish_metrics(&metrics),
        );
    }

    /// True while the Raft group cannot commit as far as this node can tell: no leader it
    /// sees alive, or fewer live voters than a majority. The second case matters because
    /// an openraft 0.9 leader keeps its role after losing its quorum.
    pub fn degraded(&self) -> bool {
        let status = self.raft.status();
        let members = self.gossip.members();
        let alive = |id: &u64| members.iter().any(|m| m.state.node_id == *id && m.alive);
        let live_voters = status.voters.iter().filter(|v| alive(v)).count();
        !status.leader.is_some_and(|l| alive(&l)) || live_voters <= status.voters.len() / 2
    }

    /// Waits until this node has heard from the rest of the fleet again: used after a
    /// stall, before the node forwards anything.
    pub async fn reconfirm(&self) {
        let mut members = self.gossip.watch();
        let heard = |m: &Vec<Member>| {
            let others: Vec<&Member> = m.iter().filter(|m| !m.is_self).collect();
            others.is_empty() || others.iter().any(|m| m.alive)
        };
        let _ = members.wait_for(heard).await;
    }

    /// Publishes that this node is on its way out: the controller moves its identities
    /// away, and other nodes stop advertising it at once.
    pub async fn begin_stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.gossip.set_lifecycle(Lifecycle::Draining).await;
    }

    /// Waits until the committed state gives none of this node's identities to it any
    /// more, for at most `timeout`. Fails at once if no other node could take them.
    pub async fn hand_off(&self, timeout: Duration) -> Result<(), String> {
        let mut state = self.raft.state();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let owned = state.borrow_and_update().owned_by(self.node_id).count();
            if owned == 0 {
                return Ok(());
            }
            if routes::live_nodes(&self.gossip.members()) == [self.node_id] {
                return Err(format!(
                    "no other node serves, so its {owned} identities stay with it"
                ));
            }
            let changed = tokio::time::timeout_at(deadline, state.changed());
            match changed.await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err("Raft stopped".into()),
                Err(_) => {
                    return Err(format!(
                        "{owned} identities still committed to it after {timeout:?}"
                    ))
                }
            }
        }
    }

    /// Leaves the Raft group's work to the others: stops this node's Raft, so that if it
    /// led, the others elect a leader as soon as its lease runs out.
    pub async fn leave(&self) {
        self.raft.stop().await;
    }

    /// Marks a node drained (or not) through the Raft leader.
    pub async fn set_drained(&self, node: u64, drained: bool) -> Result<(), ProposeError> {
        self.raft
            .propose(Command::SetDrained { node, drained })
            .await
            .map(|_| ())
    }

    /// Takes node `id` out of the Raft group and forgets that it was drained, so a new
    /// node with that id starts afresh. Its identities were taken over when it died.
    pub async fn remove_member(&self, id: u64) -> Result<(), ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::Raft(e.to_string());
        self.raft.remove_node(id).await.map_err(|e| failed(&e))?;
        tracing::info!(node = id, "removed from the Raft group");
        if self.raft.state().borrow().drained.contains(&id) {
            self.set_drained(id, false).await.map_err(|e| failed(&e))?;
        }
        Ok(())
    }

    pub fn status(&self) -> RaftStatus {
        self.raft.status()
    }

    /// Keeps gossip told of the Raft addresses the committed membership records.
    async fn vet_gossip(&self) {
        let mut committed = self.raft.committed_members();
        loop {
            let recorded = committed
                .borrow_and_update()
                .iter()
                .map(|(id, m)| (*id, m.raft_addr.clone()))
                .collect();
            self.gossip.set_raft_addrs(recorded).await;
            if committed.changed().await.is_err() {
                return;
            }
        }
    }

    async fn bootstrap(&self) {
        let initial: BTreeSet<u64> = self.config.initial_members.iter().copied().collect();
        if !initial.contains(&self.node_id) || self.seat == Seat::ExistingGroup {
            return;
        }
        let mut members = self.gossip.watch();
        let all_seen = |m: &Vec<Member>| {
            initial
                .iter()
                .all(|id| m.iter().any(|m| m.state.node_id == *id))
        };
        let seen: Vec<Member> = match members.wait_for(all_seen).await {
            Ok(seen) => seen.clone(),
            Err(_) => return,
        };
        let raft_members: BTreeMap<u64, RaftMember> = seen
            .iter()
            .filter(|m| initial.contains(&m.state.node_id))
            .map(|m| (m.state.node_id, raft_member(m)))
            .collect();
        if let Err(e) = self.raft.initialize(raft_members).await {
            tracing::error!("initializing the Raft group failed: {e}");
        }
    }

    async fn keep_routes(&self, directory: &Directory, control: &ArcSwap<ControlState>) {
        let mut state = self.raft.state();
        let mut members = self.gossip.watch();
        loop {
            let committed = state.borrow_and_update().clone();
            let installed = routes::routes(&committed, &members.borrow_and_update());
            directory.install_routes(installed);
            control.store(committed);
            tokio::select! {
                r = state.changed() => if r.is_err() { return },
                r = members.changed() => if r.is_err() { return },
            }
        }
    }

    async fn control(&self, directory: &Directory, metrics: &Metrics, clusters: &Clusters) {
        let backend = directory.watch_observed();
        let mut dead_since: HashMap<u64, Instant> = HashMap::new();
        let mut interval = tokio::time::interval(CONTROLLER_TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let members = self.gossip.members();
            track_deaths(&mut dead_since, &members);
            if self.raft.status().leader != Some(self.node_id) {
                continue;
            }
            self.grow_raft_group(&members).await;
            let state: Arc<ControlState> = self.raft.state().borrow().clone();
            let dead_for = dead_since.iter().map(|(n, t)| (*n, t.elapsed())).collect();
            let brokers = backend.borrow().clone();
            let other_backends: BTreeMap<String, Vec<Broker>> = clusters
                .others()
                .map(|c| (c.name.clone(), c.watch_brokers().borrow().clone()))
                .collect();
            let raft_members: BTreeSet<u64> = self.raft.status().members.into_keys().collect();
            let view = View {
                state: &state,
                members: &members,
                raft_members: &raft_members,
                dead_for: &dead_for,
                takeover_after: self.config.takeover_after,
                backend: &brokers,
                other_backends: &other_backends,
            };
            if let Some(command) = controller::next_command(&view) {
                let taken_over = taken_from_dead(&command, &state, &members);
                if self.commit(command).await {
                    metrics.fleet.takeovers.inc_by(taken_over);
                }
            }
        }
    }

    /// Proposes `command`; true when it was committed and applied.
    async fn commit(&self, command: Command) -> bool {
        let label = command_label(&command);
        match self.raft.propose(command).await {
            Ok(CommandResult::Ok) => {
                tracing::info!("committed {label}");
                true
            }
            Ok(CommandResult::StaleEpoch { current }) => {
                tracing::debug!(current, "{label} raced another assignment; recomputing");
                false
            }
            Ok(CommandResult::Refused { needed, committed }) => {
                tracing::warn!("{label} needs feature level {needed}; the fleet is at {committed}");
                false
            }
            Ok(CommandResult::Conflict { reason }) => {
                tracing::warn!("{label} was refused: {reason}");
                false
            }
            Err(e) => {
                tracing::warn!("could not commit {label}: {e}");
                false
            }
        }
    }

    async fn publish_metrics(&self, metrics: &Metrics) {
        let fleet = &metrics.fleet;
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            interval.tick().await;
            let status = self.raft.status();
            fleet
                .raft_is_leader
                .set(i64::from(status.leader == Some(self.node_id)));
            fleet.raft_term.set(status.term as i64);
            fleet
                .raft_last_applied
                .set(status.last_applied.unwrap_or(0) as i64);
            fleet.raft_voters.set(status.voters.len() as i64);
            fleet.gossip_live_nodes.set(self.gossip.live_count() as i64);
            fleet.gossip_dead_nodes.set(self.gossip.dead_count() as i64);
            let state = self.raft.state().borrow().clone();
            fleet.assignment_epoch.set(state.assignment_epoch as i64);
            let owned = state
                .identities
                .values()
                .filter(|i| i.owner == Some(self.node_id));
            fleet.identities_owned.set(owned.count() as i64);
            fleet.degraded.set(i64::from(self.degraded()));
            fleet
                .gossip_impostors
                .set(self.gossip.impostors().len() as i64);
            catch_up(
                &fleet.gossip_impostors_detected,
                self.gossip.impostors_detected(),
            );
            let refusals = self.raft.rpc_refusals();
            let refused = &fleet.raft_rpc_tls_refusals;
            catch_up(
                &refused.with_label_values(&["handshake"]),
                refusals.handshake,
            );
            catch_up(&refused.with_label_values(&["identity"]), refusals.identity);
        }
    }

    /// Adds live nodes the Raft group does not know as learners, and promotes live
    /// learners while there are fewer voters than configured.
    async fn grow_raft_group(&self, members: &[Member]) {
        let status = self.raft.status();
        for m in members
            .iter()
            .filter(|m| m.alive && !status.members.contains_key(&m.state.node_id))
        {
            match self.raft.add_learner(m.state.node_id, raft_member(m)).await {
                Ok(()) => tracing::info!(node = m.state.node_id, "added to Raft as a learner"),
                Err(e) => tracing::warn!(node = m.state.node_id, "cannot add learner: {e}"),
            }
        }
        let alive = |id: &u64| members.iter().any(|m| m.state.node_id == *id && m.alive);
        if status.voters.len() < self.config.voters {
            if let Some(learner) = status.learners.iter().find(|l| alive(l)) {
                let mut voters = status.voters.clone();
                voters.insert(*learner);
                match self.raft.change_voters(voters).await {
                    Ok(()) => tracing::info!(node = learner, "promoted to Raft voter"),
                    Err(e) => tracing::warn!(node = learner, "cannot promote to voter: {e}"),
                }
            }
        }
    }

    /// Whether this node reaches no broker (see `backend_reach`), now and as it changes.
    pub fn watch_cut_off(&self) -> tokio::sync::watch::Receiver<bool> {
        self.cut_off.subscribe()
    }

    /// Probes the brokers and keeps `cut_off` current (see `backend_reach`).
    async fn watch_backend(&self, directory: &Directory, metrics: &Metrics) {
        let mut interval = tokio::time::interval(backend_reach::PROBE_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = ReachWatch::new(self.config.takeover_after);
        loop {
            interval.tick().await;
            let upstreams = directory.upstreams();
            if upstreams.is_empty() {
                continue; // no broker known yet: the node is still joining
            }
            let reached =
                crate::backend::reaches_any(&upstreams, backend_reach::PROBE_TIMEOUT).await;
            let cut_off = watch.observe(reached, Instant::now());
            metrics.fleet.backend_cut_off.set(i64::from(cut_off));
            if self.cut_off.send_replace(cut_off) != cut_off {
                if cut_off {
                    tracing::warn!(
                        "no broker reachable for {:?}; giving up this node's identities \
                         and closing its client connections",
                        self.config.takeover_after
                    );
                } else {
                    tracing::info!("a broker is reachable again; serving identities");
                }
            }
        }
    }

    async fn publish_lifecycle(&self, directory: &Directory, metrics: &Metrics) {
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        let mut published = Lifecycle::Joining;
        loop {
            interval.tick().await;
            let drained = self.raft.state().borrow().drained.contains(&self.node_id)
                || self.stopping.load(Ordering::Acquire);
            let backend_known = !directory.watch_observed().borrow().is_empty();
            let cut_off = *self.cut_off.borrow();
            let lifecycle = match (drained, backend_known, cut_off) {
                (true, _, _) => Lifecycle::Draining,
                (false, false, _) => Lifecycle::Joining,
                (false, true, true) => Lifecycle::BackendUnreachable,
                (false, true, false) => Lifecycle::Serving,
            };
            if lifecycle != published {
                self.gossip.set_lifecycle(lifecycle).await;
                published = lifecycle;
            }
            self.gossip.set_load(metrics.active_connections()).await;
        }
    }
}

/// Raises `counter` to `total`, a count kept elsewhere that only grows.
fn catch_up(counter: &prometheus::IntCounter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// How a member that gossip shows is reached over Raft, and which data directory it holds.
fn raft_member(m: &Member) -> RaftMember {
    RaftMember::new(&m.state.raft_addr, &m.state.admin_addr).with_incarnation(&m.state.incarnation)
}

/// How many identities `command` moves away from owners gossip sees dead.
fn taken_from_dead(command: &Command, state: &ControlState, members: &[Member]) -> u64 {
    let Command::Assign { owners, .. } = command else {
        return 0;
    };
    let dead = |node: u64| members.iter().any(|m| m.state.node_id == node && !m.alive);
    owners
        .iter()
        .filter(|(id, _)| {
            state
                .identities
                .get(id)
                .and_then(|i| i.owner)
                .is_some_and(dead)
        })
        .count() as u64
}

fn track_deaths(dead_since: &mut HashMap<u64, Instant>, members: &[Member]) {
    for m in members {
        if m.alive {
            dead_since.remove(&m.state.node_id);
        } else {
            dead_since
                .entry(m.state.node_id)
                .or_insert_with(Instant::now);
        }
    }
}

fn command_label(command: &Command) -> String {
    match command {
        Command::SyncBrokers { brokers } => format!("broker list ({} brokers)", brokers.len()),
        Command::Assign {
            expected_epoch,
            owners,
        } => {
            format!(
                "new owners {owners:?} (epoch {expected_epoch} -> {})",
                expected_epoch + 1
            )
        }
        Command::SetDrained { node, drained } => format!("node {node} drained={drained}"),
        Command::SetFeatureLevel { level } => format!("fleet feature level {level}"),
        Command::PutScramCredential {
            user, mechanism, ..
        } => format!("{mechanism} credential of {user}"),
        Command::DeleteScramCredential { user, mechanism } => match mechanism {
            Some(m) => format!("removal of the {m} credential of {user}"),
            None => format!("removal of user {user}"),
        },
        Command::AddAcls { bindings } => format!("{} ACLs added", bindings.len()),
        Command::RemoveAcls { bindings } => format!("{} ACLs removed", bindings.len()),
        Command::PutToken { name, token } => format!("admin token {name} ({})", token.scope),
        Command::DeleteToken { name } => format!("removal of admin token {name}"),
        Command::OpenBreaker { breaker } => format!(
            "breaker on {} ({}, {})",
            breaker.pattern, breaker.mode, breaker.reason
        ),
        Command::CloseBreaker { pattern, .. } => format!("close of the breaker on {pattern}"),
        Command::PutBreakerRule { rule } => format!("breaker rule {}", rule.name),
        Command::DeleteBreakerRule { name } => format!("removal of breaker rule {name}"),
        Command::SetQuota { key, limits } if limits.is_empty() => {
            format!("removal of the quota of {key}")
        }
        Command::SetQuota { key, limits } => format!("quota of {key}: {limits:?}"),
        Command::CreateOffsetReset { reset } => format!(
            "offset reset {} of group {} ({} partitions, {})",
            reset.id,
            reset.group,
            reset.partitions.len(),
            reset.spec
        ),
        Command::AdvanceOffsetReset { id, from, to, .. } => {
            format!("offset reset {id}: {from} -> {to}")
        }
        Command::SetZoneMapping { cidr, zone } => format!("zone map {cidr} -> {zone}"),
        Command::RemoveZoneMapping { cidr } => format!("removal of {cidr} from the zone map"),
        Command::AssignZone {
            expected_epoch,
            zone,
            owners,
        } => format!(
            "owners in zone {zone}: {owners:?} (epoch {expected_epoch} -> {})",
            expected_epoch + 1
        ),
        Command::RegisterCluster { name } => format!("backend cluster {name}"),
        Command::SyncClusterBrokers { cluster, brokers } => {
            format!(
                "broker list of cluster {cluster} ({} brokers)",
                brokers.len()
            )
        }
        Command::SetRoute { key, cluster } => format!("route of the {key} -> {cluster}"),
        Command::DeleteRoute { key } => format!("removal of the route of the {key}"),
        Command::SetDefaultCluster { cluster } => format!("default cluster {cluster}"),
        Command::StartMigration { migration } => format!(
            "migration of topic {} from cluster {} to {}",
            migration.topic, migration.source, migration.target
        ),
        Command::AdvanceMigration {
            topic, from, to, ..
        } => format!("migration of topic {topic}: {from} -> {to}"),
        Command::UpdateMigration { topic, .. } => format!("progress of the migration of {topic}"),
        Command::ForgetMigrations { .. } => "removal of finished migrations".into(),
    }
}
