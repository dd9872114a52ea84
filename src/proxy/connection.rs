//! The connection loop: one client connection, one upstream broker connection, and two
//! directions between them.
//!
//! The two directions run as separate futures so neither can block the other: a broker
//! writing a large Fetch response is never stuck behind a request the proxy is writing,
//! and vice versa. Whichever side ends first ends both, so an upstream failure closes the
//! client connection and a client failure closes the upstream one. A client treats a
//! closed connection as retriable and resends Produce with the same sequence numbers;
//! inventing an error response instead could turn a retriable situation into data loss.
//!
//! Each request goes through the filter chain only if a filter asked for its API; every
//! other request is forwarded as the bytes it came as. Answers leave in request order,
//! whoever gives them (see `in_flight`).
//!
//! When the node stops, it first redirects (see `redirect`): a Produce or Fetch is
//! answered with a retriable NOT_LEADER_OR_FOLLOWER that sends the client to the
//! identity's new owner, and a connection that gets a second one closes. Then each
//! connection reads no further request, sends what it still owes the client, and closes;
//! requests it never read are the client's to retry elsewhere.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures::StreamExt;
use kafka_protocol::messages::ApiKey;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use super::auth::passthrough::{Passthrough, RawFrame};
use super::auth::terminate::Terminator;
use super::auth::Gate;
use super::chain::Outcome;
use super::clients::{Phase, StopSignal};
use super::filter::{Listener, Session, Transport};
use super::filters::zone;
use super::in_flight::{Forwarded, InFlight, Owed};
use super::redirect;
use crate::backend::{Exchange, Link, Login, Purpose, Session as LoginSession};
use crate::context::Context;
use crate::metrics::ConnectionMetrics;
use crate::monitoring::connection::{ConnectionTraffic, RequestTally, ResponseTally, Site};
use crate::protocol::frame::{write_frame, FrameCodec, FrameError, SIZE_PREFIX};
use crate::protocol::header::{self, HeaderError, RequestMeta};
use crate::stream::{ReadHalf, Stream, WriteHalf};

/// Why a connection ended; logged once per connection and counted by [`Close::label`].
#[derive(Debug)]
enum Close {
    ClientClosed,
    UpstreamClosed,
    Idle(Duration),
    NoUpstream(String),
    UpstreamLogin(String),
    TlsHandshake(String),
    /// A request the client may not send yet (before its login, after its session).
    Unauthenticated(String),
    /// A SASL login failed; closed once its answer (and any owed before it) is sent.
    LoginFailed(String),
    ClientFrame(FrameError),
    BadRequest(HeaderError),
    UpstreamFrame(FrameError),
    BadResponse(String),
    Filter {
        filter: &'static str,
        reason: String,
    },
    ClientWrite(std::io::Error),
    UpstreamWrite(std::io::Error),
    Fenced,
    BackendUnreachable,
    /// The node is stopping and the connection owed the client nothing more.
    Stopped,
    /// The node stopped before the broker answered everything forwarded.
    StopDeadline,
}

impl Close {
    fn label(&self) -> &'static str {
        match self {
            Close::ClientClosed => "client_closed",
            Close::UpstreamClosed => "upstream_closed",
            Close::Idle(_) => "idle",
            Close::NoUpstream(_) => "no_upstream",
            Close::TlsHandshake(_) => "tls_handshake",
            Close::UpstreamLogin(_) => "upstream_login",
            Close::Unauthenticated(_) => "unauthenticated",
            Close::LoginFailed(_) => "login_failed",
            Close::ClientFrame(e) if e.kind() == "io" => "client_io",
            Close::ClientFrame(_) | Close::BadRequest(_) => "bad_request",
            Close::UpstreamFrame(_) | Close::BadResponse(_) => "bad_response",
            Close::Filter { .. } => "filter",
            Close::ClientWrite(_) => "client_io",
            Close::UpstreamWrite(_) => "upstream_io",
            Close::Fenced => "fenced",
            Close::BackendUnreachable => "backend_unreachable",
            Close::Stopped => "node_stopped",
            Close::StopDeadline => "node_stop_deadline",
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
        matches!(self, Close::ClientClosed | Close::Idle(_) | Close::Stopped)
    }

