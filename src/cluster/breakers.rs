//! Topic circuit breakers in the fleet: the admin writes as the Raft leader carries them
//! out, and the watch every node keeps over the committed breakers.
//!
//! Every node, every second, compares the breakers in force by its own clock with the
//! last second's: what came into force is logged and counted as a trip, what went out of
//! force (closed, or its time ran out) as a close, and the gauge of breakers in force is
//! set. The Raft leader also tidies up and judges the rules: a breaker whose time has run
//! out is closed in Raft (`CloseBreaker` naming that opening, so a newer opening of the
//! same pattern survives), and each rule's metric is summed over the fleet (this node's
//! figures plus the others' from gossip, see `topic_figures`); a topic
//! above a rule's threshold for `sustain_secs` gets a breaker of its own, origin the
//! rule, open for the rule's cool-down. A new leader starts judging from zero, so a
//! leader change can delay a trip by up to `sustain_secs`, never cause one.
//!
//! While any breaker is in force, every node also learns all topic ids from the backend
//! (when a breaker comes into force, when the filter meets an id it cannot name, and
//! every ten seconds): requests name topics by id, and a client may have read its
//! Metadata through another node.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use flotilla_raft::governance::{Breaker, BreakerOrigin, BreakerRule, RuleMetric, TopicPattern};
use flotilla_raft::{Command, ControlState};

use super::error::ClusterError;
use super::fleet::Fleet;
use super::topic_figures::{Measure, KIND};
use super::usage::Rates;
use super::writes::commit;
use crate::backend;
use crate::context::Context;
use crate::metrics::Metrics;
use flotilla_raft::governance::unix_millis;

/// The fleet feature level that introduced breakers and their rules.
pub const LEVEL: u16 = flotilla_raft::governance::LEVEL;

/// How often breakers are watched and rules judged.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How often topic ids are learned from the backend while a breaker is in force, for
/// topics created since.
const RELEARN_NAMES_EVERY: Duration = Duration::from_secs(10);

/// The least time between two learnings of topic ids.
const MIN_LEARN_SPACING: Duration = Duration::from_millis(200);

/// Produce partition responses per second a topic needs before its error rate counts:
/// two errors out of three responses is noise, not an overloaded topic.
const MIN_RESPONSES_PER_SECOND: f64 = 1.0;

/// Opens `breaker` (replacing any on its pattern).
pub async fn open(fleet: &Fleet, breaker: Breaker) -> Result<(), ClusterError> {
    commit(fleet, Command::OpenBreaker { breaker }).await
}

/// Closes the breaker on `pattern`, whoever opened it.
pub async fn close(fleet: &Fleet, pattern: TopicPattern) -> Result<(), ClusterError> {
    if !fleet.raft.state().borrow().breakers.contains_key(&pattern) {
        return Err(ClusterError::NotFound(format!(
            "no breaker is open on {pattern}"
        )));
    }
    let command = Command::CloseBreaker {
        pattern,
        opened_at_ms: None,
    };
    commit(fleet, command).await
}

pub async fn put_rule(fleet: &Fleet, rule: BreakerRule) -> Result<(), ClusterError> {
    commit(fleet, Command::PutBreakerRule { rule }).await
}

pub async fn delete_rule(fleet: &Fleet, name: String) -> Result<(), ClusterError> {
    if !fleet
        .raft
        .state()
        .borrow()
        .breaker_rules
        .contains_key(&name)
    {
        return Err(ClusterError::NotFound(format!(
            "there is no breaker rule {name:?}"
        )));
    }
    commit(fleet, Command::DeleteBreakerRule { name }).await
}

/// `manual`, or `rule:NAME`.
pub fn origin_label(origin: &BreakerOrigin) -> String {
    match origin {
        BreakerOrigin::Manual => "manual".into(),
        BreakerOrigin::Rule(name) => format!("rule:{name}"),
    }
}

/// The metric label of an origin (bounded: rule names are not labels).
fn origin_kind(origin: &BreakerOrigin) -> &'static str {
    match origin {
        BreakerOrigin::Manual => "manual",
        BreakerOrigin::Rule(_) => "rule",
    }
}

