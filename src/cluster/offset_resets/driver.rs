//! The Raft leader's side of a reset: moves every active reset through its phases.
//!
//! Every 250 ms the leader looks at each active reset: one past its deadline is expired;
//! a pending one whose start has come becomes applying (from then on every node fences
//! the group); an applying one waits for its group to be empty (the nodes' evictors
//! remove each member once it has been refused; members still listed 15 s on are removed
//! by the leader), then the targets are committed at the coordinator with no member and
//! generation -1, after which the reset is done. Every step reads Kafka afresh
//! and is safe to repeat while the group is fenced (removing a member already gone, or
//! committing the same targets again, changes nothing), so a new leader that takes over
//! after kill -9 of the old one just carries on from the committed phase.
//!
//! Every node, leader or not, keeps `flotilla_offset_resets{state}` equal to the
//! committed state's counts, and runs an evictor: the members its `offset_reset` filter
//! fences are removed from their group at once, which is what usually empties a group;
//! the leader's own removals only catch the members no node has heard from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_raft::governance::unix_millis;
use flotilla_raft::offset_resets::{OffsetReset, ResetPhase};
use flotilla_raft::{Command, ControlState};

use super::evictions::Eviction;
use super::plan::{coordinator_client, group_cluster};
use crate::backend::groups::{self, GroupMember, GroupProtocol, TopicPartition};
use crate::backend::BrokerClient;
use crate::cluster::fleet::Fleet;
use crate::cluster::writes::commit;
use crate::context::Context;
use crate::metrics::Metrics;

/// How often the leader looks at the active resets.
const TICK: Duration = Duration::from_millis(250);

/// How long an applying reset waits for the nodes' evictors to empty its group (each
/// removes a member once it has refused it, so it has dropped its positions) before the
/// leader removes the members still listed. Clients heartbeat every 3 s (classic) or 5 s
/// (KIP-848) by default, so every live member connected through the fleet is fenced well
/// within it.
const FALLBACK_REMOVAL_AFTER: Duration = Duration::from_secs(15);

/// Distinct failures logged per reset; past that a reset's failures are only debug lines.
const LOGGED_FAILURES_PER_RESET: usize = 20;

const PHASES: [ResetPhase; 5] = [
    ResetPhase::Pending,
    ResetPhase::Applying,
    ResetPhase::Done,
    ResetPhase::Expired,
    ResetPhase::Cancelled,
];

/// Runs for the life of the node (see the module doc).
pub async fn drive(fleet: Arc<Fleet>, ctx: Arc<Context>) {
    tokio::join!(
        count_by_state(fleet.clone(), ctx.metrics.clone()),
        lead(fleet, ctx)
    );
}

/// Keeps the gauge of resets by state equal to the committed state.
async fn count_by_state(fleet: Arc<Fleet>, metrics: Arc<Metrics>) {
    let mut states = fleet.raft.state();
    loop {
        let state = states.borrow_and_update().clone();
        publish_counts(&state, &metrics);
        if states.changed().await.is_err() {
            return;
        }
    }
}

fn publish_counts(state: &ControlState, metrics: &Metrics) {
    let mut counts: BTreeMap<&str, i64> = PHASES.iter().map(|p| (p.name(), 0)).collect();
    for reset in state.offset_resets.values() {
        *counts.entry(reset.phase.name()).or_default() += 1;
    }
    for (state, count) in counts {
        metrics
            .offset_resets
            .by_state
            .with_label_values(&[state])
            .set(count);
    }
}

/// Steps every active reset while this node leads.
async fn lead(fleet: Arc<Fleet>, ctx: Arc<Context>) {
    let mut driver = Driver::default();
    let mut timer = tokio::time::interval(TICK);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        let status = fleet.status();
        if status.leader != Some(status.node_id) {
            driver = Driver::default();
            continue;
        }
        let state = fleet.raft.state().borrow().clone();
        driver.forget_finished(&state);
        for reset in state.offset_resets.values().filter(|r| r.phase.is_active()) {
            driver.step(&fleet, &ctx, reset).await;
        }
    }
}

