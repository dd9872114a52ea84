//! Topic circuit breakers: the fleet stops Produce and Fetch traffic of chosen topics at
//! the proxy, to protect the brokers, without failing the clients unless told to.
//!
//! Breakers are in the committed control state (`proxyctl breaker open`, or a rule's
//! automatic trip), so every node enforces the same ones, each by its own clock for a
//! breaker's end (`--for`, a rule's cool-down). Other topics of the same request are
//! untouched: the covered topics are taken out on the way to the broker and answered in
//! the merged response (`partial`); a request every topic of which is covered never
//! reaches the broker.
//!
//! What clients get, per API and mode, and why:
//!
//! - Produce, `hold`: every partition of the topic gets NOT_ENOUGH_REPLICAS (19), with the
//!   breaker's reason as the error message where the version has one (v8+). Both client
//!   families retry exactly this code without side effects: librdkafka
//!   (`rd_kafka_handle_Produce_error`) maps it to RETRY | MSG_NOT_PERSISTED with no
//!   metadata refresh, and its idempotent producer drains the partition's in-flight
//!   requests and resends the same batch with the same sequence numbers (no epoch bump);
//!   the Java producer's `NotEnoughReplicasException` is a `RetriableException` and not an
//!   `InvalidMetadataException`, so `Sender.canRetry` re-enqueues the batch as it was and
//!   no metadata update is requested. Records stay in the client until the breaker closes
//!   or its `delivery.timeout.ms` / `message.timeout.ms` runs out. THROTTLING_QUOTA_EXCEEDED
//!   was the other candidate; librdkafka treats it as permanent for Produce.
//!   When every topic of the request is held, the answer waits [`HOLD_PAUSE`] and carries
//!   it as `throttle_time_ms`, so clients do not spin (librdkafka ignores the throttle
//!   time, the Java client also waits it out). When only some are, the broker's response
//!   keeps its own throttle time: KIP-219 clients apply it to the whole connection, which
//!   would slow the topics the breaker does not cover.
//! - Produce, `reject`: POLICY_VIOLATION (44), not retriable, with the message "topic X is
//!   closed by a flotilla circuit breaker: REASON" (v8+); the application's delivery
//!   report or callback gets it. Answered at once.
//! - Fetch, either mode: the topic's partitions come back with no error and no records,
//!   high watermark -1. A request that asks only for covered topics is answered after
//!   the fetch's own `max_wait_ms` (bounded to [`MIN_FETCH_WAIT`]..[`MAX_FETCH_WAIT`]), as a
//!   broker's long poll would be, with that as `throttle_time_ms`. `reject` holds fetches
//!   too: no fetch error code means "closed by policy" to consumers (the Java consumer
//!   throws IllegalStateException on an unexpected one), and an empty fetch loses nothing.
//!   Fetch sessions (KIP-227) need care, since an incremental fetch does not name the
//!   partitions it keeps fetching: a full fetch naming a covered topic goes on sessionless
//!   (epoch -1), so no broker session holds the topic; an incremental fetch naming one, or
//!   whose response carries records of one, is answered FETCH_SESSION_ID_NOT_FOUND (70),
//!   which makes the client start over with a full fetch (librdkafka uses no sessions).
//! - acks=0 Produce has no response: the covered topics' batches are dropped (the rest of
//!   the request goes on), counted in `flotilla_breaker_dropped_batches_total`, and a
//!   request all of whose topics are held still waits [`HOLD_PAUSE`], which slows the
//!   producer down as a full socket would. Such a producer cannot be told; that is what
//!   acks=0 means.
//!
//! Topics named by id (Fetch v13+, Produce v13+) are named through the ids this node saw
//! in Metadata responses (`topic_names`). A client may have had its Metadata through
//! another node: while a breaker is in force, an id this node cannot name is held like a
//! covered topic (retriable for Produce, empty for Fetch) and the node asks the backend
//! for every id at once (`cluster::breakers`), so the hold lasts one round trip for
//! topics no breaker covers. An id the backend does not know either (a deleted topic)
//! stays held while breakers are in force, where a broker would answer UNKNOWN_TOPIC_ID.
//!
//! Automatic rules need per-topic figures: while a rule exists, the filter measures the
//! produce bytes it forwards and the partition errors brokers return, for the topics a
//! rule watches only ([`meter`]); the Raft leader sums them over the fleet and trips
//! (`cluster::breakers`).
//!
//! With no breaker and no rule, a request costs one check of two empty maps: nothing is
//! decoded and no lock is taken.

mod fetch;
pub mod meter;
mod produce;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use flotilla_raft::governance::{Breaker, BreakerMode};
use flotilla_raft::ControlState;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use prometheus::IntCounter;