    /// Whether the answers already owed go out before the connection closes.
    fn sends_what_is_owed(&self) -> bool {
        matches!(self, Close::Stopped | Close::LoginFailed(_))
    }
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Close::ClientClosed => write!(f, "client closed the connection"),
            Close::UpstreamClosed => write!(f, "broker closed the connection"),
            Close::Idle(after) => write!(f, "idle for {after:?} with nothing in flight"),
            Close::NoUpstream(e) => write!(f, "no broker connection: {e}"),
            Close::TlsHandshake(e) => write!(f, "TLS handshake failed: {e}"),
            Close::UpstreamLogin(e) => write!(f, "renewing the proxy's broker login: {e}"),
            Close::Unauthenticated(e) | Close::LoginFailed(e) => write!(f, "{e}"),
            Close::ClientFrame(e) => write!(f, "bad frame from client: {e}"),
            Close::BadRequest(e) => write!(f, "refused request: {e}"),
            Close::UpstreamFrame(e) => write!(f, "bad frame from broker: {e}"),
            Close::BadResponse(e) => write!(f, "bad response from broker: {e}"),
            Close::Filter { filter, reason } => write!(f, "filter {filter}: {reason}"),
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
            Close::Stopped => write!(f, "node is stopping; every answer owed was sent"),
            Close::StopDeadline => write!(
                f,
                "node stopped before the broker answered every forwarded request"
            ),
        }
    }
}

/// Serves one accepted client connection until either side ends it.
pub async fn serve(
    ctx: Arc<Context>,
    client: TcpStream,
    peer: SocketAddr,
    listener: Listener,
    transport: Transport,
) {
    let identity = match listener {
        Listener::Bootstrap => "bootstrap".to_string(),
        Listener::Identity { slot } => ctx
            .directory
            .identity_of_slot(slot)
            .map_or_else(|| format!("slot-{slot}"), |id| id.to_string()),
    };
    let mut metrics = ctx.metrics.connection(&identity);
    tracing::info!(%peer, %identity, "connection opened");
    let started = Instant::now();
    let registration = ctx.clients.register(peer, &identity);
    let mut session = Session::new(peer, listener, transport);
    let (close, principal) = match secure(&ctx, client, &mut session).await {
        Ok(client) => {
            let traffic = ConnectionTraffic::new(
                ctx.traffic.clone(),
                registration.connection.clone(),
                session.principal.as_deref(),
                site(&ctx, listener),
            );
            let session = ArcSwap::from_pointee(session);
            let close = run(&ctx, client, &session, &traffic, &mut metrics).await;
            (close, session.load().principal.clone())
        }
        Err(close) => (close, None),
    };
    let principal = principal.as_deref().unwrap_or("-");
    ctx.metrics.connection_closed(close.label());
    if let Some(kind) = close.protocol_error() {
        ctx.metrics.protocol_error(kind);
    }
    let lifetime = started.elapsed();
    if close.is_routine() {
        tracing::info!(%peer, %identity, principal, ?lifetime, reason = %close, "connection closed");
    } else {
        tracing::warn!(%peer, %identity, principal, ?lifetime, reason = %close, "connection closed");
    }
}

/// Where the connection runs, for the zone byte counters; `None` on a node with no zone.
fn site(ctx: &Context, listener: Listener) -> Option<Site> {
    let node_zone = ctx.config.cluster.as_ref()?.zone.as_deref()?;
    let rack = match listener {
        Listener::Bootstrap => "bootstrap".to_string(),
        Listener::Identity { slot } => ctx
            .directory
            .rack_of_slot(slot)
            .unwrap_or_else(|| "none".into()),
    };
    Some(Site::new(&ctx.traffic, node_zone, &rack))
}

/// Places the client in its zone for the zone byte counters, as filters would now.
fn place(shared: &Shared<'_>) {
    if !shared.traffic.counts_zones() {
        return;
    }
    let session = shared.session.load();
    let control = shared.ctx.control.load();
    let placement = &shared.ctx.directory.placement;
    let zone = zone::client_zone(&session, &control, placement);
    shared.traffic.place(zone.as_deref());
}

