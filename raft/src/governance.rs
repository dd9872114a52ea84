//! Traffic governance in the control state: topic circuit breakers, the rules that trip
//! them on their own, and client quotas.
//!
//! These are replicated because a client's connections may be spread over every node, and
//! a breaker or a quota that held on one node only would be a suggestion. Each is a pure
//! query over the last applied state, so the data path asks it without a lock.
//!
//! Time enters only through the proposer: a breaker carries the wall-clock instants the
//! proposing node gave it, and every node compares them with its own clock when it
//! enforces, so `apply` stays deterministic and a timed breaker closes everywhere even if
//! nobody proposes its close.
//!
//! Every enum here is encoded by bincode through its variant's position: variants are only
//! ever appended.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::state::{CommandResult, ControlState};

/// The fleet feature level that introduced governance (see [`crate::state`]).
pub const LEVEL: u16 = 3;

/// A topic name, or with a trailing `*` every topic that starts with the text before it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPattern {
    pub name: String,
    pub prefix: bool,
}

impl TopicPattern {
    pub fn matches(&self, topic: &str) -> bool {
        if self.prefix {
            topic.starts_with(&self.name)
        } else {
            topic == self.name
        }
    }

    /// How specific a match is: an exact name beats every prefix, a longer prefix a
    /// shorter one.
    fn specificity(&self) -> (bool, usize) {
        (!self.prefix, self.name.len())
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.prefix { "*" } else { "" };
        write!(f, "{}{star}", self.name)
    }
}

/// Why a text is not a topic pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPattern(String);

impl FromStr for TopicPattern {
    type Err = InvalidPattern;

    /// `orders` is one topic, `orders.*` every topic starting with `orders.`; a `*`
    /// anywhere but at the end, or a pattern with nothing before it, is refused (a breaker
    /// on every topic is a fleet shutdown, not a breaker).
    fn from_str(text: &str) -> Result<TopicPattern, InvalidPattern> {
        let (name, prefix) = match text.strip_suffix('*') {
            Some(name) => (name, true),
            None => (text, false),
        };
        if name.is_empty() {
            return Err(InvalidPattern(format!(
                "topic pattern {text:?} names no topic (write a name, or a prefix followed by *)"
            )));
        }
        if name.contains('*') {
            return Err(InvalidPattern(format!(
                "topic pattern {text:?}: * may only end a prefix"
            )));
        }
        Ok(TopicPattern {
            name: name.to_string(),
            prefix,
        })
    }
}

/// What an open breaker does to the traffic it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BreakerMode {
    /// Retriable errors and empty fetches with a throttle time: clients keep their records
    /// and wait.
    Hold,
    /// A non-retriable policy error: applications see it.
    Reject,
}

impl fmt::Display for BreakerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerMode::Hold => "hold",
            BreakerMode::Reject => "reject",
        })
    }
}

impl FromStr for BreakerMode {
    type Err = InvalidPattern;

    fn from_str(text: &str) -> Result<BreakerMode, InvalidPattern> {
        match text.to_ascii_lowercase().as_str() {
            "hold" => Ok(BreakerMode::Hold),
            "reject" => Ok(BreakerMode::Reject),
            _ => Err(InvalidPattern(format!(
                "unknown breaker mode {text:?}; expected hold or reject"
            ))),
        }
    }
}

/// Who opened a breaker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BreakerOrigin {
    /// An operator (`proxyctl breaker open`).
    Manual,
    /// The automatic rule of this name.
    Rule(String),
}

/// An open circuit breaker on the topics of one pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    pub pattern: TopicPattern,
    /// Whether it stops Produce requests.
    pub produce: bool,
    /// Whether it stops Fetch requests.
    pub fetch: bool,
    pub mode: BreakerMode,
    /// Shown to operators, and in `reject` mode to clients in the error message.
    pub reason: String,
    pub origin: BreakerOrigin,
    /// Unix milliseconds when it was opened, by the proposer's clock; also tells one
    /// opening of a pattern from the next.
    pub opened_at_ms: u64,
    /// Unix milliseconds from which it no longer applies (`--for`, a rule's cool-down),
    /// by each enforcing node's own clock.
    pub until_ms: Option<u64>,
}

/// Milliseconds since the Unix epoch by this node's clock, as breakers' instants are
/// given. For proposers and enforcers only: `apply` never reads a clock.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Breaker {
    /// Whether it applies at `now_ms` (Unix milliseconds).
    pub fn is_open_at(&self, now_ms: u64) -> bool {
        self.until_ms.is_none_or(|until| now_ms < until)
    }
}

