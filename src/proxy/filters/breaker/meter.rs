//! Per-topic figures for automatic breaker rules, measured on this node: produce bytes the
//! node forwards and the partition responses (and errors) brokers return, only for topics
//! some rule watches, so a fleet with thousands of topics gossips a handful of keys.
//!
//! The figures are a [`UsageSource`]: every node publishes its rates in gossip under
//! `KIND`, and the Raft leader adds its own to the others' to judge a rule fleet-wide.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use flotilla_raft::governance::{BreakerRule, RuleMetric};

use crate::cluster::topic_figures::{Measure, KIND};
use crate::cluster::usage::{Rates, UsageSource};

type Totals = [u64; 3];

#[derive(Default)]
pub struct TopicMeter {
    totals: Mutex<HashMap<String, Totals>>,
    /// The totals at the last report, and when it was made.
    reported: Mutex<Option<(Instant, HashMap<String, Totals>)>>,
}

impl TopicMeter {
    /// Counts `bytes` produced into `topic`, if a byte-rate rule watches it.
    pub fn produced(&self, topic: &str, bytes: u64, rules: &BTreeMap<String, BreakerRule>) {
        if watched(rules, topic, RuleMetric::ProduceBytesPerSecond) {
            self.add(topic, Measure::Bytes, bytes);
        }
    }

    /// Counts `partitions` produce responses, `errors` of them errors, if an error-rate
    /// rule watches `topic`.
    pub fn answered(
        &self,
        topic: &str,
        partitions: u64,
        errors: u64,
        rules: &BTreeMap<String, BreakerRule>,
    ) {
        if watched(rules, topic, RuleMetric::BrokerErrorsPerMille) {
            self.add(topic, Measure::Responses, partitions);
            self.add(topic, Measure::Errors, errors);
        }
    }

    /// Whether any rule needs produce responses read.
    pub fn watches_errors(&self, rules: &BTreeMap<String, BreakerRule>) -> bool {
        rules
            .values()
            .any(|r| r.metric == RuleMetric::BrokerErrorsPerMille)
    }

    fn add(&self, topic: &str, measure: Measure, amount: u64) {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        match totals.get_mut(topic) {
            Some(entry) => entry[measure as usize] += amount,
            None => {
                let mut entry = Totals::default();
                entry[measure as usize] = amount;
                totals.insert(topic.to_string(), entry);
            }
        }
    }

    /// Rates since the previous call; topics with nothing new are forgotten, so a topic no
    /// rule watches any more stops being reported.
    fn rates_since_last(&self, now: Instant) -> Rates {
        let current = std::mem::take(&mut *self.totals.lock().unwrap_or_else(|e| e.into_inner()));
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let mut rates = Rates::new();
        if let Some((at, _)) = reported.as_ref() {
            let seconds = now.duration_since(*at).as_secs_f64().max(0.001);
            for (topic, totals) in &current {
                for measure in Measure::ALL {
                    let amount = totals[measure as usize];
                    if amount > 0 {
                        rates.insert(measure.key(topic), amount as f64 / seconds);
                    }
                }
            }
        }
        *reported = Some((now, current));
        rates
    }
}

impl UsageSource for TopicMeter {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn local_rates(&self) -> Rates {
        self.rates_since_last(Instant::now())
    }
}

fn watched(rules: &BTreeMap<String, BreakerRule>, topic: &str, metric: RuleMetric) -> bool {
    rules
        .values()
        .any(|r| r.metric == metric && r.pattern.matches(topic))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use flotilla_raft::governance::BreakerMode;

    use super::*;

    fn rules(metric: RuleMetric) -> BTreeMap<String, BreakerRule> {
        let rule = BreakerRule {
            name: "r".into(),
            pattern: "orders*".parse().unwrap(),
            metric,
            threshold: 1,
            sustain_secs: 1,
            cool_down_secs: 1,
            mode: BreakerMode::Hold,
            produce: true,
            fetch: true,
        };
        BTreeMap::from([("r".to_string(), rule)])
    }

    #[test]
    fn only_watched_topics_are_measured_and_rates_are_per_second() {
        let meter = TopicMeter::default();
        let start = Instant::now();
        assert!(meter.rates_since_last(start).is_empty(), "no window yet");
        let bytes = rules(RuleMetric::ProduceBytesPerSecond);
        meter.produced("orders.eu", 1000, &bytes);
        meter.produced("payments", 1000, &bytes);
        meter.answered("orders.eu", 10, 1, &bytes);
        let rates = meter.rates_since_last(start + Duration::from_secs(2));
        assert_eq!(rates, Rates::from([("bytes:orders.eu".into(), 500.0)]));
        let later = meter.rates_since_last(start + Duration::from_secs(3));
        assert!(later.is_empty(), "nothing new, nothing reported: {later:?}");
    }

    #[test]
    fn error_rules_measure_responses_and_errors() {
        let meter = TopicMeter::default();
        let start = Instant::now();
        meter.rates_since_last(start);
        let errors = rules(RuleMetric::BrokerErrorsPerMille);
        assert!(meter.watches_errors(&errors));
        meter.answered("orders", 10, 3, &errors);
        let rates = meter.rates_since_last(start + Duration::from_secs(1));
        assert_eq!(rates["responses:orders"], 10.0);
        assert_eq!(rates["errors:orders"], 3.0);
        assert_eq!(
            Measure::parse("errors:orders"),
            Some((Measure::Errors, "orders"))
        );
        assert_eq!(Measure::parse("nonsense"), None);
    }
}