/// What both directions of one connection share.
struct Shared<'a> {
    ctx: &'a Context,
    session: &'a ArcSwap<Session>,
    in_flight: InFlight,
    /// The request side has stopped for good (the node is stopping): the response side
    /// ends once nothing more is owed.
    requests_done: AtomicBool,
    /// SASL between the client and its broker, as far as the proxy follows it; touched
    /// only by SASL messages.
    passthrough: Mutex<Passthrough>,
    /// The broker's answers to the proxy's own login renewals, for the request side;
    /// only where the proxy renews a login.
    login_answers: Option<mpsc::UnboundedSender<Bytes>>,
    /// This connection's share of the traffic metrics.
    traffic: &'a ConnectionTraffic,
}

impl Shared<'_> {
    /// The request side is done for good; the response side ends once nothing is owed,
    /// and the connection closes for `close`.
    fn stop_requests(&self, close: Close) -> Close {
        self.requests_done.store(true, Ordering::Release);
        self.in_flight.wake();
        close
    }

    fn passthrough(&self) -> MutexGuard<'_, Passthrough> {
        self.passthrough.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A login succeeded: the client is `principal` from now on.
    fn authenticated(&self, principal: String) {
        let session = self.session.load();
        tracing::debug!(peer = %session.peer, %principal, "client authenticated");
        self.traffic.set_principal(&principal);
        self.session.rcu(|s| Session {
            principal: Some(principal.clone()),
            ..Session::clone(s)
        });
    }
}

/// The client's stream as the listener wants it: TLS after a handshake (which may name the
/// client's principal, from its certificate), or the TCP stream itself.
async fn secure(ctx: &Context, client: TcpStream, session: &mut Session) -> Result<Stream, Close> {
    let (Transport::Tls, Some(tls)) = (session.transport, &ctx.tls) else {
        return Ok(Stream::Tcp(client));
    };
    let failed = |reason: String| {
        ctx.metrics.security.tls_handshake_failures.inc();
        Close::TlsHandshake(reason)
    };
    let deadline = tls.handshake_timeout();
    let handshake = async {
        // A TLS client opens with a handshake record (content type 22); anything else is
        // most likely a plaintext Kafka client, which deserves a plainer message.
        let mut first = [0u8; 1];
        if client.peek(&mut first).await? == 1 && first[0] != 22 {
            return Err(std::io::Error::other(
                "the client did not start TLS: a plaintext client on a TLS port? \
                 (check its security.protocol)",
            ));
        }
        tls.acceptor().accept(client).await
    };
    // Boxed: a TLS session is large, and a plaintext connection's future need not carry
    // room for one.
    let stream = match tokio::time::timeout(deadline, Box::pin(handshake)).await {
        Err(_) => return Err(failed(format!("not done within {deadline:?}"))),
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Ok(Ok(stream)) => stream,
    };
    let (_, connection) = stream.get_ref();
    if let Some(leaf) = connection.peer_certificates().and_then(|c| c.first()) {
        session.principal = crate::tls::principal_of(leaf);
    }
    Ok(Stream::Tls(Box::new(stream)))
}