/// What an automatic breaker rule watches, per topic and fleet-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RuleMetric {
    /// Produce bytes per second into a topic; the threshold is in bytes per second.
    ProduceBytesPerSecond,
    /// Partition errors the brokers returned for a topic, per thousand partition
    /// responses; the threshold is in per mille.
    BrokerErrorsPerMille,
}

/// A rule that opens a breaker on a topic when a metric stays above a threshold, and
/// lets it close after a cool-down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerRule {
    pub name: String,
    /// The topics it watches; each matching topic trips on its own.
    pub pattern: TopicPattern,
    pub metric: RuleMetric,
    pub threshold: u64,
    /// How long the metric must stay above the threshold.
    pub sustain_secs: u32,
    /// How long a breaker it opened stays open.
    pub cool_down_secs: u32,
    pub mode: BreakerMode,
    pub produce: bool,
    pub fetch: bool,
}

/// One side of a quota's entity, as Kafka's `/config/users/<user>/clients/<client-id>`
/// names it: a given name, or `<default>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaEntity {
    Default,
    Named(String),
}

impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaEntity::Default => f.write_str("<default>"),
            QuotaEntity::Named(name) => f.write_str(name),
        }
    }
}

/// What a quota applies to: a user, a client id, or both; at least one is set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaKey {
    pub user: Option<QuotaEntity>,
    pub client_id: Option<QuotaEntity>,
}

impl fmt::Display for QuotaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.user, &self.client_id) {
            (Some(user), Some(client)) => write!(f, "user={user} client-id={client}"),
            (Some(user), None) => write!(f, "user={user}"),
            (None, Some(client)) => write!(f, "client-id={client}"),
            (None, None) => f.write_str("(nothing)"),
        }
    }
}

/// The limits of one quota entity, with Kafka's names; unset ones do not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLimits {
    /// Produce bytes per second.
    pub producer_byte_rate: Option<u64>,
    /// Fetch bytes per second.
    pub consumer_byte_rate: Option<u64>,
    /// Requests per second, of any API.
    pub request_rate: Option<u64>,
}

impl QuotaLimits {
    pub fn is_empty(&self) -> bool {
        *self == QuotaLimits::default()
    }
}

/// Which limit of a [`QuotaLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaKind {
    ProducerByteRate,
    ConsumerByteRate,
    RequestRate,
}

impl QuotaKind {
    pub const VALUES: [QuotaKind; 3] = [
        QuotaKind::ProducerByteRate,
        QuotaKind::ConsumerByteRate,
        QuotaKind::RequestRate,
    ];

    /// Kafka's config name (`kafka-configs --add-config producer_byte_rate=...`).
    pub fn kafka_name(self) -> &'static str {
        match self {
            QuotaKind::ProducerByteRate => "producer_byte_rate",
            QuotaKind::ConsumerByteRate => "consumer_byte_rate",
            QuotaKind::RequestRate => "request_rate",
        }
    }

    pub fn of(self, limits: &QuotaLimits) -> Option<u64> {
        match self {
            QuotaKind::ProducerByteRate => limits.producer_byte_rate,
            QuotaKind::ConsumerByteRate => limits.consumer_byte_rate,
            QuotaKind::RequestRate => limits.request_rate,
        }
    }
}

/// The quota that governs one kind of traffic of one client, and whose usage it counts
/// against: the resolved key with `<default>` replaced by the client's own names, since
/// a default quota gives each user (or client id) a budget of its own, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResolvedQuota {
    pub limit: u64,
    /// The configured entity that matched.
    pub key: QuotaKey,
    /// The budget's owner: `(user, client id)`, each present when the key names it.
    pub bucket: (Option<String>, Option<String>),
}

impl ControlState {
    /// The breaker that covers `topic` at `now_ms`, if one is open: an exact name beats
    /// every prefix, a longer prefix a shorter one.
    pub fn breaker_for(&self, topic: &str, now_ms: u64) -> Option<&Breaker> {
        self.breakers
            .values()
            .filter(|b| b.pattern.matches(topic) && b.is_open_at(now_ms))
            .max_by_key(|b| b.pattern.specificity())
    }

