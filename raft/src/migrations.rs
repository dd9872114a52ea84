//! Live topic migrations in the control state: moving a topic from one backend cluster to
//! another while its producers and consumer groups run, as a state machine the Raft
//! leader drives and any leader after it resumes.
//!
//! The phases, in order:
//! - `copying-config`: the topic is created on the target with the source's partition
//!   count and configs;
//! - `switching-producers`: every node holds the topic's produce requests (a retriable
//!   answer) until none it forwarded to the source is still in flight; the leader then
//!   records each partition's end offset and its idempotent producers' last sequences on
//!   the source (`producer_marks`), so a retry of a batch the source already holds is
//!   recognised and not written twice;
//! - `draining`: produce requests go to the target; consumer groups keep reading the
//!   source until each has committed its end (`groups`);
//! - `switching-consumers`: the topic's route points at the target (committed with the
//!   phase, so every node flips at once) and each group's offsets move to the start of
//!   the target's data;
//! - `done`, or `aborted` (only before producers write to the target: after that the
//!   target holds records the source does not).
//!
//! A migration is keyed by its topic: one at a time per topic. Every enum here is encoded
//! by bincode through its variant's position: variants are only ever appended.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::governance::TopicPattern;
use crate::routes::{RouteError, RouteKey, RouteResource};
use crate::state::{CommandResult, ControlState};

/// How long a finished migration stays listed.
pub const KEEP_FINISHED_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MigrationPhase {
    CopyingConfig,
    SwitchingProducers,
    Draining,
    SwitchingConsumers,
    Done,
    Aborted,
}

impl MigrationPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationPhase::CopyingConfig => "copying-config",
            MigrationPhase::SwitchingProducers => "switching-producers",
            MigrationPhase::Draining => "draining",
            MigrationPhase::SwitchingConsumers => "switching-consumers",
            MigrationPhase::Done => "done",
            MigrationPhase::Aborted => "aborted",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, MigrationPhase::Done | MigrationPhase::Aborted)
    }

    /// Whether producers of the topic write to the target in this phase.
    pub fn produces_to_target(self) -> bool {
        matches!(
            self,
            MigrationPhase::Draining | MigrationPhase::SwitchingConsumers | MigrationPhase::Done
        )
    }

    /// Whether `self -> to` is a step a migration may take.
    fn may_become(self, to: MigrationPhase) -> bool {
        use MigrationPhase::*;
        matches!(
            (self, to),
            (CopyingConfig, SwitchingProducers)
                | (SwitchingProducers, Draining)
                | (Draining, SwitchingConsumers)
                | (SwitchingConsumers, Done)
                | (CopyingConfig | SwitchingProducers, Aborted)
        )
    }
}

impl fmt::Display for MigrationPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An idempotent producer's last batch in one partition of the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerMark {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
}

/// Where one consumer group of the topic stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupState {
    /// Still reading the source.
    Draining,
    /// Committed the source's end on every partition.
    Drained,
    /// Its offsets are at the start of the target's data.
    Switched,
    /// Moved on by `finish --force` before it drained.
    Skipped,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Draining => "draining",
            GroupState::Drained => "drained",
            GroupState::Switched => "switched",
            GroupState::Skipped => "skipped",
        }
    }
}

/// One consumer group of a migrating topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProgress {
    pub state: GroupState,
    /// Records of the source it had not committed, summed over partitions, when last
    /// looked at (what `finish --force` makes it skip).
    pub lag: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub topic: String,
    pub source: String,
    pub target: String,
    pub phase: MigrationPhase,
    pub started_at_ms: u64,
    pub phase_since_ms: u64,
    /// How long `draining` waits for its groups before only `finish --force` moves on.
    pub drain_timeout_ms: u64,
    /// Per partition, the source's end offset once producers switched.
    pub source_ends: BTreeMap<i32, i64>,
    /// Per partition, the source's idempotent producers when producers switched.
    pub producer_marks: BTreeMap<i32, Vec<ProducerMark>>,
    pub groups: BTreeMap<String, GroupProgress>,
    /// Why it was aborted, or what a forced finish skipped.
    pub note: Option<String>,
}

impl Migration {
    /// Whether a Produce batch of `producer` with first sequence `first_sequence` in
    /// `partition` is one the source already holds (a retry across the switch).
    pub fn source_holds(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        first_sequence: i32,
    ) -> bool {
        self.producer_marks.get(&partition).is_some_and(|marks| {
            marks.iter().any(|m| {
                m.producer_id == producer_id
                    && m.producer_epoch == producer_epoch
                    && first_sequence <= m.last_sequence
            })
        })
    }
}

/// What the leader's driver learned when it advances a migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    pub source_ends: Option<BTreeMap<i32, i64>>,
    pub producer_marks: Option<BTreeMap<i32, Vec<ProducerMark>>>,
    pub groups: Option<BTreeMap<String, GroupProgress>>,
    pub note: Option<String>,
}

