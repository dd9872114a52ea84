//! What every connection, filter and admin handler of a node may read: the configuration,
//! the directory of identities, the committed control state, the filter chain, the
//! metrics, the node's client connections, and in a fleet the cluster membership and the
//! self-fencing lease. `node` builds one at start-up and hands out `Arc`s of it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use flotilla_config::{AdminConfig, Config, Limits, ListenerKind, SaslTermination};
use flotilla_raft::{ControlState, RaftTls};

use crate::api::{ClusterStatus, Mode, NodeState, NodeSummary, RaftRole};
use crate::backend;
use crate::cluster::fence::Fence;
use crate::cluster::fleet::Fleet;
use crate::cluster::offset_resets::evictions::Evictions;
use crate::cluster::usage::FleetUsage;
use crate::directory::{AdvertisedNode, Directory};
use crate::metrics::Metrics;
use crate::monitoring::Traffic;
use crate::proxy::chain::FilterChain;
use crate::proxy::clients::{ClientConnections, Phase};
use crate::proxy::filters;
use crate::proxy::filters::zone::Placement;
use crate::stream::Transport;
use crate::tls::{ServerFiles, ServerTls};

/// What a node reads from disk at start to open connections: its TLS certificate, the
/// TLS material for the brokers and for Raft RPC between nodes. Loaded before anything
/// else starts, so a bad file stops the node at once with the field named.
pub struct Transports {
    /// Per backend cluster, how to reach its brokers.
    pub backends: BTreeMap<String, Arc<backend::Link>>,
    pub tls: Option<Arc<ServerTls>>,
    pub admin_tls: Option<Arc<ServerTls>>,
    /// With `[cluster.tls]`: mutual TLS for Raft RPC.
    pub raft: Option<RaftTls>,
}

impl Transports {
    pub fn load(config: &Config) -> anyhow::Result<Transports> {
        let tls = match &config.tls {
            Some(tls) => Some(Arc::new(ServerTls::load(ServerFiles::listeners(tls))?)),
            None => None,
        };
        let admin_tls = match config.admin.as_ref().and_then(|a| a.tls.as_ref()) {
            Some(tls) => Some(Arc::new(ServerTls::load(ServerFiles::admin(tls))?)),
            None => None,
        };
        let backends = backend::Clusters::links(&config.backend, config.limits.connect_timeout)?;
        let cluster_tls = config.cluster.as_ref().and_then(|c| c.tls.as_ref());
        let raft = cluster_tls
            .map(|tls| crate::tls::raft_tls(tls, config.node.id))
            .transpose()?;
        Ok(Transports {
            backends,
            tls,
            admin_tls,
            raft,
        })
    }
}

pub struct Context {
    pub config: Config,
    pub limits: Limits,
    pub directory: Arc<Directory>,
    /// The control state as last applied on this node; a standalone node's stays empty.
    /// Filters read it through a snapshot, never a lock.
    pub control: Arc<ArcSwap<ControlState>>,
    pub chain: FilterChain,
    pub clients: ClientConnections,
    pub metrics: Arc<Metrics>,
    /// The other nodes' usage, for fleet-wide limits; empty on a standalone node.
    pub usage: Arc<FleetUsage>,
    /// Traffic per topic and client, and the rates `proxyctl top` shows.
    pub traffic: Arc<Traffic>,
    /// Members the `offset_reset` filter fenced, for this node's evictor to remove.
    pub evictions: Arc<Evictions>,
    /// How to reach the brokers of the cluster `default` (TCP or TLS).
    pub backend: Arc<backend::Link>,
    /// Every configured backend cluster, `default` among them.
    pub clusters: Arc<backend::Clusters>,
    /// Present with a `[tls]` section: the TLS listeners' certificate.
    pub tls: Option<Arc<ServerTls>>,
    /// Present with an `[admin.tls]` section: the admin API is served over HTTPS.
    pub admin_tls: Option<Arc<ServerTls>>,
    /// Present in a fleet: gossip membership and the Raft-replicated control state.
    pub fleet: Option<Arc<Fleet>>,
    /// Present in a fleet: requests are only forwarded while its lease holds.
    pub fence: Option<Arc<Fence>>,
    /// Slots that have a bound listener; the node is ready when all known slots do.
    pub listening_slots: AtomicUsize,
    next_bootstrap: AtomicUsize,
}

