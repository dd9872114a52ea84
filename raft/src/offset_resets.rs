//! Online consumer offset resets in the control state.
//!
//! Kafka moves a group's committed offsets only while the group has no members. The fleet
//! sees every group request of every member on every node, so it can do better: it fences
//! the group's members fleet-wide (they drop their positions without committing them and
//! cannot rejoin), empties the group, commits the targets as Kafka's own tool does, and
//! lets the members back in, to find the targets waiting. That only holds if every node
//! fences at once and a reset survives the node driving it, so the reset lives here.
//!
//! A reset's targets are concrete offsets, resolved by the proposer once (from
//! `--to-earliest`, a timestamp and so on) and clamped to each partition's valid range:
//! every node, and a leader that takes over the reset half way, applies the same numbers.
//! A reset's id makes its creation idempotent, and each phase change names the phase it
//! leaves, so a change proposed twice (a leader retrying after a lost answer) does
//! nothing the second time.
//!
//! Every enum here is encoded by bincode through its variant's position: variants are only
//! ever appended.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::state::{CommandResult, ControlState};

/// The fleet feature level that introduced offset resets (see [`crate::state`]).
pub const LEVEL: u16 = 4;

/// Finished resets kept for `proxyctl group resets`; older ones are forgotten.
pub const FINISHED_KEPT: usize = 100;

/// Where a reset is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResetPhase {
    /// Committed; the group is not touched yet.
    Pending,
    /// The group is fenced on every node: its members are refused and it is being emptied
    /// so the targets can be committed.
    Applying,
    /// The targets are committed in Kafka and the group is open again.
    Done,
    /// The reset did not complete before its deadline; the group is open again, with
    /// whatever offsets it had.
    Expired,
    /// An operator cancelled it while it was pending; the group was never touched.
    Cancelled,
}

impl ResetPhase {
    /// Whether the reset is still to be carried out.
    pub fn is_active(self) -> bool {
        matches!(self, ResetPhase::Pending | ResetPhase::Applying)
    }

    pub fn name(self) -> &'static str {
        match self {
            ResetPhase::Pending => "pending",
            ResetPhase::Applying => "applying",
            ResetPhase::Done => "done",
            ResetPhase::Expired => "expired",
            ResetPhase::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ResetPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One partition of a reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReset {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset when the reset was planned; `None` if it had none.
    pub previous: Option<i64>,
    /// The offset the group will resume from.
    pub target: i64,
    /// Whether the target is committed in Kafka.
    pub applied: bool,
}

/// A reset of one group's committed offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetReset {
    /// Unique in the fleet; chosen by the proposer.
    pub id: String,
    pub group: String,
    pub partitions: Vec<PartitionReset>,
    pub phase: ResetPhase,
    /// How the targets were asked for (`to-earliest`, `shift-by -5`, ...), for listings.
    pub spec: String,
    /// Who asked for it (an admin token's name, or `anonymous`).
    pub requested_by: String,
    /// Wall-clock milliseconds given by the proposer.
    pub created_at_ms: u64,
    /// The reset is not started before this instant (a scheduled reset); until then it
    /// stays pending and can be cancelled.
    pub start_at_ms: u64,
    /// A reset still active then is expired by the leader.
    pub deadline_ms: u64,
    /// When it reached its final phase.
    pub finished_at_ms: Option<u64>,
}

impl OffsetReset {
    /// Whether the reset covers this partition.
    pub fn covers(&self, topic: &str, partition: i32) -> bool {
        self.partitions
            .iter()
            .any(|p| p.partition == partition && p.topic == topic)
    }

    /// Whether the reset names this topic at all.
    pub fn covers_topic(&self, topic: &str) -> bool {
        self.partitions.iter().any(|p| p.topic == topic)
    }
}

impl ControlState {
    /// The reset being carried out on `group`, if any: at most one is at a time.
    pub fn active_reset(&self, group: &str) -> Option<&OffsetReset> {
        self.offset_resets
            .values()
            .find(|r| r.phase.is_active() && r.group == group)
    }

    /// Whether any reset is being carried out (the data path's cheap first question).
    pub fn has_active_resets(&self) -> bool {
        self.offset_resets.values().any(|r| r.phase.is_active())
    }

    pub(crate) fn create_offset_reset(&mut self, reset: &OffsetReset) -> CommandResult {
        if self.offset_resets.contains_key(&reset.id) {
            return CommandResult::Ok;
        }
        if let Some(other) = self.active_reset(&reset.group) {
            return CommandResult::Conflict {
                reason: format!(
                    "group {} already has reset {} {}",
                    reset.group, other.id, other.phase
                ),
            };
        }
        self.offset_resets.insert(reset.id.clone(), reset.clone());
        CommandResult::Ok
    }

    /// Moves reset `id` from phase `from` to `to`; anything else is ignored, so a repeated
    /// or overtaken proposal changes nothing.
    pub(crate) fn advance_offset_reset(
        &mut self,
        id: &str,
        from: ResetPhase,
        to: ResetPhase,
        at_ms: u64,
    ) -> CommandResult {
        let Some(reset) = self.offset_resets.get_mut(id) else {
            return CommandResult::Ok;
        };
        if reset.phase != from || !allowed(from, to) {
            return CommandResult::Ok;
        }
        reset.phase = to;
        if to == ResetPhase::Done {
            for partition in &mut reset.partitions {
                partition.applied = true;
            }
        }
        if !to.is_active() {
            reset.finished_at_ms = Some(at_ms);
            self.forget_old_resets();
        }
        CommandResult::Ok
    }