/// Watches the committed breakers for the life of the node (see the module doc).
pub async fn watch(fleet: Arc<Fleet>, ctx: Arc<Context>) {
    let mut seen = InForce::default();
    let mut judge = Judge::default();
    let mut timer = tokio::time::interval(WATCH_EVERY);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        let state = ctx.control.load_full();
        let now_ms = unix_millis();
        if seen.observe(&state, now_ms, &ctx.metrics) {
            ctx.directory.topic_names.want_learning();
        }
        let status = fleet.status();
        if status.leader != Some(status.node_id) {
            judge = Judge::default();
            continue;
        }
        for command in tidy_up(&state, now_ms) {
            commit_logged(&fleet, command).await;
        }
        let mut rates = ctx.usage.local_of(KIND);
        for (key, rate) in ctx.usage.others_of(KIND) {
            *rates.entry(key).or_default() += rate;
        }
        for breaker in judge.trips(&state, &rates, now_ms) {
            commit_logged(&fleet, Command::OpenBreaker { breaker }).await;
        }
    }
}

/// Learns topic ids from the backend while any breaker is in force: when a breaker
/// comes into force or a filter meets an id it cannot name, and every ten seconds.
pub async fn learn_topic_ids(ctx: Arc<Context>) {
    let names = &ctx.directory.topic_names;
    loop {
        let _ = tokio::time::timeout(RELEARN_NAMES_EVERY, names.learning_wanted()).await;
        let now_ms = unix_millis();
        let in_force = ctx
            .control
            .load()
            .breakers
            .values()
            .any(|b| b.is_open_at(now_ms));
        if in_force {
            learn_topic_names(&ctx).await;
            // A burst of requests naming unknown ids asks once per round trip at most.
            tokio::time::sleep(MIN_LEARN_SPACING).await;
        }
    }
}

/// Learns every topic's id from the backend: a client may have had its Metadata from
/// another node, and then names topics by ids this node never saw.
async fn learn_topic_names(ctx: &Context) {
    match backend::fetch_topic_ids(&ctx.backend, &ctx.bootstrap_candidates()).await {
        Ok(topics) => ctx
            .directory
            .topic_names
            .learn(topics.iter().map(|(id, name)| (*id, name))),
        Err(e) => tracing::warn!("cannot learn topic ids for breakers: {e:#}"),
    }
}

async fn commit_logged(fleet: &Fleet, command: Command) {
    if let Err(e) = commit(fleet, command).await {
        tracing::warn!("breaker command not committed: {e}");
    }
}

/// The breakers in force at the last look, by pattern and opening.
#[derive(Default)]
struct InForce {
    breakers: Option<BTreeMap<(TopicPattern, u64), Breaker>>,
}

impl InForce {
    /// Logs and counts what changed; true when a breaker came into force.
    fn observe(&mut self, state: &ControlState, now_ms: u64, metrics: &Metrics) -> bool {
        let now: BTreeMap<(TopicPattern, u64), Breaker> = state
            .breakers
            .values()
            .filter(|b| b.is_open_at(now_ms))
            .map(|b| ((b.pattern.clone(), b.opened_at_ms), b.clone()))
            .collect();
        let m = &metrics.breakers;
        for kind in ["manual", "rule"] {
            let open = now.values().filter(|b| origin_kind(&b.origin) == kind);
            m.open.with_label_values(&[kind]).set(open.count() as i64);
        }
        let Some(before) = self.breakers.replace(now.clone()) else {
            for b in now.values() {
                tracing::info!(pattern = %b.pattern, origin = %origin_label(&b.origin), mode = %b.mode, reason = %b.reason, until_ms = ?b.until_ms, "breaker in force at start");
            }
            return !now.is_empty();
        };
        let mut opened = false;
        for (key, b) in &now {
            if !before.contains_key(key) {
                opened = true;
                m.trips.with_label_values(&[origin_kind(&b.origin)]).inc();
                tracing::warn!(pattern = %b.pattern, origin = %origin_label(&b.origin), mode = %b.mode, produce = b.produce, fetch = b.fetch, reason = %b.reason, until_ms = ?b.until_ms, "breaker opened");
            }
        }
        for (key, b) in &before {
            if !now.contains_key(key) {
                m.closes.with_label_values(&[origin_kind(&b.origin)]).inc();
                let ran_out = b.until_ms.is_some_and(|until| until <= now_ms);
                tracing::warn!(pattern = %b.pattern, origin = %origin_label(&b.origin), ran_out, "breaker closed");
            }
        }
        opened
    }
}

