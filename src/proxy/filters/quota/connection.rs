//! What one connection keeps for its quotas: until when it is muted, and which budgets
//! govern it. Resolving a client's quotas walks Kafka's eight-step precedence and names
//! strings, so it is done once per connection and again only when the client's names or
//! the committed quotas change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_raft::{QuotaKey, QuotaKind, QuotaLimits};
use kafka_protocol::protocol::StrBytes;

use super::buckets::Bucket;

/// A connection's quota state; every snapshot of its session shares one.
#[derive(Debug, Default)]
pub struct ConnectionQuota {
    /// Microseconds since the node's quota epoch before which the connection's next
    /// request is held, as a broker mutes a throttled channel.
    muted_until_us: AtomicU64,
    governed: Mutex<Option<Arc<Governed>>>,
}

/// The budgets that govern one connection, for the names and quotas they were resolved
/// from.
#[derive(Debug)]
pub struct Governed {
    quotas: BTreeMap<QuotaKey, QuotaLimits>,
    client_id: Option<StrBytes>,
    principal: Option<String>,
    /// By [`QuotaKind`] position: the limit and the bucket it counts against.
    limits: [Option<(u64, Arc<Bucket>)>; 3],
}

impl Governed {
    pub fn new(
        quotas: &BTreeMap<QuotaKey, QuotaLimits>,
        client_id: &Option<StrBytes>,
        principal: &Option<String>,
        limits: [Option<(u64, Arc<Bucket>)>; 3],
    ) -> Governed {
        Governed {
            quotas: quotas.clone(),
            client_id: client_id.clone(),
            principal: principal.clone(),
            limits,
        }
    }

    fn matches(
        &self,
        quotas: &BTreeMap<QuotaKey, QuotaLimits>,
        client_id: &Option<StrBytes>,
        principal: &Option<String>,
    ) -> bool {
        self.client_id == *client_id && self.principal == *principal && self.quotas == *quotas
    }

    /// The limit and bucket of `kind`, if a quota of that kind governs the connection.
    pub fn limit(&self, kind: QuotaKind) -> Option<&(u64, Arc<Bucket>)> {
        self.limits[kind_index(kind)].as_ref()
    }

    /// Whether any quota governs the connection at all.
    pub fn is_governed(&self) -> bool {
        self.limits.iter().any(Option::is_some)
    }
}

pub fn kind_index(kind: QuotaKind) -> usize {
    match kind {
        QuotaKind::ProducerByteRate => 0,
        QuotaKind::ConsumerByteRate => 1,
        QuotaKind::RequestRate => 2,
    }
}

impl ConnectionQuota {
    /// The budgets resolved for these names and quotas, or `resolve`'s answer, kept.
    pub fn governed(
        &self,
        quotas: &BTreeMap<QuotaKey, QuotaLimits>,
        client_id: &Option<StrBytes>,
        principal: &Option<String>,
        resolve: impl FnOnce() -> Governed,
    ) -> Arc<Governed> {
        let mut governed = self.governed.lock().unwrap_or_else(|e| e.into_inner());
        match &*governed {
            Some(g) if g.matches(quotas, client_id, principal) => g.clone(),
            _ => governed.insert(Arc::new(resolve())).clone(),
        }
    }

    pub fn muted_until(&self) -> Duration {
        Duration::from_micros(self.muted_until_us.load(Ordering::Acquire))
    }

    /// Mutes the connection until `until`, unless it already is for longer.
    pub fn mute_until(&self, until: Duration) {
        let until = u64::try_from(until.as_micros()).unwrap_or(u64::MAX);
        self.muted_until_us.fetch_max(until, Ordering::AcqRel);
    }
}