async fn run(
    ctx: &Context,
    client: Stream,
    session: &ArcSwap<Session>,
    traffic: &ConnectionTraffic,
    metrics: &mut ConnectionMetrics,
) -> Close {
    let mut cut_off = ctx.fleet.as_ref().map(|f| f.watch_cut_off());
    if cut_off.as_ref().is_some_and(|c| *c.borrow()) {
        return Close::BackendUnreachable;
    }
    let (link, candidates) = match upstream_of(ctx, &session.load()) {
        Ok(found) => found,
        Err(e) => return Close::NoUpstream(e),
    };
    let (upstream, login) = match connect_upstream(ctx, &link, candidates, &session.load()).await {
        Ok(connected) => connected,
        Err(e) => return Close::NoUpstream(e),
    };
    let (renewal, login_answers) = match login.and_then(|session| session.renew_after()) {
        Some(renew_after) => {
            let login = link.login_for(Purpose::ProxyAuthenticates);
            let (sender, answers) = mpsc::unbounded_channel();
            let renewal = login.map(|login| Renewal::new(login, renew_after, answers));
            (renewal, Some(sender))
        }
        None => (None, None),
    };
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let shared = Shared {
        ctx,
        session,
        in_flight: InFlight::default(),
        requests_done: AtomicBool::new(false),
        passthrough: Mutex::default(),
        login_answers,
        traffic,
    };
    let bytes_out = metrics.bytes_out.clone();
    let stop = ctx.clients.stop_signal();
    let requests = forward_requests(
        &shared,
        &stop,
        (client_read, upstream_write),
        renewal,
        (metrics, traffic.requests()),
    );
    let responses = forward_responses(
        &shared,
        upstream_read,
        client_write,
        (&bytes_out, traffic.responses()),
    );
    tokio::pin!(responses);
    let closing = stop.reached(Phase::Closing);
    tokio::pin!(closing);
    tokio::select! {
        close = requests => match close {
            // Finish sending what is owed; the response side ends when nothing is.
            close if close.sends_what_is_owed() => tokio::select! {
                sent = &mut responses => match sent {
                    Close::Stopped => close,
                    failed => failed,
                },
                () = &mut closing => Close::StopDeadline,
            },
            close => close,
        },
        close = &mut responses => close,
        close = cut_off_from_backend(cut_off.as_mut()) => close,
        () = &mut closing => Close::StopDeadline,
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

/// How to reach the broker a connection forwards to, and its address (for a bootstrap
/// connection, every broker of the cluster `default` to try in turn).
fn upstream_of(ctx: &Context, session: &Session) -> Result<(Arc<Link>, Vec<String>), String> {
    let Listener::Identity { slot } = session.listener else {
        return Ok((ctx.backend.clone(), ctx.bootstrap_candidates()));
    };
    let (Some(address), Some(cluster)) = (
        ctx.directory.upstream(slot),
        ctx.directory.cluster_of_slot(slot),
    ) else {
        return Err(format!("identity slot {slot} has no broker"));
    };
    match ctx.clusters.get(&cluster) {
        Some(backend) => Ok((backend.link.clone(), vec![address])),
        None => Err(format!(
            "identity slot {slot} is a broker of backend cluster {cluster}, which this \
             node's configuration does not name ([backend.clusters.{cluster}])"
        )),
    }
}

async fn connect_upstream(
    ctx: &Context,
    link: &Link,
    candidates: Vec<String>,
    session: &Session,
) -> Result<(Stream, Option<LoginSession>), String> {
    let purpose = match ctx.sasl_termination(session.transport) {
        Some(_) => Purpose::ProxyAuthenticates,
        None => Purpose::ClientAuthenticates,
    };
    let mut errors = Vec::new();
    for address in candidates {
        match link.connect(&address, purpose).await {
            Ok(connected) => return Ok(connected),
            Err(e) => {
                ctx.metrics.upstream_connect_failures.inc();
                errors.push(format!("{address}: {e:#}"));
            }
        }
    }
    Err(errors.join("; "))
}

/// Client to broker: check each request's header, run it through the filters that want
/// it, and forward it, or queue the proxy's own answer in its place.
async fn forward_requests(
    shared: &Shared<'_>,
    stop: &StopSignal<'_>,
    (client, mut upstream): (ReadHalf, WriteHalf),
    mut renewal: Option<Renewal<'_>>,
    (metrics, mut tally): (&mut ConnectionMetrics, RequestTally<'_>),
) -> Close {
    let ctx = shared.ctx;
    let idle_timeout = ctx.limits.idle_timeout;
    let fence_epoch = ctx.fence.as_ref().map(|f| f.epoch());
    let mut frames = FramedRead::new(client, FrameCodec::new(ctx.limits.max_request_bytes));
    let stopping = stop.reached(Phase::Stopping);
    tokio::pin!(stopping);
    // The client id as last put in the session; clients repeat it in every header.
    let mut client_id = None;
    let mut terminator = ctx
        .sasl_termination(shared.session.load().transport)
        .map(|settings| Terminator::new(settings, &ctx.control, &ctx.metrics));
    // A v0 SaslHandshake was forwarded: raw SASL tokens may come next.
    let mut awaiting_raw = false;
    // The first Fetch may name the client's rack, which places it in a zone.
    let mut fetched = false;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle_timeout, frames.next()) => next,
            () = &mut stopping => return shared.stop_requests(Close::Stopped),
        };
        let frame = match next {
            Err(_) if shared.in_flight.is_empty() => return Close::Idle(idle_timeout),
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
        if awaiting_raw {
            match raw_token(shared, &frame) {
                Err(reason) => return Close::Unauthenticated(reason),
                Ok(true) => {
                    if let Err(e) = write_frame(&mut upstream, frame).await {
                        return Close::UpstreamWrite(e);
                    }
                    continue;
                }
                Ok(false) => awaiting_raw = false,
            }
        }
        let request = match header::parse_request(&frame) {
            Ok(request) => request,
            Err(e) => return Close::BadRequest(e),
        };
        let acks = match request.api_key {
            ApiKey::Produce => match header::produce_acks(&frame, &request) {
                Ok(acks) => Some(acks),
                Err(e) => return Close::BadRequest(e),
            },
            _ => None,
        };
        let expects_response = acks != Some(0);
        // Produce and Fetch latency runs from here to the response written back.
        let received =
            matches!(request.api_key, ApiKey::Produce | ApiKey::Fetch).then(Instant::now);
        let frame_bytes = (SIZE_PREFIX + frame.len()) as u64;
        metrics.request(&ctx.metrics, request.api_key);
        metrics.bytes_in.inc_by(frame_bytes);
        tally.on_request(&request, &frame, frame_bytes, acks.unwrap_or(-1));
        if ctx.clients.phase() == Phase::Redirecting && expects_response {
            if let Some(answer) = redirect::answer(&request, &frame) {
                shared.in_flight.push(Owed::Proxy(answer));
                return shared.stop_requests(Close::Stopped);
            }
        }
        if request.client_id != client_id {
            client_id = request.client_id.clone();
            remember_client_id(shared.session, &client_id);
            shared.traffic.set_client_id(client_id.as_deref());
            place(shared);
        }
        match authenticate(
            shared,
            terminator.as_mut(),
            &request,
            &frame,
            &mut awaiting_raw,
        )
        .await
        {
            Gate::Pass => {}
            Gate::Answer(answer) => {
                shared.in_flight.push(Owed::Proxy(answer));
                continue;
            }
            Gate::AnswerThenClose(answer, reason) => {
                shared.in_flight.push(Owed::Proxy(answer));
                return shared.stop_requests(Close::LoginFailed(reason));
            }
            Gate::Close(reason) => return Close::Unauthenticated(reason),
        }
        let forwarded = Forwarded {
            correlation_id: request.correlation_id,
            api_key: request.api_key,
            api_version: request.api_version,
            received,
        };
        let outcome = if ctx
            .chain
            .wants_request(request.api_key, request.api_version)
        {
            let session = shared.session.load_full();
            ctx.chain.on_request(request, frame, &session).await
        } else {
            Outcome::Forward(frame)
        };
        let frame = match outcome {
            Outcome::Forward(frame) => frame,
            Outcome::Answer(answer) => {
                if expects_response {
                    shared.in_flight.push(Owed::Proxy(answer));
                }
                continue;
            }
            Outcome::Close { filter, reason } => return Close::Filter { filter, reason },
        };
        let fetch = forwarded.api_key == ApiKey::Fetch;
        if forwarded.api_key == ApiKey::Metadata || (fetch && !fetched) {
            fetched |= fetch;
            place(shared);
        }
        if let Some(renewal) = renewal.as_mut().filter(|r| r.is_due()) {
            // Boxed: a rare, large future the connection's own need not carry.
            if let Err(e) = Box::pin(renewal.renew(shared, &mut upstream)).await {
                return Close::UpstreamLogin(format!("{e:#}"));
            }
        }
        if expects_response {
            shared.in_flight.push(Owed::Broker(forwarded));
        }
        if let Err(e) = write_frame(&mut upstream, frame).await {
            return Close::UpstreamWrite(e);
        }
    }
}

/// The proxy's login on a client's broker connection, renewed before the broker's session
/// lifetime ends (KIP-368), between two of the client's requests.
struct Renewal<'a> {
    login: &'a Login,
    due: Instant,
    renew_after: Duration,
    answers: mpsc::UnboundedReceiver<Bytes>,
}