impl ControlState {
    /// Whether the state holds any migration.
    pub fn has_migration_data(&self) -> bool {
        !self.migrations.is_empty()
    }

    /// The migration of `topic` that is not finished, if any.
    pub fn active_migration(&self, topic: &str) -> Option<&Migration> {
        self.migrations
            .get(topic)
            .filter(|m| !m.phase.is_finished())
    }

    /// Checks a new migration: a topic with none active, a source that serves it now, and
    /// a known target other than the source.
    pub fn check_migration(&self, topic: &str, target: &str) -> Result<(), String> {
        if topic.is_empty() {
            return Err("topic: a migration needs a topic name".into());
        }
        if let Some(active) = self.active_migration(topic) {
            return Err(format!(
                "topic {topic} is already migrating to {} ({})",
                active.target, active.phase
            ));
        }
        if !self.knows_cluster(target) {
            let known = self.cluster_names().join(", ");
            return Err(RouteError::UnknownCluster(target.to_string(), known).to_string());
        }
        let source = self.cluster_for(RouteResource::Topic, topic);
        if source == target {
            return Err(format!(
                "topic {topic} is already served by cluster {target}"
            ));
        }
        Ok(())
    }

    pub(crate) fn start_migration(&mut self, migration: &Migration) -> CommandResult {
        if let Err(reason) = self.check_migration(&migration.topic, &migration.target) {
            return CommandResult::Conflict { reason };
        }
        let source = self.cluster_for(RouteResource::Topic, &migration.topic);
        if source != migration.source {
            return CommandResult::Conflict {
                reason: format!(
                    "topic {} is served by cluster {source}, not {}",
                    migration.topic, migration.source
                ),
            };
        }
        if migration.phase != MigrationPhase::CopyingConfig {
            return CommandResult::Conflict {
                reason: format!(
                    "a migration starts in copying-config, not {}",
                    migration.phase
                ),
            };
        }
        self.migrations
            .insert(migration.topic.clone(), migration.clone());
        CommandResult::Ok
    }

    /// Moves `topic`'s migration from `from` to `to` with what the driver found; ignored
    /// unless it is in `from` and the step is allowed. Entering `switching-consumers`
    /// routes the topic to the target in the same command.
    pub(crate) fn advance_migration(
        &mut self,
        topic: &str,
        (from, to): (MigrationPhase, MigrationPhase),
        at_ms: u64,
        findings: &Findings,
    ) -> CommandResult {
        let Some(migration) = self.migrations.get_mut(topic) else {
            return CommandResult::Conflict {
                reason: format!("topic {topic} has no migration"),
            };
        };
        if migration.phase != from || !from.may_become(to) {
            return CommandResult::Conflict {
                reason: format!(
                    "the migration of {topic} is {}, it cannot go from {from} to {to}",
                    migration.phase
                ),
            };
        }
        migration.phase = to;
        migration.phase_since_ms = at_ms;
        findings.apply_to(migration);
        if to == MigrationPhase::SwitchingConsumers {
            let target = migration.target.clone();
            self.routes.insert(exact_topic(topic), target);
        }
        CommandResult::Ok
    }

    /// Records the driver's latest look at the groups of `topic`'s migration.
    pub(crate) fn update_migration(&mut self, topic: &str, findings: &Findings) -> CommandResult {
        match self.migrations.get_mut(topic) {
            Some(migration) if !migration.phase.is_finished() => {
                findings.apply_to(migration);
                CommandResult::Ok
            }
            _ => CommandResult::Conflict {
                reason: format!("topic {topic} has no active migration"),
            },
        }
    }

    /// Forgets finished migrations older than `KEEP_FINISHED_MS` at `now_ms`.
    pub(crate) fn forget_migrations(&mut self, now_ms: u64) -> CommandResult {
        self.migrations.retain(|_, m| {
            !m.phase.is_finished() || now_ms.saturating_sub(m.phase_since_ms) < KEEP_FINISHED_MS
        });
        CommandResult::Ok
    }
}

impl Findings {
    fn apply_to(&self, migration: &mut Migration) {
        if let Some(ends) = &self.source_ends {
            migration.source_ends = ends.clone();
        }
        if let Some(marks) = &self.producer_marks {
            migration.producer_marks = marks.clone();
        }
        if let Some(groups) = &self.groups {
            migration.groups = groups.clone();
        }
        if self.note.is_some() {
            migration.note = self.note.clone();
        }
    }
}

