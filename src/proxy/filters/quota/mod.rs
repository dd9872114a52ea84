//! Client quotas held for the whole fleet: a client id (or user, or both) whose
//! connections are spread over several nodes gets its quota once, not once per node.
//!
//! The quotas are in the committed control state (`proxyctl quota`), resolved with
//! Kafka's precedence (`ControlState::quota_for`; the user is the principal without its
//! `User:` prefix, a connection with no principal has none). Three kinds, with Kafka's
//! names: `producer_byte_rate` counts Produce request frames, `consumer_byte_rate` Fetch
//! response frames (their length, read from the frame, never decoded for it), and
//! `request_rate` requests of any API.
//!
//! The client sees Kafka's behaviour: a client over its quota is told `throttle_time_ms`
//! in its Produce and Fetch responses, and the proxy itself mutes the connection for that
//! long (its next request is held), as a broker mutes a throttled channel. The proxy must
//! not rely on the client: librdkafka and kafka-python do not honour KIP-219 throttling.
//! A client that does (the Java client) waits out the same time before sending, so the
//! two overlap rather than add up. An acks=0 producer gets no response to read it from
//! and is only held. A held request is not yet forwarded: it keeps its place in the
//! connection's order, and a single hold lasts at most five seconds (`rate::MAX_THROTTLE`).
//!
//! Sharing: every node publishes, per budget (quota kind and owner), its own rate over
//! the last two to three seconds in gossip every half second (`cluster::usage`), and
//! reads the other nodes' sum and how many of them use the budget. Gossip rather than
//! budget leases from the Raft leader: usage is soft state, it must keep flowing while
//! the fleet has no leader, a dead node's share leaves with it, and no request ever waits
//! for a round trip.
//!
//! Enforcement: a node may use what the others leave of the quota, and at least an even
//! split among the nodes that use it (`rate::allowance`); its connections of that budget
//! are paced at that allowance (GCRA: each request or response costs its size divided by
//! the allowance, and a connection is held once its budget's pace runs more than a
//! second ahead of the clock). So the sum of the nodes' allowances is the quota whenever
//! they agree on each other's rates, and a request costs exactly its size, large or small.
//!
//! Why not Kafka's own formula, `(observed - quota) / quota * window`, with the fleet's
//! observed rate: it averages over an eleven-second window, and whatever part of the
//! window's budget is unused is credit any node may spend at once. In a fleet every node
//! spends the same credit before gossip tells the others, then all wait for the window to
//! drain, and the window empties again. Simulated as in the `fleet_converges` tests
//! (three nodes), it gave bursts of eighteen to thirty times the quota every fifteen to
//! twenty seconds: a limit cycle, not a convergence. The pace has no such credit (at most
//! a second's burst after idling).
//!
//! Why it converges rather than oscillating: with every node's client busy, the fixed
//! point is an even split (each allowance `quota / n`, the others leaving exactly that),
//! and a node away from it is pulled back within one gossip delay: one above its share
//! lowers what the others leave it only down to the even split, and one below leaves the
//! others more. A change (a node's client stopping, another starting) overshoots by at most
//! the freed share for about two seconds (the gossip delay plus the sharing window), then
//! settles; nothing grows from one round to the next. The `fleet_converges` tests simulate
//! three nodes with stale gossip (published every 0.5 s, seen 0.5 s later) and check the
//! fleet's rate, every five seconds and over 30 s, and each node's share.
//!
//! With no quota in the control state the filter is inactive (`Filter::is_active`): no
//! message meets it, and a Produce or Fetch no other filter wants is forwarded as its
//! bytes; should one meet it anyway, it returns at once (no decode, no lock, no
//! allocation). With quotas, a connection resolves its budgets once (again only when its
//! names or the quotas change), and only a throttled client's responses are decoded.

mod buckets;
mod connection;
mod rate;
#[cfg(test)]
mod tests;
mod throttle_time;

use std::sync::Arc;
use std::time::Duration;

use flotilla_raft::{ControlState, QuotaKind};
use kafka_protocol::messages::ApiKey;

use self::buckets::Buckets;
pub use self::connection::ConnectionQuota;
use self::connection::Governed;
use crate::cluster::usage::FleetUsage;
use crate::metrics::Metrics;
use crate::protocol::frame::SIZE_PREFIX;
use crate::proxy::filter::{Env, Filter, Verdict};
use crate::proxy::message::{Request, Response};

