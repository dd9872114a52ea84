//! A node's life: bind the listeners, join the fleet, run the background tasks under
//! supervision, and on SIGTERM stop without costing clients anything.
//!
//! A graceful stop is what makes a rolling restart invisible: the node first gives its
//! identities to the fleet (published as draining in gossip, new owners committed through
//! Raft), so Metadata everywhere points clients at other nodes; only then does it stop
//! accepting, let every request it already forwarded get its answer (bounded by
//! `shutdown.drain_timeout`), close its client connections and leave Raft. Clients whose
//! connections close reconnect to the new owners; nothing they sent is lost or replayed.
//!
//! This module wires the others together; nothing imports it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flotilla_config::Config;
use tokio::net::TcpListener;

use crate::cluster::fleet::Fleet;
use crate::context::{Context, Transports};
use crate::proxy::filter::{Listener, Transport};
use crate::proxy::listener;
use crate::supervisor::{self, Tasks};
use crate::{admin, backend};

/// How often the self-fencing lease is renewed; far below any sensible takeover deadline.
const FENCE_TICK: Duration = Duration::from_millis(50);

/// Binds every listener and serves until `shutdown` completes, then stops gracefully.
/// Fails if the node cannot start, or if a background task ends while it runs.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    crate::tls::install_default_provider();
    // Certificates and keys first: a bad file must stop the node before anything starts.
    let transports = Transports::load(&config)?;
    // Bind next: a second copy of a node fails here, before it touches gossip or Raft.
    let node = &config.node;
    let bootstrap = listener::bind_bootstrap(&config).await?;
    let admin = TcpListener::bind(node.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (node.admin_listen)", node.admin_listen))?;
    let fleet = match config.cluster {
        Some(_) => Some(Fleet::start(&config, transports.raft.clone()).await?),
        None => None,
    };
    let ctx = Arc::new(Context::new(config, fleet, transports));
    let node = &ctx.config.node;
    tracing::info!(
        node_id = node.id,
        admin = %node.admin_listen,
        backend = ?ctx.config.backend.bootstrap_servers,
        "flotilla node starting"
    );
    warn_if_admin_api_is_open(&ctx);
    if let Err(e) = backend::refresh(&ctx.directory, ctx.clusters.default_cluster()).await {
        tracing::warn!("backend cluster not reachable yet, will keep trying: {e:#}");
    }

    let (tasks, mut ends) = supervisor::new();
    start_tasks(&ctx, &tasks, bootstrap, admin);
    tokio::select! {
        end = ends.first() => {
            tracing::error!(
                task = %end.name,
                reason = %end.reason,
                "a background task ended; the node stops rather than serve half-alive"
            );
            anyhow::bail!("background task `{}` ended: {}", end.name, end.reason)
        }
        () = shutdown => {}
    }
    stop(&ctx).await;
    Ok(())
}