/// What the leader remembers of each active reset, only to keep its log readable.
#[derive(Default)]
struct Driver {
    /// Failures already logged, by reset id.
    logged_failures: HashMap<String, HashSet<String>>,
    /// When this leader first saw each reset applying: members still listed
    /// [`FALLBACK_REMOVAL_AFTER`] later are removed by the leader itself.
    applying_since: HashMap<String, Instant>,
}

impl Driver {
    fn forget_finished(&mut self, state: &ControlState) {
        let active = |id: &String| {
            state
                .offset_resets
                .get(id)
                .is_some_and(|r| r.phase.is_active())
        };
        self.logged_failures.retain(|id, _| active(id));
        self.applying_since.retain(|id, _| active(id));
    }

    async fn step(&mut self, fleet: &Fleet, ctx: &Context, reset: &OffsetReset) {
        let now_ms = unix_millis();
        if now_ms >= reset.deadline_ms {
            self.advance(fleet, reset, ResetPhase::Expired, now_ms)
                .await;
            return;
        }
        match reset.phase {
            ResetPhase::Pending if now_ms >= reset.start_at_ms => {
                self.advance(fleet, reset, ResetPhase::Applying, now_ms)
                    .await;
            }
            ResetPhase::Applying => {
                if let Err(e) = self.apply(fleet, ctx, reset).await {
                    self.failed(reset, &format!("{e:#}"));
                }
            }
            _ => {}
        }
    }

    /// One pass of an applying reset: empty the group, or commit the targets to the
    /// emptied group and mark the reset done.
    async fn apply(
        &mut self,
        fleet: &Fleet,
        ctx: &Context,
        reset: &OffsetReset,
    ) -> anyhow::Result<()> {
        let group = &reset.group;
        let cluster = group_cluster(ctx, group)?;
        let mut client = coordinator_client(&cluster, group).await?;
        let description = groups::describe_group(&mut client, group).await?;
        if !description.members.is_empty() {
            let since = *self
                .applying_since
                .entry(reset.id.clone())
                .or_insert_with(Instant::now);
            if since.elapsed() >= FALLBACK_REMOVAL_AFTER {
                self.remove_unfenced(ctx, &mut client, reset, &description)
                    .await?;
            }
            return Ok(());
        }
        if !description.accepts_simple_commits() {
            tracing::debug!(reset = %reset.id, state = %description.state, "waiting for the group to settle empty");
            return Ok(());
        }
        groups::commit_offsets(&mut client, group, &targets_of(reset)).await?;
        let now_ms = unix_millis();
        if self.advance(fleet, reset, ResetPhase::Done, now_ms).await {
            let started_ms = reset.created_at_ms.max(reset.start_at_ms);
            let seconds = now_ms.saturating_sub(started_ms) as f64 / 1000.0;
            ctx.metrics.offset_resets.duration.observe(seconds);
        }
        Ok(())
    }

    /// Removes members no node has fenced in [`FALLBACK_REMOVAL_AFTER`]: their node died
    /// before its evictor removed them, or they talk to Kafka past the fleet. Such a member
    /// may still hold positions; it learns of its removal at its next heartbeat, and
    /// until then may deliver records from them (never commit them: Kafka refuses a
    /// removed member's commits).
    async fn remove_unfenced(
        &mut self,
        ctx: &Context,
        client: &mut BrokerClient,
        reset: &OffsetReset,
        description: &groups::GroupDescription,
    ) -> anyhow::Result<()> {
        let members: Vec<&str> = description
            .members
            .iter()
            .map(|m| m.member_id.as_str())
            .collect();
        tracing::warn!(
            reset = %reset.id,
            group = %reset.group,
            ?members,
            "offset reset: members not fenced by any node after {FALLBACK_REMOVAL_AFTER:?}; \
             removing them from the group"
        );
        let removed = groups::remove_members(
            client,
            &reset.group,
            description.protocol,
            &description.members,
        )
        .await?;
        ctx.metrics
            .offset_resets
            .evicted_members
            .inc_by(removed as u64);
        Ok(())
    }

