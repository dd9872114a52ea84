//! Listeners: the bootstrap port and one port per identity slot, each with its own accept
//! loop, for each transport the node serves (plaintext, TLS, or both side by side on
//! separate port ranges). Identity ports open as slots appear in the directory, so a broker
//! added to the backend cluster becomes reachable without a restart.
//!
//! Every accepted client connection is counted against `limits.max_connections` (each one
//! also holds a broker connection and two file descriptors) and tracked, so that a node
//! that stops can wait for its connections to send what they owe.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flotilla_config::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;

use super::clients::Phase;
use super::connection;
use super::filter::{Listener, Transport};
use crate::context::Context;
use crate::supervisor::Tasks;

/// The transports this node serves clients over, plaintext first.
pub fn transports(config: &Config) -> Vec<Transport> {
    let mut transports = Vec::new();
    if config.node.plaintext {
        transports.push(Transport::Plaintext);
    }
    if config.tls.is_some() {
        transports.push(Transport::Tls);
    }
    transports
}

/// Binds the bootstrap listener of every transport; the error names the port's field.
pub async fn bind_bootstrap(config: &Config) -> anyhow::Result<Vec<(TcpListener, Transport)>> {
    let mut bound = Vec::new();
    for transport in transports(config) {
        let (port, field) = match (transport, &config.tls) {
            (Transport::Tls, Some(tls)) => (tls.bootstrap_port, "tls.bootstrap_port"),
            _ => (config.node.bootstrap_port, "node.bootstrap_port"),
        };
        let address = format!("{}:{port}", config.listen_host());
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address} ({field})"))?;
        tracing::info!(%address, ?transport, "bootstrap port listening");
        bound.push((listener, transport));
    }
    Ok(bound)
}

/// Accepts clients on one listener until the node stops.
pub async fn accept(
    ctx: Arc<Context>,
    listener: TcpListener,
    kind: Listener,
    transport: Transport,
) -> anyhow::Result<()> {
    let stop = ctx.clients.stop_signal();
    let stopping = stop.reached(Phase::Stopping);
    tokio::pin!(stopping);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stopping => return Ok(()),
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(permit) = admit(&ctx, peer) else {
                    continue; // dropping the stream closes it
                };
                serve(&ctx, stream, peer, (kind, transport), permit);
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::error!(?kind, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn serve(
    ctx: &Arc<Context>,
    stream: TcpStream,
    peer: SocketAddr,
    (kind, transport): (Listener, Transport),
    permit: OwnedSemaphorePermit,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "cannot disable Nagle: {e}");
    }
    let owned = ctx.clone();
    ctx.clients.spawn(async move {
        connection::serve(owned, stream, peer, kind, transport).await;
        drop(permit);
    });
}

/// A connection slot for a new client, or `None` (logged and counted) when the node must
/// refuse it.
fn admit(ctx: &Context, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
    if let Some(reason) = refusal(ctx) {
        tracing::info!(%peer, "closing a client connection: not ready ({reason})");
        ctx.metrics.connection_closed("not_ready");
        return None;
    }
    match ctx.clients.try_admit() {
        Some(permit) => Some(permit),
        None => {
            tracing::warn!(
                %peer,
                max = ctx.limits.max_connections,
                "refusing a client connection: limits.max_connections reached"
            );
            ctx.metrics.connection_closed("max_connections");
            None
        }
    }
}

/// A fleet node that has not applied the committed identity table closes new client
/// connections, so clients move on to another bootstrap server instead of caching a
/// Metadata answer with no brokers. A standalone node learns brokers from the very
/// Metadata requests it forwards, so it always serves.
fn refusal(ctx: &Context) -> Option<String> {
    ctx.fleet.as_ref()?;
    ctx.not_ready_reason()
}

/// Opens a listener for every identity slot and transport, now and as new slots appear;
/// each runs as a supervised task.
pub async fn serve_identities(ctx: Arc<Context>, tasks: Tasks) -> anyhow::Result<()> {
    let mut slots = ctx.directory.watch_slots();
    let mut next_slot: u16 = 0;
    let stop = ctx.clients.stop_signal();
    let transports = transports(&ctx.config);
    loop {
        let wanted = *slots.borrow_and_update();
        while usize::from(next_slot) < wanted {
            match bind_slot(&ctx, next_slot, &transports).await {
                Ok(listeners) => {
                    for (listener, address, transport) in listeners {
                        let kind = Listener::Identity { slot: next_slot };
                        let name = format!("identity listener {address}");
                        tasks.spawn(name, accept(ctx.clone(), listener, kind, transport));
                    }
                    next_slot += 1;
                    ctx.listening_slots
                        .store(usize::from(next_slot), Ordering::Relaxed);
                    ctx.metrics.identity_listeners.set(i64::from(next_slot));
                }
                Err(e) => {
                    tracing::error!(slot = next_slot, "{e:#}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        tokio::select! {
            changed = slots.changed() => changed?,
            () = stop.reached(Phase::Stopping) => return Ok(()),
        }
    }
}

/// Binds one slot's port of every transport, or none of them.
async fn bind_slot(
    ctx: &Context,
    slot: u16,
    transports: &[Transport],
) -> anyhow::Result<Vec<(TcpListener, String, Transport)>> {
    let mut bound = Vec::new();
    for &transport in transports {
        let Some(port) = ctx.directory.port_of(slot, transport) else {
            continue;
        };
        let address = format!("{}:{port}", ctx.config.listen_host());
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        tracing::info!(slot, %address, ?transport, "identity port listening");
        bound.push((listener, address, transport));
    }
    Ok(bound)
}
