//! A running node: the shared context every connection sees, and the start-up sequence
//! that binds the listeners and starts the background tasks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use flotilla_config::{Config, Limits};
use tokio::net::TcpListener;

use crate::cluster::fleet::Fleet;
use crate::cluster::status::AdminError;
use crate::directory::{AdvertisedNode, Directory};
use crate::metrics::Metrics;
use crate::{admin, backend, server};

/// How often the self-fencing lease is renewed; far below any sensible takeover deadline.
const FENCE_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// What every connection and admin handler may read.
pub struct Context {
    pub config: Config,
    pub limits: Limits,
    pub directory: Arc<Directory>,
    pub metrics: Arc<Metrics>,
    /// Present in a fleet: gossip membership and the Raft-replicated control state.
    pub fleet: Option<Arc<crate::cluster::fleet::Fleet>>,
    /// Present in a fleet: requests are only forwarded while its lease holds.
    pub fence: Option<Arc<crate::cluster::fence::Fence>>,
    /// Slots that have a bound listener; the node is ready when all known slots do.
    pub listening_slots: AtomicUsize,
    next_bootstrap: AtomicUsize,
}

impl Context {
    pub fn new(config: Config, fleet: Option<Arc<crate::cluster::fleet::Fleet>>) -> Self {
        let directory = Directory::new(AdvertisedNode {
            host: config.node.advertised_host.clone(),
            identity_port_base: config.node.identity_port_base,
            max_identities: config.node.max_identities,
        });
        let fence = config
            .cluster
            .as_ref()
            .map(|c| Arc::new(crate::cluster::fence::Fence::new(c.takeover_after)));
        Context {
            fleet,
            fence,
            limits: config.limits.clone(),
            config,
            directory: Arc::new(directory),
            metrics: Arc::new(Metrics::new()),
            listening_slots: AtomicUsize::new(0),
            next_bootstrap: AtomicUsize::new(0),
        }
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
        if known == 0 && self.fleet.is_some() {
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
}

impl Context {
    /// The fleet as this node sees it; a standalone node is a fleet of one.
    pub fn cluster_status(&self) -> crate::admin::ClusterStatus {
        if let Some(fleet) = &self.fleet {
            return crate::cluster::status::fleet_status(
                fleet,
                &self.directory,
                self.config.node.id,
            );
        }
        use crate::admin::{ClusterStatus, IdentitySummary, NodeSummary};
        let node = &self.config.node;
        let identities: Vec<IdentitySummary> = self
            .directory
            .identities()
            .into_iter()
            .map(|v| IdentitySummary {
                // A standalone node owns every identity.
                owner: v.owner.or(Some(node.id)),
                ..v.into()
            })
            .collect();
        let me = NodeSummary {
            id: node.id,
            address: format!("{}:{}", node.advertised_host, node.bootstrap_port),
            zone: self.config.cluster.as_ref().and_then(|c| c.zone.clone()),
            state: if self.not_ready_reason().is_none() {
                "serving"
            } else {
                "joining"
            }
            .into(),
            alive: true,
            raft_role: "-".into(),
            identities: identities.iter().map(|i| i.id).collect(),
            connections: self.metrics.active_connections(),
        };
        ClusterStatus {
            answered_by: node.id,
            mode: "standalone".into(),
            leader: None,
            term: 0,
            assignment_epoch: 0,
            degraded: false,
            raft_members: Vec::new(),
            nodes: vec![me],
            identities,
        }
    }

    /// Runs an admin write about node `id` against the fleet (`status::drain`,
    /// `status::remove`); a standalone node has no fleet to write to.
    pub async fn fleet_write<'a, F, Fut>(&'a self, id: u64, write: F) -> Result<(), AdminError>
    where
        F: FnOnce(&'a Fleet, u64) -> Fut,
        Fut: std::future::Future<Output = Result<(), AdminError>>,
    {
        match &self.fleet {
            Some(fleet) => write(fleet, id).await,
            None => Err((
                axum::http::StatusCode::CONFLICT,
                "this node runs standalone: there is no fleet to change".into(),
            )),
        }
    }
}

/// Binds every listener, then serves until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    // Bind first: a second copy of a node fails here, before it touches gossip or Raft.
    let node = &config.node;
    let bootstrap_address = format!("{}:{}", config.listen_host(), node.bootstrap_port);
    let bootstrap = TcpListener::bind(&bootstrap_address)
        .await
        .with_context(|| format!("cannot listen on {bootstrap_address} (node.bootstrap_port)"))?;
    let admin = TcpListener::bind(node.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (node.admin_listen)", node.admin_listen))?;
    let fleet = match config.cluster {
        Some(_) => Some(crate::cluster::fleet::Fleet::start(&config).await?),
        None => None,
    };
    let ctx = Arc::new(Context::new(config, fleet));
    let node = &ctx.config.node;
    tracing::info!(
        node_id = node.id,
        bootstrap = %bootstrap_address,
        admin = %node.admin_listen,
        backend = ?ctx.config.backend.bootstrap_servers,
        "flotilla node starting"
    );

    let timeout = ctx.limits.connect_timeout;
    if let Err(e) = backend::refresh(
        &ctx.directory,
        &ctx.config.backend.bootstrap_servers,
        timeout,
    )
    .await
    {
        tracing::warn!("backend cluster not reachable yet, will keep trying: {e:#}");
    }
    let mut tasks = vec![];
    if let (Some(fence), Some(fleet)) = (ctx.fence.clone(), ctx.fleet.clone()) {
        let reconfirm = move || {
            let fleet = fleet.clone();
            async move { fleet.reconfirm().await }
        };
        tasks.push(tokio::spawn(fence.keep_renewed(FENCE_TICK, reconfirm)));
    }
    if let Some(fleet) = ctx.fleet.clone() {
        tasks.push(tokio::spawn(
            fleet.run(ctx.directory.clone(), ctx.metrics.clone()),
        ));
    }
    tasks.extend([
        tokio::spawn(backend::refresh_forever(
            ctx.directory.clone(),
            ctx.metrics.clone(),
            ctx.config.backend.bootstrap_servers.clone(),
            ctx.config.backend.metadata_refresh,
            timeout,
        )),
        tokio::spawn(server::serve_identities(ctx.clone())),
        tokio::spawn(server::accept(
            ctx.clone(),
            bootstrap,
            crate::connection::Target::Bootstrap,
        )),
        tokio::spawn(admin::serve(ctx.clone(), admin)),
    ]);
    shutdown.await;
    tracing::info!("shutting down");
    for task in tasks {
        task.abort();
    }
    Ok(())
}