/// The closes of breakers whose time has run out.
fn tidy_up(state: &ControlState, now_ms: u64) -> Vec<Command> {
    state
        .breakers
        .values()
        .filter(|b| !b.is_open_at(now_ms))
        .map(|b| Command::CloseBreaker {
            pattern: b.pattern.clone(),
            opened_at_ms: Some(b.opened_at_ms),
        })
        .collect()
}

/// Since when each (rule, topic) has been above its threshold, on this leader.
#[derive(Default)]
struct Judge {
    above_since: HashMap<(String, String), u64>,
}

impl Judge {
    /// The breakers rules open now, given the fleet's rates.
    fn trips(&mut self, state: &ControlState, rates: &Rates, now_ms: u64) -> Vec<Breaker> {
        let figures = Figures::of(rates);
        let mut above = HashMap::new();
        let mut trips = Vec::new();
        for rule in state.breaker_rules.values() {
            for (topic, value) in figures.of_rule(rule) {
                if value <= rule.threshold as f64 {
                    continue;
                }
                let key = (rule.name.clone(), topic.to_string());
                let since = self.above_since.get(&key).copied().unwrap_or(now_ms);
                above.insert(key, since);
                let sustained = now_ms.saturating_sub(since) >= u64::from(rule.sustain_secs) * 1000;
                if sustained && state.breaker_for(topic, now_ms).is_none() {
                    trips.push(trip(rule, topic, value, now_ms));
                }
            }
        }
        self.above_since = above;
        trips
    }
}

fn trip(rule: &BreakerRule, topic: &str, value: f64, now_ms: u64) -> Breaker {
    let what = match rule.metric {
        RuleMetric::ProduceBytesPerSecond => "produce bytes/s",
        RuleMetric::BrokerErrorsPerMille => "broker errors per mille",
    };
    let reason = format!(
        "rule {}: {what} {value:.0} above {} for {} s",
        rule.name, rule.threshold, rule.sustain_secs
    );
    tracing::warn!(rule = %rule.name, topic, value, threshold = rule.threshold, "breaker rule trips");
    Breaker {
        pattern: TopicPattern {
            name: topic.to_string(),
            prefix: false,
        },
        produce: rule.produce,
        fetch: rule.fetch,
        mode: rule.mode,
        reason,
        origin: BreakerOrigin::Rule(rule.name.clone()),
        opened_at_ms: now_ms,
        until_ms: Some(now_ms + u64::from(rule.cool_down_secs) * 1000),
    }
}

/// Fleet-wide per-topic figures, from the summed gossip keys.
#[derive(Default)]
struct Figures<'a> {
    bytes: BTreeMap<&'a str, f64>,
    responses: BTreeMap<&'a str, f64>,
    errors: BTreeMap<&'a str, f64>,
}