use self::meter::TopicMeter;
use super::topic_names::TopicNames;
use crate::metrics::Metrics;
use crate::proxy::filter::{Env, Filter, Verdict};
use crate::proxy::message::{Request, Response};
use flotilla_raft::governance::unix_millis;

/// How long a Produce whose every topic is held waits for its answer.
pub const HOLD_PAUSE: Duration = Duration::from_millis(300);
/// The shortest wait of a Fetch whose every topic is held, for clients that ask for none.
pub const MIN_FETCH_WAIT: Duration = Duration::from_millis(100);
/// The longest: the connection reads nothing else meanwhile.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(5);

const FILTER: &str = "breaker";

pub struct Breakers {
    names: Arc<TopicNames>,
    meter: Arc<TopicMeter>,
    counts: Counts,
}

/// Counters resolved once, so acting costs no label lookup.
struct Counts {
    produce_held: IntCounter,
    produce_rejected: IntCounter,
    fetch_held: IntCounter,
    dropped: IntCounter,
}

impl Breakers {
    pub fn new(names: &Arc<TopicNames>, meter: &Arc<TopicMeter>, metrics: &Metrics) -> Breakers {
        let actions = &metrics.breakers.actions;
        Breakers {
            names: names.clone(),
            meter: meter.clone(),
            counts: Counts {
                produce_held: actions.with_label_values(&["produce", "hold"]),
                produce_rejected: actions.with_label_values(&["produce", "reject"]),
                fetch_held: actions.with_label_values(&["fetch", "hold"]),
                dropped: metrics.breakers.dropped_batches.clone(),
            },
        }
    }
}

impl Filter for Breakers {
    fn name(&self) -> &'static str {
        FILTER
    }

    /// Out of the chain while no breaker and no rule exists: Produce and Fetch then pay
    /// nothing for the feature.
    fn is_active(&self, control: &ControlState) -> bool {
        !control.breakers.is_empty() || !control.breaker_rules.is_empty()
    }

    fn wants_request(&self, api_key: ApiKey, _version: i16) -> bool {
        matches!(api_key, ApiKey::Produce | ApiKey::Fetch)
    }

    /// Metadata to learn topic ids before any breaker opens; Produce and Fetch for the
    /// partitions taken out of their requests.
    fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
        matches!(api_key, ApiKey::Produce | ApiKey::Fetch | ApiKey::Metadata)
    }

    fn on_request(&self, request: &mut Request, env: &Env) -> Verdict {
        match request.api_key() {
            ApiKey::Produce => produce::on_request(self, request, env),
            ApiKey::Fetch => fetch::on_request(self, request, env),
            _ => Verdict::Forward,
        }
    }

    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        match response.api_key() {
            ApiKey::Metadata => response.edit(|body| {
                if let ResponseKind::Metadata(body) = body {
                    let ids = body
                        .topics
                        .iter()
                        .filter_map(|t| Some((t.topic_id, &t.name.as_ref()?.0)));
                    self.names.learn(ids);
                }
                false
            }),
            ApiKey::Produce => produce::on_response(self, response, env),
            ApiKey::Fetch => fetch::on_response(self, response, env),
            _ => Ok(()),
        }
    }
}

/// The breaker that stops `api` traffic of `topic` now, if any.
fn covering<'a>(
    control: &'a ControlState,
    topic: &str,
    now_ms: u64,
    api: ApiKey,
) -> Option<&'a Breaker> {
    control.breaker_for(topic, now_ms).filter(|b| match api {
        ApiKey::Produce => b.produce,
        _ => b.fetch,
    })
}

/// Whether a topic named by an id this node has not learned is held: yes while any
/// breaker stops `api` traffic, since it may be one of theirs; the node is asked to learn
/// every id from the backend, so this lasts one round trip.
fn unnamed(filter: &Breakers, env: &Env, now_ms: u64, api: ApiKey) -> bool {
    let stops = env.control.breakers.values().any(|b| {
        b.is_open_at(now_ms)
            && match api {
                ApiKey::Produce => b.produce,
                _ => b.fetch,
            }
    });
    if stops {
        filter.names.want_learning();
    }
    stops
}

/// What a client reads about the breaker that answered it.
fn client_message(topic: &str, breaker: &Breaker) -> String {
    let verb = match breaker.mode {
        BreakerMode::Hold => "held",
        BreakerMode::Reject => "closed",
    };
    let mut message = format!("topic {topic} is {verb} by a flotilla circuit breaker");
    if !breaker.reason.is_empty() {
        message.push_str(": ");
        message.push_str(&breaker.reason);
    }
    message
}
