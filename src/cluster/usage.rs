//! Fleet-wide usage: what each node measures locally and a fleet-wide limit needs summed
//! (a quota's bytes per second over all of a client's connections, a topic's produce rate
//! for a breaker rule).
//!
//! Every [`UsageSource`] is asked for its local rates each [`PUBLISH_EVERY`]; they are
//! published in gossip as a small JSON object per kind, and the other live members'
//! reports are summed into a snapshot the data path reads without a lock. Gossip rather
//! than leases from the Raft leader: usage is soft state that is stale within a second
//! anyway, it must keep flowing while the fleet has no leader, and a node that dies takes
//! its usage with it as gossip declares it dead. The price is that a limit is enforced on
//! figures up to about a second old, which a rate averaged over seconds absorbs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use flotilla_gossip::Gossip;
use tracing::debug;

/// How often local rates are published and the fleet's are read.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// Rates per second by key (a quota bucket, a topic).
pub type Rates = BTreeMap<String, f64>;

/// Something that measures usage on this node and wants the fleet's.
pub trait UsageSource: Send + Sync + 'static {
    /// The report's name in gossip; one source per kind.
    fn kind(&self) -> &'static str;

    /// This node's current rates. Keep it to the keys a limit exists for: every key is
    /// gossiped to every node.
    fn local_rates(&self) -> Rates;
}

/// The other nodes' usage, summed per kind and key.
#[derive(Default)]
pub struct FleetUsage {
    sources: Mutex<Vec<Arc<dyn UsageSource>>>,
    others: ArcSwap<HashMap<&'static str, Rates>>,
    /// This node's rates as last published, for whoever judges local plus others.
    local: ArcSwap<HashMap<&'static str, Rates>>,
}

impl FleetUsage {
    /// Adds a source; it is published from the next round on.
    pub fn register(&self, source: Arc<dyn UsageSource>) {
        self.lock_sources().push(source);
    }

    /// The sum of the other live nodes' latest rates for `key` (0 on a standalone node).
    pub fn others(&self, kind: &str, key: &str) -> f64 {
        self.others
            .load()
            .get(kind)
            .and_then(|rates| rates.get(key))
            .copied()
            .unwrap_or(0.0)
    }

    /// This node's rates of `kind` as last published (empty before the first round).
    pub fn local_of(&self, kind: &str) -> Rates {
        self.local.load().get(kind).cloned().unwrap_or_default()
    }

    /// Every key the other nodes report for `kind`, summed.
    pub fn others_of(&self, kind: &str) -> Rates {
        self.others.load().get(kind).cloned().unwrap_or_default()
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn UsageSource>>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes local rates and reads the fleet's, every [`PUBLISH_EVERY`], until dropped.
    pub async fn run(&self, gossip: &Gossip) {
        let mut timer = tokio::time::interval(PUBLISH_EVERY);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            self.exchange(gossip).await;
        }
    }

    async fn exchange(&self, gossip: &Gossip) {
        let sources = self.lock_sources().clone();
        let mut others = HashMap::new();
        let mut local = HashMap::new();
        for source in sources {
            let rates = source.local_rates();
            gossip.publish_usage(source.kind(), &encode(&rates)).await;
            local.insert(source.kind(), rates);
            let reports = gossip.usage_reports(source.kind()).await;
            others.insert(source.kind(), sum(&reports));
        }
        self.others.store(Arc::new(others));
        self.local.store(Arc::new(local));
    }
}

fn encode(rates: &Rates) -> String {
    serde_json::to_string(rates).unwrap_or_default()
}

/// Sums reports per key; a report that does not decode (a newer release's shape) is left
/// out with a debug line rather than counted as zero usage of everything.
fn sum(reports: &[(u64, String)]) -> Rates {
    let mut total = Rates::new();
    for (node, report) in reports {
        match serde_json::from_str::<Rates>(report) {
            Ok(rates) => {
                for (key, rate) in rates {
                    *total.entry(key).or_default() += rate;
                }
            }
            Err(error) => debug!(node, %error, "ignoring a usage report that does not decode"),
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_summed_per_key_and_garbage_is_left_out() {
        let a = encode(&Rates::from([("x".into(), 1.5), ("y".into(), 2.0)]));
        let b = encode(&Rates::from([("x".into(), 0.5)]));
        let total = sum(&[(1, a), (2, b), (3, "{not json".into())]);
        assert_eq!(total, Rates::from([("x".into(), 2.0), ("y".into(), 2.0)]));
    }
}