/// Shorter remaining mutes are not worth a response edit.
const LEAST_THROTTLE: Duration = Duration::from_millis(1);

pub struct Quotas {
    buckets: Arc<Buckets>,
    metrics: Arc<Metrics>,
}

impl Quotas {
    pub fn new(usage: &Arc<FleetUsage>, metrics: &Arc<Metrics>) -> Quotas {
        Quotas {
            buckets: Buckets::new(usage),
            metrics: metrics.clone(),
        }
    }

    /// The budgets that govern this connection, if any does.
    fn governed(&self, env: &Env) -> Option<Arc<Governed>> {
        let session = env.session;
        let governed = session.quota.governed(
            &env.control.quotas,
            &session.client_id,
            &session.principal,
            || self.resolve(env),
        );
        governed.is_governed().then_some(governed)
    }

    fn resolve(&self, env: &Env) -> Governed {
        let session = env.session;
        let principal = session.principal.as_deref();
        let user = principal.map(|p| p.strip_prefix("User:").unwrap_or(p));
        let client_id = session.client_id.as_deref().unwrap_or("");
        let limits = QuotaKind::VALUES.map(|kind| {
            let resolved = env.control.quota_for(kind, user, client_id)?;
            Some((resolved.limit, self.buckets.bucket(kind, &resolved)))
        });
        Governed::new(
            &env.control.quotas,
            &session.client_id,
            &session.principal,
            limits,
        )
    }

    /// Counts `amount` of `kind` at `at` and returns the throttle it earns (zero when no
    /// quota of that kind governs the connection).
    fn charge(
        &self,
        governed: &Governed,
        kind: QuotaKind,
        amount: usize,
        at: Duration,
        env: &Env,
    ) -> Duration {
        let Some((limit, bucket)) = governed.limit(kind) else {
            return Duration::ZERO;
        };
        let others = self.buckets.others(bucket);
        let throttle = bucket.charge(amount as f64, at, *limit, others);
        if !throttle.is_zero() {
            let client_id = env.session.client_id.as_deref().unwrap_or("");
            self.metrics.record_throttle(kind, client_id, throttle);
        }
        throttle
    }
}

impl Filter for Quotas {
    fn name(&self) -> &'static str {
        "quota"
    }

    /// Only while a quota exists: otherwise no message meets the filter at all.
    fn is_active(&self, control: &ControlState) -> bool {
        !control.quotas.is_empty()
    }

    /// Every request: `request_rate` counts them all.
    fn wants_request(&self, _api_key: ApiKey, _version: i16) -> bool {
        true
    }

    fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
        matches!(api_key, ApiKey::Produce | ApiKey::Fetch)
    }

    /// Holds the request while the connection is muted, then counts it when it goes and
    /// mutes the connection for the throttle it earns.
    fn on_request(&self, request: &mut Request, env: &Env) -> Verdict {
        if env.control.quotas.is_empty() {
            return Verdict::Forward;
        }
        let Some(governed) = self.governed(env) else {
            return Verdict::Forward;
        };
        let now = self.buckets.now();
        let release = env.session.quota.muted_until().max(now);
        let mut throttle = self.charge(&governed, QuotaKind::RequestRate, 1, release, env);
        if request.api_key() == ApiKey::Produce {
            let bytes = SIZE_PREFIX + request.frame().len();
            let by_bytes = self.charge(&governed, QuotaKind::ProducerByteRate, bytes, release, env);
            throttle = throttle.max(by_bytes);
        }
        env.session.quota.mute_until(release + throttle);
        match release - now {
            wait if wait.is_zero() => Verdict::Forward,
            wait => Verdict::Delay(wait),
        }
    }

    /// Counts Fetch response bytes, and tells a muted client for how long.
    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        if env.control.quotas.is_empty() {
            return Ok(());
        }
        let Some(governed) = self.governed(env) else {
            return Ok(());
        };
        let now = self.buckets.now();
        if response.api_key() == ApiKey::Fetch {
            let bytes = SIZE_PREFIX + response.frame().len();
            let throttle = self.charge(&governed, QuotaKind::ConsumerByteRate, bytes, now, env);
            if !throttle.is_zero() {
                env.session.quota.mute_until(now + throttle);
            }
        }
        let muted = env.session.quota.muted_until().saturating_sub(now);
        if muted >= LEAST_THROTTLE {
            throttle_time::set_throttle_time(response, muted)?;
        }
        Ok(())
    }
}