    /// Proposes moving `reset` from its phase to `to`; true once committed.
    async fn advance(
        &mut self,
        fleet: &Fleet,
        reset: &OffsetReset,
        to: ResetPhase,
        at_ms: u64,
    ) -> bool {
        let command = Command::AdvanceOffsetReset {
            id: reset.id.clone(),
            from: reset.phase,
            to,
            at_ms,
        };
        match commit(fleet, command).await {
            Ok(()) => {
                log_phase_change(reset, to);
                true
            }
            Err(e) => {
                self.failed(reset, &format!("moving it to {to}: {e}"));
                false
            }
        }
    }

    /// Logs a failure at warn the first time this reset meets it, at debug after that.
    fn failed(&mut self, reset: &OffsetReset, error: &str) {
        let seen = self.logged_failures.entry(reset.id.clone()).or_default();
        if seen.len() < LOGGED_FAILURES_PER_RESET && seen.insert(error.to_string()) {
            tracing::warn!(reset = %reset.id, group = %reset.group, phase = %reset.phase, "offset reset: {error}; retrying");
        } else {
            tracing::debug!(reset = %reset.id, "offset reset: {error}; retrying");
        }
    }
}

fn log_phase_change(reset: &OffsetReset, to: ResetPhase) {
    let (id, group) = (&reset.id, &reset.group);
    match to {
        ResetPhase::Expired if reset.phase == ResetPhase::Pending => tracing::warn!(
            reset = %id,
            group = %group,
            "offset reset expired before it started; the group was never touched"
        ),
        ResetPhase::Expired => tracing::warn!(
            reset = %id,
            group = %group,
            "offset reset expired while applying: the group is open again with the \
             offsets it had"
        ),
        _ => tracing::info!(
            reset = %id,
            group = %group,
            partitions = reset.partitions.len(),
            "offset reset {} -> {to}",
            reset.phase
        ),
    }
}

/// Removes the members this node's `offset_reset` filter fenced, as soon as it fenced
/// them, so a group empties within a heartbeat interval rather than a session timeout;
/// the leader's driver removes any the evictor missed. Runs for the life of the node.
pub async fn evict_fenced(ctx: Arc<Context>) {
    let Some(mut fenced) = ctx.evictions.take_receiver() else {
        return;
    };
    while let Some(first) = fenced.recv().await {
        // Whatever else is queued goes along: one LeaveGroup per classic group.
        let mut batch = vec![first];
        while let Ok(next) = fenced.try_recv() {
            batch.push(next);
        }
        for ((reset_id, group, protocol), members) in by_group(batch) {
            if !still_applying(&ctx, &reset_id) {
                // A KIP-848 member keeps its id when it rejoins: once the reset is over,
                // removing that id would throw out a member in good standing.
                continue;
            }
            if let Err(e) = evict(&ctx, &group, protocol, &members).await {
                tracing::warn!(reset = %reset_id, group = %group, "offset reset: removing fenced members: {e:#}; the leader retries");
            }
        }
    }
}

type GroupKey = (String, String, GroupProtocol);

fn by_group(batch: Vec<Eviction>) -> BTreeMap<GroupKey, Vec<GroupMember>> {
    let mut groups: BTreeMap<GroupKey, Vec<GroupMember>> = BTreeMap::new();
    for eviction in batch {
        groups
            .entry((eviction.reset_id, eviction.group, eviction.protocol))
            .or_default()
            .push(GroupMember {
                member_id: eviction.member_id,
                instance_id: eviction.group_instance_id,
            });
    }
    groups
}

fn still_applying(ctx: &Context, reset_id: &str) -> bool {
    ctx.control
        .load()
        .offset_resets
        .get(reset_id)
        .is_some_and(|r| r.phase == ResetPhase::Applying)
}