impl<'a> Renewal<'a> {
    fn new(
        login: &'a Login,
        renew_after: Duration,
        answers: mpsc::UnboundedReceiver<Bytes>,
    ) -> Renewal<'a> {
        Renewal {
            login,
            due: Instant::now() + renew_after,
            renew_after,
            answers,
        }
    }

    fn is_due(&self) -> bool {
        Instant::now() >= self.due
    }

    async fn renew(&mut self, shared: &Shared<'_>, upstream: &mut WriteHalf) -> anyhow::Result<()> {
        let mut relay = Relay {
            shared,
            upstream,
            answers: &mut self.answers,
        };
        let session = self.login.run(&mut relay).await?;
        self.renew_after = session.renew_after().unwrap_or(self.renew_after);
        self.due = Instant::now() + self.renew_after;
        Ok(())
    }
}

/// The proxy's own requests on a client's connection: each keeps its place in the order
/// of answers, and its answer comes back through the response side.
struct Relay<'r, 'c> {
    shared: &'r Shared<'c>,
    upstream: &'r mut WriteHalf,
    answers: &'r mut mpsc::UnboundedReceiver<Bytes>,
}

impl Exchange for Relay<'_, '_> {
    async fn exchange(&mut self, request: Bytes) -> anyhow::Result<Bytes> {
        self.shared.in_flight.push(Owed::Login);
        write_frame(self.upstream, request).await?;
        self.answers
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("the connection ended during the login"))
    }
}