impl Context {
    pub fn new(config: Config, fleet: Option<Arc<Fleet>>, transports: Transports) -> Self {
        let zone_map = config.cluster.as_ref().map(|c| c.parsed_zone_map());
        let directory = Directory::new(AdvertisedNode {
            host: config.node.advertised_host.clone(),
            identity_port_base: config.node.identity_port_base,
            tls_identity_port_base: config.tls.as_ref().map(|t| t.identity_port_base),
            max_identities: config.node.max_identities,
        })
        .with_placement(Placement::new(
            zone_map.and_then(Result::ok).unwrap_or_default(),
        ));
        if fleet.is_some() {
            // A fleet node advertises only what the fleet committed; until the table
            // arrives it has no identities at all, rather than ones it learned itself.
            directory.install_routes(Vec::new());
        }
        let directory = Arc::new(directory);
        let fence = config
            .cluster
            .as_ref()
            .map(|c| Arc::new(Fence::new(c.takeover_after)));
        let metrics = Arc::new(Metrics::with_monitoring(&config.monitoring));
        metrics
            .connections_limit
            .set(config.limits.max_connections as i64);
        let traffic = Arc::new(Traffic::new(metrics.clone(), &config.monitoring));
        let control = Arc::new(ArcSwap::from_pointee(ControlState::default()));
        let usage = Arc::new(FleetUsage::default());
        let evictions = Arc::new(Evictions::default());
        let clusters = Arc::new(backend::Clusters::new(&config.backend, transports.backends));
        let built_in = filters::built_in(
            &directory,
            &config,
            (&metrics, &usage, &evictions),
            (&clusters, &control),
        );
        let chain = FilterChain::new(built_in, control.clone(), &metrics);
        Context {
            fleet,
            fence,
            backend: clusters.default_cluster().link.clone(),
            clusters,
            tls: transports.tls,
            admin_tls: transports.admin_tls,
            limits: config.limits.clone(),
            clients: ClientConnections::new(config.limits.max_connections),
            config,
            directory,
            control,
            chain,
            metrics,
            usage,
            traffic,
            evictions,
            listening_slots: AtomicUsize::new(0),
            next_bootstrap: AtomicUsize::new(0),
        }
    }

    /// The fleet's SASL server settings, where clients of `transport` log in with the
    /// fleet rather than with their broker.
    pub fn sasl_termination(&self, transport: Transport) -> Option<&SaslTermination> {
        let kind = match transport {
            Transport::Plaintext => ListenerKind::Plaintext,
            Transport::Tls => ListenerKind::Tls,
        };
        self.config.sasl.as_ref().filter(|s| s.applies_to(kind))
    }

    /// Brokers to try for a bootstrap connection, starting at a rotating position so
    /// bootstrap load spreads over the cluster; the configured servers come last.
    pub fn bootstrap_candidates(&self) -> Vec<String> {
        let mut known = self.directory.upstreams();
        if !known.is_empty() {
            let start = self.next_bootstrap.fetch_add(1, Ordering::Relaxed) % known.len();
            known.rotate_left(start);
        }
        known.extend(self.config.backend.bootstrap_servers.iter().cloned());
        known
    }

    /// Why the node cannot serve clients yet, if it cannot.
    ///
    /// A fleet node is not ready until it has applied a committed identity table with an
    /// address for every identity: before that its Metadata would list no brokers, and
    /// clients would cache that.
    pub fn not_ready_reason(&self) -> Option<String> {
        let identities = self.directory.identities();
        let known = identities.len();
        let listening = self.listening_slots.load(Ordering::Relaxed);
        let unrouted = identities.iter().filter(|i| i.address.is_empty()).count();
        if self.clients.phase() >= Phase::Redirecting {
            Some("the node is stopping".into())
        } else if known == 0 && self.fleet.is_some() {
            Some("the fleet's identity table has not been replicated to this node yet".into())
        } else if known == 0 {
            Some("no broker of the backend cluster is known yet".into())
        } else if unrouted > 0 {
            Some(format!(
                "{unrouted} of {known} identities have no live owner"
            ))
        } else if listening < known {
            Some(format!(
                "{listening} of {known} identity ports are listening"
            ))
        } else {
            None
        }
    }

    /// The `[admin]` section, or what its absence means.
    pub fn admin_config(&self) -> AdminConfig {
        self.config.admin.clone().unwrap_or_default()
    }

    /// The fleet as this node sees it; a standalone node is a fleet of one.
    pub fn cluster_status(&self) -> ClusterStatus {
        let node = &self.config.node;
        if let Some(fleet) = &self.fleet {
            return crate::cluster::status::fleet_status(fleet, &self.directory, node.id);
        }
        let mut identities = self.directory.identity_summaries();
        for identity in &mut identities {
            identity.owner = identity.owner.or(Some(node.id)); // a standalone node owns all
        }
        let me = NodeSummary {
            id: node.id,
            address: format!("{}:{}", node.advertised_host, node.bootstrap_port),
            zone: self.config.cluster.as_ref().and_then(|c| c.zone.clone()),
            state: match self.not_ready_reason() {
                None => NodeState::Serving,
                Some(_) => NodeState::Joining,
            },
            alive: true,
            raft_role: RaftRole::None,
            identities: identities.iter().map(|i| i.id).collect(),
            connections: self.metrics.active_connections(),
            feature_level: flotilla_raft::FEATURE_LEVEL,
        };
        ClusterStatus {
            answered_by: node.id,
            mode: Mode::Standalone,
            leader: None,
            term: 0,
            assignment_epoch: 0,
            degraded: false,
            feature_level: 0,
            raft_members: Vec::new(),
            nodes: vec![me],
            identities,
        }
    }
}
