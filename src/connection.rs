//! The connection loop: one client connection, one upstream broker connection, and two
//! directions between them.
//!
//! Kafka answers requests on a connection in the order they were sent, so the proxy keeps
//! a FIFO of the requests in flight (correlation id, API, version) and matches each
//! response to the front of it. No correlation id is rewritten; the FIFO only tells the
//! response direction which responses need their broker addresses rewritten.
//!
//! The two directions run as separate futures so neither can block the other: a broker
//! writing a large Fetch response is never stuck behind a request the proxy is writing,
//! and vice versa. Whichever side ends first ends both, so an upstream failure closes the
//! client connection and a client failure closes the upstream one. A client treats a
//! closed connection as retriable and resends Produce with the same sequence numbers;
//! inventing an error response instead could turn a retriable situation into data loss.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kafka_protocol::messages::ApiKey;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use crate::backend;
use crate::protocol::frame::{write_frame, FrameCodec, FrameError, SIZE_PREFIX};
use crate::protocol::header::{self, HeaderError};
use crate::metrics::ConnectionMetrics;
use crate::node::Context;
use crate::rewrite::{self, RewriteError};

/// Which listener a client connected to, and so which broker it is forwarded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Any healthy broker: clients only bootstrap (Metadata, ApiVersions) through it.
    Bootstrap,
    /// The broker behind identity slot `slot`.
    Identity { slot: u16 },
}

/// A request whose response has not come back yet.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
}

type InFlightQueue = Mutex<VecDeque<InFlight>>;

/// Why a connection ended; logged once per connection and counted by [`Close::label`].
#[derive(Debug)]
enum Close {
    ClientClosed,
    UpstreamClosed,
    Idle(Duration),
    NoUpstream(String),
    ClientFrame(FrameError),
    BadRequest(HeaderError),
    UpstreamFrame(FrameError),
    BadResponse(String),
    Rewrite(RewriteError),
    ClientWrite(std::io::Error),
    UpstreamWrite(std::io::Error),
    Fenced,
    BackendUnreachable,
}

impl Close {
    fn label(&self) -> &'static str {
        match self {
            Close::ClientClosed => "client_closed",
            Close::UpstreamClosed => "upstream_closed",
            Close::Idle(_) => "idle",
            Close::NoUpstream(_) => "no_upstream",
            Close::ClientFrame(e) if e.kind() == "io" => "client_io",
            Close::ClientFrame(_) | Close::BadRequest(_) => "bad_request",
            Close::UpstreamFrame(_) | Close::BadResponse(_) => "bad_response",
            Close::Rewrite(_) => "rewrite_failed",
            Close::ClientWrite(_) => "client_io",
            Close::UpstreamWrite(_) => "upstream_io",
            Close::Fenced => "fenced",
            Close::BackendUnreachable => "backend_unreachable",
        }
    }

    /// The metric label of malformed client input, if that is why the connection ended.
    fn protocol_error(&self) -> Option<&'static str> {
        match self {
            Close::ClientFrame(e) if e.kind() != "io" => Some(e.kind()),
            Close::BadRequest(e) => Some(e.kind()),
            _ => None,
        }
    }

    fn is_routine(&self) -> bool {
        matches!(self, Close::ClientClosed | Close::Idle(_))
    }
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Close::ClientClosed => write!(f, "client closed the connection"),
            Close::UpstreamClosed => write!(f, "broker closed the connection"),
            Close::Idle(after) => write!(f, "idle for {after:?} with nothing in flight"),
            Close::NoUpstream(e) => write!(f, "no broker connection: {e}"),
            Close::ClientFrame(e) => write!(f, "bad frame from client: {e}"),
            Close::BadRequest(e) => write!(f, "refused request: {e}"),
            Close::UpstreamFrame(e) => write!(f, "bad frame from broker: {e}"),
            Close::BadResponse(e) => write!(f, "bad response from broker: {e}"),
            Close::Rewrite(e) => write!(f, "{e}"),
            Close::ClientWrite(e) => write!(f, "writing to client: {e}"),
            Close::UpstreamWrite(e) => write!(f, "writing to broker: {e}"),
            Close::Fenced => write!(
                f,
                "node is fenced until it re-confirms its membership; the request was not forwarded"
            ),
            Close::BackendUnreachable => write!(
                f,
                "this node reaches no broker; its identities are served by other nodes"
            ),
        }
    }
}

/// Serves one accepted client connection until either side ends it.
pub async fn serve(ctx: Arc<Context>, client: TcpStream, peer: SocketAddr, target: Target) {
    let identity = match target {
        Target::Bootstrap => "bootstrap".to_string(),
        Target::Identity { slot } => ctx
            .directory
            .identity_of_slot(slot)
            .map_or_else(|| format!("slot-{slot}"), |id| id.to_string()),
    };
    let mut metrics = ctx.metrics.connection(&identity);
    tracing::info!(%peer, %identity, "connection opened");
    let started = Instant::now();
    let close = run(&ctx, client, target, &mut metrics).await;
    ctx.metrics.connection_closed(close.label());
    if let Some(kind) = close.protocol_error() {
        ctx.metrics.protocol_error(kind);
    }
    let lifetime = started.elapsed();
    if close.is_routine() {
        tracing::info!(%peer, %identity, ?lifetime, reason = %close, "connection closed");
    } else {
        tracing::warn!(%peer, %identity, ?lifetime, reason = %close, "connection closed");
    }
}