/// What authentication says of a request: the fleet's own SASL server decides where it
/// terminates SASL; otherwise SASL messages are noted on their way to the broker.
async fn authenticate(
    shared: &Shared<'_>,
    terminator: Option<&mut Terminator<'_>>,
    request: &RequestMeta,
    frame: &Bytes,
    awaiting_raw: &mut bool,
) -> Gate {
    if let Some(terminator) = terminator {
        if let Some(gate) = terminator.admits(request.api_key) {
            return gate;
        }
        // Boxed: logins are rare and their future is large.
        let (gate, principal) = Box::pin(terminator.gate(request, frame)).await;
        if let Some(principal) = principal {
            shared.authenticated(principal);
        }
        return gate;
    }
    if matches!(
        request.api_key,
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    ) {
        shared.passthrough().on_request(request, frame);
        *awaiting_raw |= request.api_key == ApiKey::SaslHandshake && request.api_version == 0;
    }
    Gate::Pass
}

/// After a v0 SaslHandshake: whether `frame` is a raw SASL token (queued as such, to be
/// forwarded as it is) rather than a Kafka request.
fn raw_token(shared: &Shared<'_>, frame: &Bytes) -> Result<bool, String> {
    let mut passthrough = shared.passthrough();
    match passthrough.next_request()? {
        RawFrame::Kafka => Ok(false),
        RawFrame::Token => {
            passthrough.on_raw_request(frame);
            shared.in_flight.push(Owed::Raw);
            Ok(true)
        }
    }
}

/// Clients send their id in every request header; the session keeps the latest, replaced
/// only when it changes (normally once, on the first request).
fn remember_client_id(
    session: &ArcSwap<Session>,
    client_id: &Option<kafka_protocol::protocol::StrBytes>,
) {
    session.rcu(|s| Session {
        client_id: client_id.clone(),
        ..Session::clone(s)
    });
}