    /// The quota of `kind` for a client, by Kafka's precedence: user and client id, user
    /// and default client, user alone, default user and client id, default user and
    /// default client, default user alone, client id alone, default client alone.
    pub fn quota_for(
        &self,
        kind: QuotaKind,
        user: Option<&str>,
        client_id: &str,
    ) -> Option<ResolvedQuota> {
        if self.quotas.is_empty() {
            return None;
        }
        let named = |name: &str| Some(QuotaEntity::Named(name.to_string()));
        let default = || Some(QuotaEntity::Default);
        let mut candidates = Vec::with_capacity(8);
        if let Some(user) = user {
            for user_side in [named(user), default()] {
                for client_side in [named(client_id), default(), None] {
                    candidates.push(QuotaKey {
                        user: user_side.clone(),
                        client_id: client_side,
                    });
                }
            }
        }
        candidates.push(QuotaKey {
            user: None,
            client_id: named(client_id),
        });
        candidates.push(QuotaKey {
            user: None,
            client_id: default(),
        });
        candidates.into_iter().find_map(|key| {
            let limit = kind.of(self.quotas.get(&key)?)?;
            let bucket = (
                key.user.as_ref().and(user.map(str::to_string)),
                key.client_id.as_ref().map(|_| client_id.to_string()),
            );
            Some(ResolvedQuota { limit, key, bucket })
        })
    }

    /// Whether the state holds any governance data; only a fleet at feature level 3 or
    /// higher can.
    pub fn has_governance_data(&self) -> bool {
        !self.breakers.is_empty() || !self.breaker_rules.is_empty() || !self.quotas.is_empty()
    }

    pub(crate) fn open_breaker(&mut self, breaker: &Breaker) -> CommandResult {
        self.breakers
            .insert(breaker.pattern.clone(), breaker.clone());
        CommandResult::Ok
    }

    /// Closes the breaker on `pattern`; with `opened_at_ms`, only that opening of it, so a
    /// rule's late close cannot end a breaker an operator opened since.
    pub(crate) fn close_breaker(
        &mut self,
        pattern: &TopicPattern,
        opened_at_ms: Option<u64>,
    ) -> CommandResult {
        let matches = self
            .breakers
            .get(pattern)
            .is_some_and(|b| opened_at_ms.is_none_or(|at| b.opened_at_ms == at));
        if matches {
            self.breakers.remove(pattern);
        }
        CommandResult::Ok
    }

    pub(crate) fn put_breaker_rule(&mut self, rule: &BreakerRule) -> CommandResult {
        self.breaker_rules.insert(rule.name.clone(), rule.clone());
        CommandResult::Ok
    }

    pub(crate) fn delete_breaker_rule(&mut self, name: &str) -> CommandResult {
        self.breaker_rules.remove(name);
        CommandResult::Ok
    }