fn exact_topic(topic: &str) -> RouteKey {
    RouteKey {
        resource: RouteResource::Topic,
        pattern: TopicPattern {
            name: topic.to_string(),
            prefix: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Command;
    use MigrationPhase::*;

    fn fleet() -> ControlState {
        let mut state = ControlState::default();
        state.apply(&Command::SetFeatureLevel {
            level: crate::routes::LEVEL,
        });
        state.apply(&Command::RegisterCluster { name: "b".into() });
        state
    }

    /// A fleet migrating `orders` from `default` to `b`, in copying-config.
    fn migrating() -> ControlState {
        let mut state = fleet();
        let started = state.apply(&Command::StartMigration {
            migration: migration("orders", "b"),
        });
        assert_eq!(started, CommandResult::Ok);
        state
    }

    fn migration(topic: &str, target: &str) -> Migration {
        Migration {
            topic: topic.into(),
            source: "default".into(),
            target: target.into(),
            phase: CopyingConfig,
            started_at_ms: 1,
            phase_since_ms: 1,
            drain_timeout_ms: 60_000,
            source_ends: BTreeMap::new(),
            producer_marks: BTreeMap::new(),
            groups: BTreeMap::new(),
            note: None,
        }
    }

    fn advance(
        state: &mut ControlState,
        from: MigrationPhase,
        to: MigrationPhase,
    ) -> CommandResult {
        state.apply(&Command::AdvanceMigration {
            topic: "orders".into(),
            from,
            to,
            at_ms: 2,
            findings: Findings::default(),
        })
    }

    #[test]
    fn a_migration_walks_its_phases_and_routes_the_topic_when_consumers_switch() {
        let mut state = fleet();
        let start = Command::StartMigration {
            migration: migration("orders", "b"),
        };
        assert_eq!(state.apply(&start), CommandResult::Ok);
        assert!(matches!(
            state.apply(&start),
            CommandResult::Conflict { .. }
        ));
        for (from, to) in [
            (CopyingConfig, SwitchingProducers),
            (SwitchingProducers, Draining),
        ] {
            assert_eq!(advance(&mut state, from, to), CommandResult::Ok);
            assert_eq!(state.cluster_for(RouteResource::Topic, "orders"), "default");
        }
        // Applied twice (a retried proposal), the second changes nothing.
        assert!(matches!(
            advance(&mut state, SwitchingProducers, Draining),
            CommandResult::Conflict { .. }
        ));
        assert_eq!(
            advance(&mut state, Draining, SwitchingConsumers),
            CommandResult::Ok
        );
        assert_eq!(state.cluster_for(RouteResource::Topic, "orders"), "b");
        assert_eq!(
            advance(&mut state, SwitchingConsumers, Done),
            CommandResult::Ok
        );
        assert!(state.active_migration("orders").is_none());
        // Done, the topic may move again (back to default, say).
        assert!(state.check_migration("orders", "default").is_ok());
    }

    #[test]
    fn only_a_migration_whose_producers_still_write_the_source_can_abort() {
        let mut state = migrating();
        advance(&mut state, CopyingConfig, SwitchingProducers);
        advance(&mut state, SwitchingProducers, Draining);
        assert!(matches!(
            advance(&mut state, Draining, Aborted),
            CommandResult::Conflict { .. }
        ));
        let mut early = migrating();
        assert_eq!(
            advance(&mut early, CopyingConfig, Aborted),
            CommandResult::Ok
        );
        assert_eq!(early.cluster_for(RouteResource::Topic, "orders"), "default");
    }

    #[test]
    fn migrations_to_nowhere_or_to_where_the_topic_is_are_refused() {
        let state = fleet();
        let err = state.check_migration("orders", "c").unwrap_err();
        assert!(err.contains("`c` is not a backend cluster"), "{err}");
        let err = state.check_migration("orders", "default").unwrap_err();
        assert_eq!(err, "topic orders is already served by cluster default");
    }

    #[test]
    fn a_retry_at_or_below_a_producers_last_source_sequence_is_recognised() {
        let mut m = migration("orders", "b");
        m.producer_marks.insert(
            0,
            vec![ProducerMark {
                producer_id: 7,
                producer_epoch: 0,
                last_sequence: 41,
            }],
        );
        assert!(m.source_holds(0, 7, 0, 41));
        assert!(m.source_holds(0, 7, 0, 37));
        assert!(!m.source_holds(0, 7, 0, 42));
        assert!(!m.source_holds(0, 7, 1, 3), "a new epoch starts afresh");
        assert!(!m.source_holds(1, 7, 0, 3));
    }

    #[test]
    fn finished_migrations_are_forgotten_after_a_day() {
        let mut state = migrating();
        advance(&mut state, CopyingConfig, Aborted);
        state.apply(&Command::ForgetMigrations {
            now_ms: 2 + KEEP_FINISHED_MS - 1,
        });
        assert_eq!(state.migrations.len(), 1);
        state.apply(&Command::ForgetMigrations {
            now_ms: 2 + KEEP_FINISHED_MS,
        });
        assert!(state.migrations.is_empty());
    }
}
