//! Label values that come from clients (topic names, client ids, principals, client
//! software), admitted up to a cap per node.
//!
//! Each admitted value gets a slot: its Prometheus children resolved once, which
//! connections keep and bump without any further lookup. Past the cap every new value
//! shares the `other` slot, and `flotilla_metric_labels_folded_total{label}` counts each
//! time that happened (once per connection and value, as connections keep what they
//! resolved). Admitted values stay for the life of the node: Prometheus counters that
//! vanished and came back would read as resets.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus::IntCounter;

/// The label value every value past the cap is counted under.
pub const OTHER: &str = "other";

pub struct CappedLabels<S> {
    cap: usize,
    slots: RwLock<HashMap<Arc<str>, Arc<S>>>,
    other: Arc<S>,
    folded: IntCounter,
    make: Box<dyn Fn(&str) -> S + Send + Sync>,
}

impl<S> CappedLabels<S> {
    /// At most `cap` values besides `other`; `make` builds a value's slot.
    pub fn new(
        cap: usize,
        folded: IntCounter,
        make: impl Fn(&str) -> S + Send + Sync + 'static,
    ) -> CappedLabels<S> {
        CappedLabels {
            cap,
            slots: RwLock::default(),
            other: Arc::new(make(OTHER)),
            folded,
            make: Box::new(make),
        }
    }

    /// The slot of `value`: its own while there is room, else `other`.
    pub fn slot(&self, value: &str) -> Arc<S> {
        if let Some(slot) = self.read().get(value) {
            return slot.clone();
        }
        if value == OTHER {
            return self.other.clone();
        }
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(value) {
            return slot.clone();
        }
        if slots.len() >= self.cap {
            self.folded.inc();
            return self.other.clone();
        }
        let slot = Arc::new((self.make)(value));
        slots.insert(Arc::from(value), slot.clone());
        slot
    }

    /// Every slot with its value, `other` included.
    pub fn all(&self) -> Vec<(Arc<str>, Arc<S>)> {
        let mut all: Vec<_> = self
            .read()
            .iter()
            .map(|(value, slot)| (value.clone(), slot.clone()))
            .collect();
        all.push((Arc::from(OTHER), self.other.clone()));
        all
    }

    /// Values admitted so far (`other` not counted).
    pub fn admitted(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<S>>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_cap_share_other_and_are_counted() {
        let folded = IntCounter::new("folded", "folded").unwrap();
        let labels = CappedLabels::new(2, folded.clone(), |v| v.to_string());
        assert_eq!(*labels.slot("a"), "a");
        assert_eq!(*labels.slot("b"), "b");
        assert_eq!(*labels.slot("c"), OTHER);
        assert_eq!(*labels.slot("a"), "a", "admitted values keep their slot");
        assert_eq!(labels.admitted(), 2);
        assert_eq!(folded.get(), 1);
        assert_eq!(labels.all().len(), 3);
    }
}