    /// Sets the limits of `key`; empty limits remove it.
    pub(crate) fn set_quota(&mut self, key: &QuotaKey, limits: &QuotaLimits) -> CommandResult {
        if limits.is_empty() {
            self.quotas.remove(key);
        } else {
            self.quotas.insert(key.clone(), *limits);
        }
        CommandResult::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Command;

    fn pattern(text: &str) -> TopicPattern {
        text.parse().unwrap()
    }

    fn breaker(text: &str, opened_at_ms: u64, until_ms: Option<u64>) -> Breaker {
        Breaker {
            pattern: pattern(text),
            produce: true,
            fetch: false,
            mode: BreakerMode::Hold,
            reason: "test".into(),
            origin: BreakerOrigin::Manual,
            opened_at_ms,
            until_ms,
        }
    }

    fn governed() -> ControlState {
        let mut state = ControlState::default();
        state.apply(&Command::SetFeatureLevel { level: 3 });
        state
    }

    #[test]
    fn governance_commands_need_level_3() {
        let commands = [
            Command::OpenBreaker {
                breaker: breaker("orders", 1, None),
            },
            Command::CloseBreaker {
                pattern: pattern("orders"),
                opened_at_ms: None,
            },
            Command::DeleteBreakerRule { name: "r".into() },
            Command::SetQuota {
                key: key(None, Some("app")),
                limits: produce(1),
            },
        ];
        for command in commands {
            let mut below = ControlState::default();
            below.apply(&Command::SetFeatureLevel { level: 2 });
            assert!(!below.accepts(&command), "{command:?}");
            assert!(matches!(
                below.apply(&command),
                CommandResult::Refused { needed: 3, .. }
            ));
            assert!(governed().accepts(&command));
        }
    }

    #[test]
    fn patterns_parse_and_print_back() {
        assert_eq!(pattern("orders").to_string(), "orders");
        assert_eq!(pattern("orders.*").to_string(), "orders.*");
        assert!(pattern("orders.*").matches("orders.eu"));
        assert!(!pattern("orders").matches("orders.eu"));
        for bad in ["*", "", "a*b", "a**"] {
            assert!(bad.parse::<TopicPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_open_breaker_covers_a_topic() {
        let mut state = governed();
        for b in [
            breaker("o*", 1, None),
            breaker("orders*", 2, None),
            breaker("orders", 3, None),
        ] {
            state.apply(&Command::OpenBreaker { breaker: b });
        }
        assert_eq!(state.breaker_for("orders", 0).unwrap().opened_at_ms, 3);
        assert_eq!(state.breaker_for("orders.eu", 0).unwrap().opened_at_ms, 2);
        assert_eq!(state.breaker_for("other", 0).unwrap().opened_at_ms, 1);
        assert!(state.breaker_for("payments", 0).is_none());
    }

    #[test]
    fn a_timed_breaker_stops_applying_at_its_end() {
        let mut state = governed();
        state.apply(&Command::OpenBreaker {
            breaker: breaker("orders", 1_000, Some(5_000)),
        });
        assert!(state.breaker_for("orders", 4_999).is_some());
        assert!(state.breaker_for("orders", 5_000).is_none());
    }

    #[test]
    fn a_close_for_one_opening_leaves_a_later_one_open() {
        let mut state = governed();
        state.apply(&Command::OpenBreaker {
            breaker: breaker("orders", 1, None),
        });
        state.apply(&Command::OpenBreaker {
            breaker: breaker("orders", 2, None),
        });
        state.apply(&Command::CloseBreaker {
            pattern: pattern("orders"),
            opened_at_ms: Some(1),
        });
        assert!(state.breaker_for("orders", 0).is_some());
        state.apply(&Command::CloseBreaker {
            pattern: pattern("orders"),
            opened_at_ms: None,
        });
        assert!(state.breakers.is_empty());
    }

    fn key(user: Option<&str>, client: Option<&str>) -> QuotaKey {
        let entity = |s: &str| match s {
            "<default>" => QuotaEntity::Default,
            name => QuotaEntity::Named(name.into()),
        };
        QuotaKey {
            user: user.map(entity),
            client_id: client.map(entity),
        }
    }

    fn produce(rate: u64) -> QuotaLimits {
        QuotaLimits {
            producer_byte_rate: Some(rate),
            ..QuotaLimits::default()
        }
    }

    #[test]
    fn quotas_resolve_in_kafkas_order() {
        let mut state = governed();
        let keys = [
            key(Some("alice"), Some("app")),
            key(Some("alice"), Some("<default>")),
            key(Some("alice"), None),
            key(Some("<default>"), Some("app")),
            key(Some("<default>"), Some("<default>")),
            key(Some("<default>"), None),
            key(None, Some("app")),
            key(None, Some("<default>")),
        ];
        for (rate, k) in keys.iter().enumerate() {
            state.apply(&Command::SetQuota {
                key: k.clone(),
                limits: produce(rate as u64),
            });
        }
        // Remove the most specific one at a time: the next in Kafka's order answers.
        for (rate, k) in keys.iter().enumerate() {
            let resolved = state
                .quota_for(QuotaKind::ProducerByteRate, Some("alice"), "app")
                .unwrap();
            assert_eq!((resolved.limit, &resolved.key), (rate as u64, k));
            state.apply(&Command::SetQuota {
                key: k.clone(),
                limits: QuotaLimits::default(),
            });
        }
        assert!(state.quotas.is_empty());
    }

    #[test]
    fn a_default_quota_gives_each_name_its_own_budget() {
        let mut state = governed();
        state.apply(&Command::SetQuota {
            key: key(None, Some("<default>")),
            limits: produce(100),
        });
        let a = state.quota_for(QuotaKind::ProducerByteRate, Some("alice"), "a");
        let b = state.quota_for(QuotaKind::ProducerByteRate, None, "b");
        assert_eq!(a.unwrap().bucket, (None, Some("a".to_string())));
        assert_eq!(b.unwrap().bucket, (None, Some("b".to_string())));
        assert!(state
            .quota_for(QuotaKind::ConsumerByteRate, None, "b")
            .is_none());
    }

    #[test]
    fn a_user_quota_applies_only_to_authenticated_clients() {
        let mut state = governed();
        state.apply(&Command::SetQuota {
            key: key(Some("<default>"), None),
            limits: produce(100),
        });
        assert!(state
            .quota_for(QuotaKind::ProducerByteRate, None, "app")
            .is_none());
        let resolved = state
            .quota_for(QuotaKind::ProducerByteRate, Some("bob"), "app")
            .unwrap();
        assert_eq!(resolved.bucket, (Some("bob".to_string()), None));
    }
}