    /// Keeps the newest [`FINISHED_KEPT`] finished resets.
    fn forget_old_resets(&mut self) {
        let mut finished: Vec<(u64, String)> = self
            .offset_resets
            .values()
            .filter(|r| !r.phase.is_active())
            .map(|r| (r.finished_at_ms.unwrap_or(0), r.id.clone()))
            .collect();
        if finished.len() <= FINISHED_KEPT {
            return;
        }
        finished.sort();
        for (_, id) in &finished[..finished.len() - FINISHED_KEPT] {
            self.offset_resets.remove(id);
        }
    }
}

/// The phase changes a reset may make.
fn allowed(from: ResetPhase, to: ResetPhase) -> bool {
    use ResetPhase::*;
    matches!(
        (from, to),
        (Pending, Applying)
            | (Pending, Done)
            | (Pending, Expired)
            | (Pending, Cancelled)
            | (Applying, Done)
            | (Applying, Expired)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Command;

    fn reset(id: &str, group: &str) -> OffsetReset {
        OffsetReset {
            id: id.into(),
            group: group.into(),
            partitions: vec![PartitionReset {
                topic: "t".into(),
                partition: 0,
                previous: Some(10),
                target: 0,
                applied: false,
            }],
            phase: ResetPhase::Pending,
            spec: "to-earliest".into(),
            requested_by: "anonymous".into(),
            created_at_ms: 1,
            start_at_ms: 1,
            deadline_ms: 100,
            finished_at_ms: None,
        }
    }

    fn state() -> ControlState {
        ControlState {
            feature_level: LEVEL,
            ..ControlState::default()
        }
    }

    fn advance(id: &str, from: ResetPhase, to: ResetPhase) -> Command {
        Command::AdvanceOffsetReset {
            id: id.into(),
            from,
            to,
            at_ms: 5,
        }
    }

    #[test]
    fn creating_twice_keeps_the_first() {
        let mut s = state();
        s.apply(&Command::CreateOffsetReset {
            reset: reset("a", "g"),
        });
        s.apply(&advance("a", ResetPhase::Pending, ResetPhase::Applying));
        let again = s.apply(&Command::CreateOffsetReset {
            reset: reset("a", "g"),
        });
        assert_eq!(again, CommandResult::Ok);
        assert_eq!(s.offset_resets["a"].phase, ResetPhase::Applying);
    }

    #[test]
    fn one_active_reset_per_group() {
        let mut s = state();
        s.apply(&Command::CreateOffsetReset {
            reset: reset("a", "g"),
        });
        let second = s.apply(&Command::CreateOffsetReset {
            reset: reset("b", "g"),
        });
        assert!(matches!(second, CommandResult::Conflict { .. }));
        assert!(!s.offset_resets.contains_key("b"));
        s.apply(&Command::CreateOffsetReset {
            reset: reset("c", "other"),
        });
        assert!(s.offset_resets.contains_key("c"));
    }

    #[test]
    fn phases_only_move_forward_from_the_named_phase() {
        let mut s = state();
        s.apply(&Command::CreateOffsetReset {
            reset: reset("a", "g"),
        });
        s.apply(&advance("a", ResetPhase::Pending, ResetPhase::Applying));
        // Cancelling is only for pending resets, and a stale `from` does nothing.
        s.apply(&advance("a", ResetPhase::Applying, ResetPhase::Cancelled));
        s.apply(&advance("a", ResetPhase::Pending, ResetPhase::Expired));
        assert_eq!(s.offset_resets["a"].phase, ResetPhase::Applying);
        assert!(s.active_reset("g").is_some());
        s.apply(&advance("a", ResetPhase::Applying, ResetPhase::Done));
        let done = &s.offset_resets["a"];
        assert_eq!(done.phase, ResetPhase::Done);
        assert!(done.partitions.iter().all(|p| p.applied));
        assert_eq!(done.finished_at_ms, Some(5));
        assert!(s.active_reset("g").is_none());
        assert!(!s.has_active_resets());
    }

    #[test]
    fn old_finished_resets_are_forgotten() {
        let mut s = state();
        for i in 0..FINISHED_KEPT + 3 {
            let id = format!("r{i}");
            s.apply(&Command::CreateOffsetReset {
                reset: reset(&id, "g"),
            });
            s.apply(&Command::AdvanceOffsetReset {
                id,
                from: ResetPhase::Pending,
                to: ResetPhase::Cancelled,
                at_ms: i as u64,
            });
        }
        assert_eq!(s.offset_resets.len(), FINISHED_KEPT);
        assert!(!s.offset_resets.contains_key("r0"));
        assert!(s
            .offset_resets
            .contains_key(&format!("r{}", FINISHED_KEPT + 2)));
    }

    #[test]
    fn resets_need_their_level() {
        let mut s = ControlState {
            feature_level: LEVEL - 1,
            ..ControlState::default()
        };
        let result = s.apply(&Command::CreateOffsetReset {
            reset: reset("a", "g"),
        });
        assert!(matches!(
            result,
            CommandResult::Refused { needed: LEVEL, .. }
        ));
        assert!(s.offset_resets.is_empty());
    }
}
