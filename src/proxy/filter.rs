//! The request pipeline's one extension point: a [`Filter`] sees the requests and responses
//! of the API keys it asks for, and decides what happens to each.
//!
//! Every governance feature (breakers, quotas, ACLs, routing, offset resets, zones) is a
//! filter, and so are the address rewrites every proxy needs. They share one shape, in the
//! manner of pingora's `ProxyHttp`: hooks with no-op defaults, a per-connection
//! [`Session`], the committed control state as a snapshot, and a [`Verdict`] that can end
//! the chain early. What a filter does not ask for never reaches it: a request or
//! response of an API no filter wants is forwarded as the bytes it arrived as, with no
//! decoding and no allocation, so a feature costs nothing for traffic it does not touch.
//!
//! A filter never writes to a socket and never waits on a lock: it reads the request
//! (decoded lazily, and safely, on first use), the session and the snapshot, and returns
//! its verdict. The connection loop keeps the connection's answers in request order
//! whatever the verdicts are (see `in_flight`).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_raft::ControlState;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use kafka_protocol::protocol::StrBytes;

pub use super::filters::zone::ConnectionRack;
pub use super::filters::ConnectionQuota;
use super::message::{Request, Response};
pub use crate::stream::Transport;

/// What happens to a request after a filter has seen it.
#[derive(Debug)]
pub enum Verdict {
    /// On to the next filter, then to the broker (possibly rewritten in place).
    Forward,
    /// The proxy answers the client with this response body; no further filter sees the
    /// request and the broker never does. The answer keeps the request's place in the
    /// connection's order. Build error answers with `protocol::error_response`. An acks=0
    /// Produce gets no answer at all: it is dropped.
    Answer(Box<ResponseKind>),
    /// Hold the request this long (a throttle), then go on down the chain. The connection
    /// reads nothing more from the client meanwhile, as a broker mutes a throttled channel.
    Delay(Duration),
    /// Hold the request this long, then answer it as [`Verdict::Answer`] does: for a
    /// request the proxy refuses for now and whose client would otherwise retry at once
    /// (a held Produce, a Fetch with nothing it may read, like a broker's long poll). The
    /// connection reads nothing more from the client meanwhile.
    AnswerAfter(Duration, Box<ResponseKind>),
    /// Close the client connection; the reason is logged with the filter's name. Clients
    /// treat a closed connection as retriable, so this is the safe refusal for a Produce.
    Close(String),
    /// Answer with what this exchange gets from another backend cluster than the one
    /// behind the connection (or from several): its body goes through the response
    /// filters as a broker's answer would, then to the client in the request's place. The
    /// connection reads nothing more from the client meanwhile. An error closes the
    /// connection, which clients retry.
    Exchange(Exchange),
}

/// A filter's request to backend clusters on the client's behalf: resolves to the
/// answer's body, or why there is none.
pub struct Exchange(Pin<Box<dyn Future<Output = Result<ResponseKind, String>> + Send>>);

impl Exchange {
    pub fn new(
        exchange: impl Future<Output = Result<ResponseKind, String>> + Send + 'static,
    ) -> Exchange {
        Exchange(Box::pin(exchange))
    }

    pub async fn run(self) -> Result<ResponseKind, String> {
        self.0.await
    }
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exchange")
    }
}

/// Which listener a client connected to, and so which broker it is forwarded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Any healthy broker: clients only bootstrap (Metadata, ApiVersions) through it.
    Bootstrap,
    /// The broker behind identity slot `slot`.
    Identity { slot: u16 },
}

/// What is known of one client connection; every filter reads the same one.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: SocketAddr,
    pub listener: Listener,
    pub transport: Transport,
    /// The client id of the latest request (clients send it in every header).
    pub client_id: Option<StrBytes>,
    /// Who the client is, as Kafka names principals (`User:alice`); `None` until the
    /// connection authenticates (SASL, or a client certificate).
    pub principal: Option<String>,
    /// What filters keep between a request and its response; shared by every snapshot
    /// of this connection's session.
    pub notes: Arc<RequestNotes>,
    /// The connection's quota state (until when it is muted, the quotas that govern it);
    /// shared by every snapshot of this connection's session.
    pub quota: Arc<ConnectionQuota>,
    /// Whether the client names its own rack in Fetches; shared by every snapshot of this
    /// connection's session.
    pub rack: Arc<ConnectionRack>,
    /// When the connection was accepted, in wall-clock milliseconds (compared with
    /// instants in the control state, which are wall-clock too).
    pub opened_at_ms: u64,
}

/// What a filter takes out of a request to put back into its response (the entries it
/// answered itself), kept by filter name and correlation id. Responses of requests no
/// filter left a note for look it up without taking the lock.
#[derive(Default)]
pub struct RequestNotes {
    count: AtomicUsize,
    notes: Mutex<HashMap<NoteKey, Box<dyn Any + Send>>>,
}

/// A filter's name and a request's correlation id.
type NoteKey = (&'static str, i32);

impl std::fmt::Debug for RequestNotes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestNotes({})", self.count.load(Ordering::Relaxed))
    }
}

impl RequestNotes {
    /// Keeps `note` until the response to request `correlation_id` comes back. A request
    /// that gets no response (acks=0) must not leave one.
    pub fn leave(&self, filter: &'static str, correlation_id: i32, note: impl Any + Send) {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if notes
            .insert((filter, correlation_id), Box::new(note))
            .is_none()
        {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether no note waits for a response.
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// The note left for the response to `correlation_id`, if any.
    pub fn take<T: Any>(&self, filter: &'static str, correlation_id: i32) -> Option<T> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let note = notes.remove(&(filter, correlation_id))?;
        self.count.fetch_sub(1, Ordering::AcqRel);
        note.downcast().ok().map(|note| *note)
    }
}

impl Session {
    pub fn new(peer: SocketAddr, listener: Listener, transport: Transport) -> Session {
        Session {
            peer,
            listener,
            transport,
            client_id: None,
            principal: None,
            notes: Arc::default(),
            quota: Arc::default(),
            rack: Arc::default(),
            opened_at_ms: flotilla_raft::governance::unix_millis(),
        }
    }
}

/// What a filter may read besides the message itself.
pub struct Env<'a> {
    pub session: &'a Session,
    /// The control state as last committed and applied on this node.
    pub control: &'a ControlState,
}

/// One stage of the request pipeline. Hooks default to doing nothing, so a filter
/// implements only the ones it needs.
pub trait Filter: Send + Sync + 'static {
    /// A short stable name, for logs and the `filter` label of metrics.
    fn name(&self) -> &'static str;

    /// Whether the filter has anything to do under this committed control state (a
    /// governance filter with nothing configured has not). Asked once per state change,
    /// never per request; an inactive filter is skipped, and a message no active filter
    /// wants is forwarded as its bytes without entering the chain.
    fn is_active(&self, _control: &ControlState) -> bool {
        true
    }

    /// Whether requests of this API and version go through [`Filter::on_request`]. Asked
    /// once per API and version when the chain is built, never per request.
    fn wants_request(&self, _api_key: ApiKey, _version: i16) -> bool {
        false
    }

    /// Whether responses of this API and version go through [`Filter::on_response`].
    fn wants_response(&self, _api_key: ApiKey, _version: i16) -> bool {
        false
    }

    fn on_request(&self, _request: &mut Request, _env: &Env) -> Verdict {
        Verdict::Forward
    }

    /// Edits a broker response on its way to the client. An error closes the connection.
    fn on_response(&self, _response: &mut Response, _env: &Env) -> Result<(), String> {
        Ok(())
    }
}