fn start_tasks(
    ctx: &Arc<Context>,
    tasks: &Tasks,
    bootstrap: Vec<(TcpListener, Transport)>,
    admin: TcpListener,
) {
    if let (Some(fence), Some(fleet)) = (ctx.fence.clone(), ctx.fleet.clone()) {
        let reconfirm = move || {
            let fleet = fleet.clone();
            async move { fleet.reconfirm().await }
        };
        tasks.spawn("fence lease", async move {
            fence.keep_renewed(FENCE_TICK, reconfirm).await;
            Ok(())
        });
    }
    if let Some(fleet) = ctx.fleet.clone() {
        let (directory, metrics) = (ctx.directory.clone(), ctx.metrics.clone());
        let (control, clusters) = (ctx.control.clone(), ctx.clusters.clone());
        tasks.spawn("fleet", async move {
            fleet.run(directory, control, metrics, clusters).await;
            Ok(())
        });
    }
    if let Some(fleet) = ctx.fleet.clone() {
        let usage = ctx.usage.clone();
        tasks.spawn("fleet usage", async move {
            usage.run(&fleet.gossip).await;
            Ok(())
        });
    }
    if let Some(fleet) = ctx.fleet.clone() {
        let (breaking, watching) = (fleet.clone(), ctx.clone());
        tasks.spawn("breakers", async move {
            crate::cluster::breakers::watch(breaking, watching).await;
            Ok(())
        });
        let driving = ctx.clone();
        tasks.spawn("offset resets", async move {
            crate::cluster::offset_resets::driver::drive(fleet, driving).await;
            Ok(())
        });
        let evicting = ctx.clone();
        tasks.spawn("offset reset evictions", async move {
            crate::cluster::offset_resets::driver::evict_fenced(evicting).await;
            Ok(())
        });
        let learning = ctx.clone();
        tasks.spawn("topic ids for breakers", async move {
            crate::cluster::breakers::learn_topic_ids(learning).await;
            Ok(())
        });
    }
    let c = ctx.clone();
    tasks.spawn("traffic monitoring", async move {
        let traffic = &c.traffic;
        tokio::join!(
            traffic.sample_forever(),
            traffic
                .topic_ids
                .resolve_forever(c.backend.clone(), c.directory.clone()),
        );
        Ok(())
    });
    for name in ctx.clusters.names() {
        let c = ctx.clone();
        let cluster = ctx.clusters.get(name).expect("named above").clone();
        tasks.spawn(format!("backend refresh of cluster {name}"), async move {
            let every = c.config.backend.metadata_refresh;
            backend::refresh_forever(c.directory.clone(), c.metrics.clone(), cluster, every).await;
            Ok(())
        });
    }
    tasks.spawn(
        "identity listeners",
        listener::serve_identities(ctx.clone(), tasks.clone()),
    );
    for (bootstrap, transport) in bootstrap {
        tasks.spawn(
            format!("{transport:?} bootstrap listener"),
            listener::accept(ctx.clone(), bootstrap, Listener::Bootstrap, transport),
        );
    }
    if let Some(tls) = ctx.tls.clone() {
        let metrics = ctx.metrics.clone();
        tasks.spawn("TLS reload", async move {
            tls.reload_on_change(metrics).await;
            Ok(())
        });
    }
    if let Some(tls) = ctx.admin_tls.clone() {
        let metrics = ctx.metrics.clone();
        tasks.spawn("admin TLS reload", async move {
            tls.reload_on_change(metrics).await;
            Ok(())
        });
    }
    tasks.spawn(
        "admin API",
        admin::serve(ctx.clone(), admin, std::future::pending()),
    );
}

/// An admin API anyone who reaches it may use is the default, for fleets that predate
/// credentials; say so once, so it is a choice.
fn warn_if_admin_api_is_open(ctx: &Context) {
    if ctx.admin_config().requires_credentials() {
        return;
    }
    let scheme = if ctx.admin_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let until = if ctx.fleet.is_some() {
        "until a token is created (`proxyctl token add NAME --scope admin`, kept by the fleet) \
         or [admin] tokens or admin.tls.client_ca are configured"
    } else {
        "configure [admin] tokens or admin.tls.client_ca to ask for credentials"
    };
    tracing::warn!(
        "the admin API at {scheme}://{} is unauthenticated: anyone who reaches it may drain \
         nodes and change users, ACLs and tokens; {until}",
        ctx.config.node.admin_listen
    );
}

/// The graceful stop: hand off, drain, leave.
async fn stop(ctx: &Context) {
    let started = Instant::now();
    let shutdown = &ctx.config.shutdown;
    tracing::info!("stopping: handing this node's identities to the fleet first");
    if let Some(fleet) = &ctx.fleet {
        fleet.begin_stop().await;
        match fleet.hand_off(shutdown.handoff_timeout).await {
            Ok(()) => tracing::info!(elapsed = ?started.elapsed(), "identities handed off"),
            Err(e) => tracing::warn!("stopping without a complete hand-off: {e}"),
        }
    }
    let open = ctx.metrics.active_connections();
    tracing::info!(open, "sending clients to the new owners");
    ctx.clients.redirect(shutdown.redirect_window).await;
    let open = ctx.metrics.active_connections();
    tracing::info!(
        open,
        "no longer accepting; letting client connections finish what they owe"
    );
    let cut_short = ctx.clients.stop(shutdown.drain_timeout).await;
    if cut_short > 0 {
        tracing::warn!(
            cut_short,
            deadline = ?shutdown.drain_timeout,
            "closed connections still waiting for broker answers at the deadline"
        );
    }
    if let Some(fleet) = &ctx.fleet {
        fleet.leave().await;
    }
    tracing::info!(elapsed = ?started.elapsed(), "stopped");
}
