//! Listeners: the bootstrap port and one port per identity slot, each with its own
//! accept loop. Identity ports open as slots appear in the directory, so a broker added
//! to the backend cluster becomes reachable without a restart.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::connection::{self, Target};
use crate::node::Context;

/// Accepts clients on one listener for the life of the node.
pub async fn accept(ctx: Arc<Context>, listener: TcpListener, target: Target) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if refuse_while_not_ready(&ctx, peer) {
                    continue; // dropping the stream closes it
                }
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, "cannot disable Nagle: {e}");
                }
                tokio::spawn(connection::serve(ctx.clone(), stream, peer, target));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::error!(?target, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A fleet node that has not applied the committed identity table closes new client
/// connections, so clients move on to another bootstrap server instead of caching a
/// Metadata answer with no brokers. A standalone node learns brokers from the very
/// Metadata requests it forwards, so it always serves.
fn refuse_while_not_ready(ctx: &Context, peer: std::net::SocketAddr) -> bool {
    if ctx.fleet.is_none() {
        return false;
    }
    let Some(reason) = ctx.not_ready_reason() else {
        return false;
    };
    tracing::info!(%peer, "closing a client connection: not ready ({reason})");
    ctx.metrics.connection_closed("not_ready");
    true
}

/// Opens a listener for every identity slot, now and as new slots appear.
pub async fn serve_identities(ctx: Arc<Context>) {
    let mut slots = ctx.directory.watch_slots();
    let mut next_slot: u16 = 0;
    loop {
        let wanted = *slots.borrow_and_update();
        while usize::from(next_slot) < wanted {
            let address = format!(
                "{}:{}",
                ctx.config.listen_host(),
                ctx.directory.port_of(next_slot)
            );
            match TcpListener::bind(&address).await {
                Ok(listener) => {
                    tracing::info!(slot = next_slot, %address, "identity port listening");
                    let target = Target::Identity { slot: next_slot };
                    tokio::spawn(accept(ctx.clone(), listener, target));
                    next_slot += 1;
                    ctx.listening_slots
                        .store(usize::from(next_slot), Ordering::Relaxed);
                    ctx.metrics.identity_listeners.set(i64::from(next_slot));
                }
                Err(e) => {
                    tracing::error!(slot = next_slot, %address, "cannot listen, retrying: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if slots.changed().await.is_err() {
            return;
        }
    }
}