/// Broker to client: send each answer owed in turn. A broker response is matched to the
/// request it answers and passed through the filters that want it.
async fn forward_responses(
    shared: &Shared<'_>,
    upstream: ReadHalf,
    mut client: WriteHalf,
    (bytes_out, mut tally): (&prometheus::IntCounter, ResponseTally<'_>),
) -> Close {
    let ctx = shared.ctx;
    let mut frames = FramedRead::new(upstream, FrameCodec::new(ctx.limits.max_response_bytes));
    // A broker frame read while nothing seemed owed: the request side queued its entry
    // in the same instant. It is matched on the next turn, after any answer queued first.
    let mut early: Option<Bytes> = None;
    loop {
        // A broker's answer to a Produce or Fetch, counted once it is written.
        let mut answered = None;
        let frame = match shared.in_flight.front() {
            Some(Owed::Proxy(answer)) => {
                shared.in_flight.pop();
                answer
            }
            Some(Owed::Login) => {
                let frame = match take_frame(&mut early, &mut frames).await {
                    Ok(frame) => frame,
                    Err(close) => return close,
                };
                shared.in_flight.pop();
                // The request side waits for it; if it has gone, so has the connection.
                if let Some(answers) = &shared.login_answers {
                    let _ = answers.send(frame);
                }
                continue;
            }
            Some(Owed::Raw) => {
                let frame = match take_frame(&mut early, &mut frames).await {
                    Ok(frame) => frame,
                    Err(close) => return close,
                };
                shared.in_flight.pop();
                if let Some(principal) = shared.passthrough().on_raw_response() {
                    shared.authenticated(principal);
                }
                frame
            }
            Some(Owed::Broker(forwarded)) => {
                let frame = match take_frame(&mut early, &mut frames).await {
                    Ok(frame) => frame,
                    Err(close) => return close,
                };
                shared.in_flight.pop();
                match broker_answer(shared, forwarded, frame) {
                    Ok(frame) => {
                        answered = forwarded.received.map(|at| (forwarded, at, frame.clone()));
                        frame
                    }
                    Err(close) => return close,
                }
            }
            None if early.is_some() => {
                return Close::BadResponse("a response arrived with no request in flight".into())
            }
            None if shared.requests_done.load(Ordering::Acquire) => return Close::Stopped,
            None => {
                tokio::select! {
                    next = next_frame(&mut frames) => match next {
                        Ok(frame) => early = Some(frame),
                        Err(close) => return close,
                    },
                    () = shared.in_flight.pushed() => {}
                }
                continue;
            }
        };
        let frame_bytes = (SIZE_PREFIX + frame.len()) as u64;
        bytes_out.inc_by(frame_bytes);
        if let Err(e) = write_frame(&mut client, frame).await {
            return Close::ClientWrite(e);
        }
        tally.on_written(frame_bytes);
        if let Some((forwarded, received, frame)) = answered {
            let (api_key, version) = (forwarded.api_key, forwarded.api_version);
            tally.on_response(api_key, version, &frame, received);
        }
    }
}

/// The broker's next frame: the one read early, if any, else the next from the socket.
async fn take_frame(
    early: &mut Option<Bytes>,
    frames: &mut FramedRead<ReadHalf, FrameCodec>,
) -> Result<Bytes, Close> {
    match early.take() {
        Some(frame) => Ok(frame),
        None => next_frame(frames).await,
    }
}

async fn next_frame(frames: &mut FramedRead<ReadHalf, FrameCodec>) -> Result<Bytes, Close> {
    match frames.next().await {
        None => Err(Close::UpstreamClosed),
        Some(Err(e)) => Err(Close::UpstreamFrame(e)),
        Some(Ok(frame)) => Ok(frame),
    }
}

/// Checks that a broker response answers `forwarded`, and runs it through the filters.
fn broker_answer(shared: &Shared<'_>, forwarded: Forwarded, frame: Bytes) -> Result<Bytes, Close> {
    let correlation_id = header::response_correlation_id(&frame);
    if correlation_id != Some(forwarded.correlation_id) {
        return Err(Close::BadResponse(format!(
            "correlation id {correlation_id:?} where {} was expected",
            forwarded.correlation_id
        )));
    }
    if matches!(
        forwarded.api_key,
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    ) {
        let (api_key, version) = (forwarded.api_key, forwarded.api_version);
        if let Some(principal) = shared.passthrough().on_response(api_key, version, &frame) {
            shared.authenticated(principal);
        }
    }
    let chain = &shared.ctx.chain;
    if !chain.wants_response(forwarded.api_key, forwarded.api_version) {
        return Ok(frame);
    }
    let session = shared.session.load();
    chain
        .on_response(forwarded.api_key, forwarded.api_version, frame, &session)
        .map_err(|(filter, reason)| Close::Filter { filter, reason })
}
