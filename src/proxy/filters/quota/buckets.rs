//! The budgets this node counts usage against: one per quota kind and resolved owner
//! (user, client id), shared by all of the owner's connections on this node, and
//! published to the fleet through gossip so every node sees the owner's fleet-wide rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flotilla_raft::{QuotaKind, ResolvedQuota};

use super::rate::{allowance, Others, Pace, SampledRate};
use crate::cluster::usage::{FleetUsage, Rates, UsageSource};

/// The gossip report's kind.
pub const USAGE_KIND: &str = "quota";

/// One owner's usage of one kind of quota on this node.
#[derive(Debug)]
pub struct Bucket {
    /// How the fleet names its rate in gossip: kind, user and client id, as a JSON array.
    key: String,
    /// Under this key each node that uses the budget reports 1, so the others' sum
    /// counts them.
    nodes_key: String,
    usage: Mutex<Usage>,
}

#[derive(Debug, Default)]
struct Usage {
    rate: SampledRate,
    pace: Pace,
}

impl Bucket {
    pub(super) fn new(kind: QuotaKind, owner: &(Option<String>, Option<String>)) -> Bucket {
        let (user, client_id) = owner;
        let name = kind.kafka_name();
        Bucket {
            key: serde_json::json!([name, user, client_id]).to_string(),
            nodes_key: serde_json::json!([name, user, client_id, "nodes"]).to_string(),
            usage: Mutex::default(),
        }
    }

    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `amount` let through at `at` and returns how long the connection must hold
    /// its next request, given `limit` for the fleet and what the other nodes use.
    pub fn charge(&self, amount: f64, at: Duration, limit: u64, others: Others) -> Duration {
        let mut usage = self.usage();
        usage.rate.record(amount, at);
        usage.pace.charge(amount, at, allowance(limit, others))
    }

    /// This node's rate at `now`.
    pub fn local_rate(&self, now: Duration) -> f64 {
        self.usage().rate.rate(now)
    }
}

/// A budget's owner: the quota kind, the user and the client id it counts for.
type Owner = (QuotaKind, Option<String>, Option<String>);

/// Every bucket in use on this node, and the clock they count on.
pub struct Buckets {
    epoch: Instant,
    table: Mutex<HashMap<Owner, Arc<Bucket>>>,
    usage: Arc<FleetUsage>,
}

impl Buckets {
    pub fn new(usage: &Arc<FleetUsage>) -> Arc<Buckets> {
        let buckets = Arc::new(Buckets {
            epoch: Instant::now(),
            table: Mutex::default(),
            usage: usage.clone(),
        });
        usage.register(Arc::new(Publisher(Arc::downgrade(&buckets))));
        buckets
    }

    /// The time since this node's quota epoch.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// What the other live nodes last reported for `bucket`.
    pub fn others(&self, bucket: &Bucket) -> Others {
        Others {
            rate: self.usage.others(USAGE_KIND, &bucket.key),
            nodes: self.usage.others(USAGE_KIND, &bucket.nodes_key).round() as u32,
        }
    }

    /// The bucket a resolved quota counts against, made on first use.
    pub fn bucket(&self, kind: QuotaKind, resolved: &ResolvedQuota) -> Arc<Bucket> {
        let (user, client_id) = resolved.bucket.clone();
        let mut table = self.lock();
        let entry = table.entry((kind, user, client_id));
        entry
            .or_insert_with(|| Arc::new(Bucket::new(kind, &resolved.bucket)))
            .clone()
    }

    /// Local rates by gossip key; forgets buckets no connection holds and nothing fills.
    fn local_rates(&self) -> Rates {
        let now = self.now();
        let mut table = self.lock();
        table
            .retain(|_, bucket| Arc::strong_count(bucket) > 1 || !bucket.usage().rate.is_idle(now));
        let mut rates = Rates::new();
        for bucket in table.values() {
            let rate = bucket.local_rate(now);
            if rate > 0.0 {
                rates.insert(bucket.key.clone(), rate);
                rates.insert(bucket.nodes_key.clone(), 1.0);
            }
        }
        rates
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Owner, Arc<Bucket>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Publishes the buckets' rates; holds them weakly, as the fleet's usage outlives them.
struct Publisher(std::sync::Weak<Buckets>);

impl UsageSource for Publisher {
    fn kind(&self) -> &'static str {
        USAGE_KIND
    }

    fn local_rates(&self) -> Rates {
        self.0
            .upgrade()
            .map(|buckets| buckets.local_rates())
            .unwrap_or_default()
    }
}