impl<'a> Figures<'a> {
    fn of(rates: &'a Rates) -> Figures<'a> {
        let mut figures = Figures::default();
        for (key, &rate) in rates {
            let Some((measure, topic)) = Measure::parse(key) else {
                continue;
            };
            let into = match measure {
                Measure::Bytes => &mut figures.bytes,
                Measure::Responses => &mut figures.responses,
                Measure::Errors => &mut figures.errors,
            };
            into.insert(topic, rate);
        }
        figures
    }

    /// Each watched topic's value of the rule's metric.
    fn of_rule(&self, rule: &BreakerRule) -> Vec<(&'a str, f64)> {
        match rule.metric {
            RuleMetric::ProduceBytesPerSecond => self
                .bytes
                .iter()
                .filter(|(topic, _)| rule.pattern.matches(topic))
                .map(|(topic, &rate)| (*topic, rate))
                .collect(),
            RuleMetric::BrokerErrorsPerMille => self
                .responses
                .iter()
                .filter(|(topic, &rate)| {
                    rule.pattern.matches(topic) && rate >= MIN_RESPONSES_PER_SECOND
                })
                .map(|(topic, &responses)| {
                    let errors = self.errors.get(topic).copied().unwrap_or(0.0);
                    (*topic, errors * 1000.0 / responses)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use flotilla_raft::governance::BreakerMode;

    use super::*;

    fn rule(metric: RuleMetric, threshold: u64) -> BreakerRule {
        BreakerRule {
            name: "hot".into(),
            pattern: "orders*".parse().unwrap(),
            metric,
            threshold,
            sustain_secs: 3,
            cool_down_secs: 10,
            mode: BreakerMode::Hold,
            produce: true,
            fetch: false,
        }
    }

    fn state_with(rule: BreakerRule) -> ControlState {
        let mut state = ControlState::default();
        state.breaker_rules.insert(rule.name.clone(), rule);
        state
    }

    #[test]
    fn a_rule_trips_only_after_its_sustain_time_and_for_its_cool_down() {
        let state = state_with(rule(RuleMetric::ProduceBytesPerSecond, 1000));
        let hot = Rates::from([
            ("bytes:orders.eu".into(), 5000.0),
            ("bytes:payments".into(), 9000.0),
        ]);
        let mut judge = Judge::default();
        assert!(judge.trips(&state, &hot, 10_000).is_empty());
        assert!(judge.trips(&state, &hot, 12_000).is_empty());
        let trips = judge.trips(&state, &hot, 13_000);
        assert_eq!(trips.len(), 1, "{trips:?}");
        let breaker = &trips[0];
        assert_eq!(breaker.pattern.to_string(), "orders.eu");
        assert_eq!(breaker.origin, BreakerOrigin::Rule("hot".into()));
        assert_eq!(breaker.until_ms, Some(23_000));
        assert!(breaker.produce && !breaker.fetch);
    }

    #[test]
    fn a_dip_below_the_threshold_starts_the_count_again() {
        let state = state_with(rule(RuleMetric::ProduceBytesPerSecond, 1000));
        let hot = Rates::from([("bytes:orders".into(), 5000.0)]);
        let cool = Rates::from([("bytes:orders".into(), 500.0)]);
        let mut judge = Judge::default();
        judge.trips(&state, &hot, 0);
        judge.trips(&state, &cool, 2_000);
        assert!(judge.trips(&state, &hot, 3_000).is_empty());
        assert!(judge.trips(&state, &hot, 5_000).is_empty());
        assert_eq!(judge.trips(&state, &hot, 6_000).len(), 1);
    }

    #[test]
    fn an_open_breaker_on_the_topic_is_not_tripped_again() {
        let mut state = state_with(rule(RuleMetric::ProduceBytesPerSecond, 1000));
        let hot = Rates::from([("bytes:orders".into(), 5000.0)]);
        let mut judge = Judge::default();
        judge.trips(&state, &hot, 0);
        let breaker = judge.trips(&state, &hot, 3_000).remove(0);
        state.breakers.insert(breaker.pattern.clone(), breaker);
        assert!(judge.trips(&state, &hot, 4_000).is_empty());
        assert_eq!(
            tidy_up(&state, 13_000).len(),
            1,
            "closed in Raft once the cool-down ran out"
        );
    }

    #[test]
    fn error_rates_are_per_mille_of_enough_responses() {
        let state = state_with(rule(RuleMetric::BrokerErrorsPerMille, 100));
        let rates = Rates::from([
            ("responses:orders.a".into(), 100.0),
            ("errors:orders.a".into(), 20.0),
            ("responses:orders.b".into(), 0.5),
            ("errors:orders.b".into(), 0.5),
        ]);
        let figures = Figures::of(&rates);
        let values = figures.of_rule(&state.breaker_rules["hot"]);
        assert_eq!(values, vec![("orders.a", 200.0)]);
    }
}