async fn evict(
    ctx: &Context,
    group: &str,
    protocol: GroupProtocol,
    members: &[GroupMember],
) -> anyhow::Result<()> {
    let cluster = group_cluster(ctx, group)?;
    let mut client = coordinator_client(&cluster, group).await?;
    let removed = groups::remove_members(&mut client, group, protocol, members).await?;
    ctx.metrics
        .offset_resets
        .evicted_members
        .inc_by(removed as u64);
    Ok(())
}

fn targets_of(reset: &OffsetReset) -> BTreeMap<TopicPartition, i64> {
    reset
        .partitions
        .iter()
        .map(|p| ((p.topic.clone(), p.partition), p.target))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_raft::offset_resets::PartitionReset;

    fn reset(id: &str, phase: ResetPhase) -> OffsetReset {
        OffsetReset {
            id: id.into(),
            group: "g".into(),
            partitions: vec![
                PartitionReset {
                    topic: "t".into(),
                    partition: 1,
                    previous: Some(9),
                    target: 3,
                    applied: false,
                },
                PartitionReset {
                    topic: "t".into(),
                    partition: 0,
                    previous: None,
                    target: 4,
                    applied: false,
                },
            ],
            phase,
            spec: "to-offset 3".into(),
            requested_by: "anonymous".into(),
            created_at_ms: 1,
            start_at_ms: 1,
            deadline_ms: 2,
            finished_at_ms: None,
        }
    }

    #[test]
    fn every_state_is_counted_zeros_included() {
        let metrics = Metrics::default();
        let mut state = ControlState::default();
        for (id, phase) in [
            ("a", ResetPhase::Applying),
            ("b", ResetPhase::Done),
            ("c", ResetPhase::Done),
        ] {
            state.offset_resets.insert(id.into(), reset(id, phase));
        }
        publish_counts(&state, &metrics);
        let count = |s: &str| metrics.offset_resets.by_state.with_label_values(&[s]).get();
        assert_eq!(count("applying"), 1);
        assert_eq!(count("done"), 2);
        assert_eq!(count("pending"), 0);
        state.offset_resets.remove("a");
        publish_counts(&state, &metrics);
        assert_eq!(count("applying"), 0);
    }

    #[test]
    fn targets_are_the_reset_partitions_offsets() {
        let targets = targets_of(&reset("a", ResetPhase::Applying));
        assert_eq!(
            targets,
            BTreeMap::from([(("t".to_string(), 0), 4), (("t".to_string(), 1), 3)])
        );
    }

    #[test]
    fn fenced_members_are_removed_group_by_group() {
        let fenced = |reset: &str, group: &str, member: &str, protocol| Eviction {
            reset_id: reset.into(),
            group: group.into(),
            member_id: member.into(),
            group_instance_id: None,
            protocol,
        };
        let batch = vec![
            fenced("r1", "g", "m1", GroupProtocol::Classic),
            fenced("r2", "h", "k1", GroupProtocol::Consumer),
            fenced("r1", "g", "m2", GroupProtocol::Classic),
        ];
        let groups = by_group(batch);
        assert_eq!(groups.len(), 2);
        let classic = &groups[&("r1".into(), "g".into(), GroupProtocol::Classic)];
        assert_eq!(classic.len(), 2);
        assert!(groups.contains_key(&("r2".into(), "h".into(), GroupProtocol::Consumer)));
    }

    #[test]
    fn a_failure_is_logged_once_per_reset() {
        let mut driver = Driver::default();
        let r = reset("a", ResetPhase::Applying);
        driver.failed(&r, "COORDINATOR_NOT_AVAILABLE");
        driver.failed(&r, "COORDINATOR_NOT_AVAILABLE");
        driver.failed(&r, "NOT_COORDINATOR");
        assert_eq!(driver.logged_failures["a"].len(), 2);
        let mut state = ControlState::default();
        state
            .offset_resets
            .insert("a".into(), reset("a", ResetPhase::Done));
        driver.forget_finished(&state);
        assert!(driver.logged_failures.is_empty());
    }
}