async fn run(
    ctx: &Context,
    client: TcpStream,
    target: Target,
    metrics: &mut ConnectionMetrics,
) -> Close {
    let mut cut_off = ctx.fleet.as_ref().map(|f| f.watch_cut_off());
    if cut_off.as_ref().is_some_and(|c| *c.borrow()) {
        return Close::BackendUnreachable;
    }
    let upstream = match connect_upstream(ctx, target).await {
        Ok(stream) => stream,
        Err(e) => return Close::NoUpstream(e),
    };
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let in_flight = InFlightQueue::default();
    let bytes_out = metrics.bytes_out.clone();
    tokio::select! {
        close = forward_requests(ctx, client_read, upstream_write, &in_flight, metrics) => close,
        close = forward_responses(ctx, upstream_read, client_write, &in_flight, &bytes_out) => close,
        close = cut_off_from_backend(cut_off.as_mut()) => close,
    }
}

/// Resolves when this node finds itself cut off from the backend; never on a standalone
/// node.
async fn cut_off_from_backend(cut_off: Option<&mut tokio::sync::watch::Receiver<bool>>) -> Close {
    if let Some(cut_off) = cut_off {
        if cut_off.wait_for(|&c| c).await.is_ok() {
            return Close::BackendUnreachable;
        }
    }
    std::future::pending().await
}

async fn connect_upstream(ctx: &Context, target: Target) -> Result<TcpStream, String> {
    let candidates = match target {
        Target::Identity { slot } => match ctx.directory.upstream(slot) {
            Some(address) => vec![address],
            None => return Err(format!("identity slot {slot} has no broker")),
        },
        Target::Bootstrap => ctx.bootstrap_candidates(),
    };
    let mut errors = Vec::new();
    for address in candidates {
        match backend::connect(&address, ctx.limits.connect_timeout).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                ctx.metrics.upstream_connect_failures.inc();
                errors.push(format!("{address}: {e}"));
            }
        }
    }
    Err(errors.join("; "))
}

/// Client to broker: check each request's header, remember it, forward its bytes as they
/// came.
async fn forward_requests(
    ctx: &Context,
    client: OwnedReadHalf,
    mut upstream: OwnedWriteHalf,
    in_flight: &InFlightQueue,
    metrics: &mut ConnectionMetrics,
) -> Close {
    let idle_timeout = ctx.limits.idle_timeout;
    let fence_epoch = ctx.fence.as_ref().map(|f| f.epoch());
    let mut frames = FramedRead::new(client, FrameCodec::new(ctx.limits.max_request_bytes));
    loop {
        let frame = match tokio::time::timeout(idle_timeout, frames.next()).await {
            Err(_) if lock(in_flight).is_empty() => return Close::Idle(idle_timeout),
            Err(_) => continue,
            Ok(None) => return Close::ClientClosed,
            Ok(Some(Err(e))) => return Close::ClientFrame(e),
            Ok(Some(Ok(frame))) => frame,
        };
        if let (Some(fence), Some(epoch)) = (&ctx.fence, fence_epoch) {
            if fence.is_fenced(epoch) {
                return Close::Fenced;
            }
        }
        let request = match header::parse_request(&frame) {
            Ok(request) => request,
            Err(e) => return Close::BadRequest(e),
        };
        // Per-request policy (breakers, quotas, ACLs) hooks in here, before anything is
        // forwarded or remembered.
        let expects_response = match request.api_key {
            ApiKey::Produce => match header::produce_acks(&frame, &request) {
                Ok(acks) => acks != 0,
                Err(e) => return Close::BadRequest(e),
            },
            _ => true,
        };
        metrics.request(&ctx.metrics, request.api_key);
        metrics.bytes_in.inc_by((SIZE_PREFIX + frame.len()) as u64);
        if expects_response {
            lock(in_flight).push_back(InFlight {
                correlation_id: request.correlation_id,
                api_key: request.api_key,
                api_version: request.api_version,
            });
        }
        if let Err(e) = write_frame(&mut upstream, frame).await {
            return Close::UpstreamWrite(e);
        }
    }
}

/// Broker to client: match each response to its request, rewrite broker addresses where
/// the API carries them, forward everything else untouched.
async fn forward_responses(
    ctx: &Context,
    upstream: OwnedReadHalf,
    mut client: OwnedWriteHalf,
    in_flight: &InFlightQueue,
    bytes_out: &prometheus::IntCounter,
) -> Close {
    let mut frames = FramedRead::new(upstream, FrameCodec::new(ctx.limits.max_response_bytes));
    loop {
        let frame = match frames.next().await {
            None => return Close::UpstreamClosed,
            Some(Err(e)) => return Close::UpstreamFrame(e),
            Some(Ok(frame)) => frame,
        };
        let Some(request) = lock(in_flight).pop_front() else {
            return Close::BadResponse("a response arrived with no request in flight".into());
        };
        let correlation_id = header::response_correlation_id(&frame);
        if correlation_id != Some(request.correlation_id) {
            return Close::BadResponse(format!(
                "correlation id {correlation_id:?} where {} was expected",
                request.correlation_id
            ));
        }
        let frame = if rewrite::needs_rewrite(request.api_key, request.api_version) {
            match rewrite::response(&ctx.directory, request.api_key, request.api_version, frame) {
                Ok(frame) => frame,
                Err(e) => return Close::Rewrite(e),
            }
        } else {
            frame
        };
        bytes_out.inc_by((SIZE_PREFIX + frame.len()) as u64);
        if let Err(e) = write_frame(&mut client, frame).await {
            return Close::ClientWrite(e);
        }
    }
}

/// The queue is only touched between awaits, by the two futures of one task, so the lock
/// is never contended; a poisoned lock cannot leave it half-updated.
fn lock(queue: &InFlightQueue) -> std::sync::MutexGuard<'_, VecDeque<InFlight>> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}
