//! `/api/v1/offset-resets`: resetting a running consumer group's committed offsets. Input
//! is checked on the node that received it, with the field named, before anything reaches
//! Kafka or the leader. A dry run is planned right there and changes nothing; a real reset
//! is planned by the Raft leader (the freshest view of the group's offsets), stamped with
//! the leader's clock and committed; the leader's driver carries it out from there.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use flotilla_raft::governance::unix_millis;
use flotilla_raft::offset_resets::{OffsetReset, PartitionReset, ResetPhase};
use flotilla_raft::Command;

use super::auth::Caller;
use super::{answer, fleet_at_level, invalid_input, json_bytes};
use crate::api::{NewOffsetReset, OffsetResetSummary, ResetTargetSpec};
use crate::cluster::error::ClusterError;
use crate::cluster::fleet::Fleet;
use crate::cluster::offset_resets::plan::{self, ResetRequest, ResetTarget, TopicSelection};
use crate::cluster::offset_resets::{self, summary_of, LEVEL};
use crate::cluster::peer_api::Write;
use crate::cluster::writes::{commit, on_leader};
use crate::context::Context;

/// How long the fleet tries to apply a reset when the operator does not say.
const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// Kafka's limit on a group id or topic name is the frame; ours keeps listings readable.
const MAX_NAME: usize = 249;

/// The state a dry run answers with.
const DRY_RUN: &str = "dry-run";

pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/api/v1/offset-resets", get(list).post(create))
        .route("/api/v1/offset-resets/{id}", get(show))
        .route("/api/v1/offset-resets/{id}/cancel", post(cancel))
}

async fn list(State(ctx): State<Arc<Context>>) -> Response {
    let state = ctx.control.load();
    let mut resets: Vec<&OffsetReset> = state.offset_resets.values().collect();
    resets.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    let summaries: Vec<OffsetResetSummary> = resets.into_iter().map(summary_of).collect();
    answer(Ok(summaries))
}

async fn show(State(ctx): State<Arc<Context>>, Path(id): Path<String>) -> Response {
    let state = ctx.control.load();
    answer(
        state
            .offset_resets
            .get(&id)
            .map(summary_of)
            .ok_or_else(|| ClusterError::NotFound(format!("no offset reset {id}"))),
    )
}

async fn create(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<NewOffsetReset>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Json(new) = body.map_err(|e| invalid_input(&e))?;
            let request = request_of(&new)?;
            let timing = timing_of(&new)?;
            if new.dry_run {
                return dry_run(&ctx, &request, spec_text(&new.target)).await;
            }
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&new)));
            on_leader(fleet, &replay, || async {
                let requested_by = requested_by(&caller);
                create_on_leader(&ctx, fleet, &new, &request, timing, requested_by).await
            })
            .await
        }
        .await,
    )
}

async fn cancel(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let replay = caller.replay(Write::Post, &uri, None);
            on_leader(fleet, &replay, || offset_resets::cancel(fleet, &id)).await
        }
        .await,
    )
}

/// Plans `request` here and shows it, committing nothing.
async fn dry_run(
    ctx: &Context,
    request: &ResetRequest,
    spec: String,
) -> Result<OffsetResetSummary, ClusterError> {
    let partitions = plan::plan(ctx, request).await?;
    let now_ms = unix_millis();
    let mut shown = summary_of(&OffsetReset {
        id: String::new(),
        group: request.group.clone(),
        partitions,
        phase: ResetPhase::Pending,
        spec,
        requested_by: String::new(),
        created_at_ms: now_ms,
        start_at_ms: now_ms,
        deadline_ms: now_ms,
        finished_at_ms: None,
    });
    shown.state = DRY_RUN.into();
    Ok(shown)
}

/// When a reset starts and how long it may take, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timing {
    start_in_secs: u64,
    timeout_secs: u64,
}

/// The leader's half: refuses a second active reset of the group before asking Kafka
/// anything, plans, and commits the reset (the state machine refuses the race of two
/// creations).
async fn create_on_leader(
    ctx: &Context,
    fleet: &Fleet,
    new: &NewOffsetReset,
    request: &ResetRequest,
    timing: Timing,
    requested_by: String,
) -> Result<OffsetResetSummary, ClusterError> {
    refuse_if_active(fleet, &request.group)?;
    let partitions = plan::plan(ctx, request).await?;
    let reset = reset_of(new, partitions, timing, requested_by, unix_millis());
    let id = reset.id.clone();
    commit(
        fleet,
        Command::CreateOffsetReset {
            reset: reset.clone(),
        },
    )
    .await?;
    let state = fleet.raft.state().borrow().clone();
    Ok(summary_of(state.offset_resets.get(&id).unwrap_or(&reset)))
}

fn refuse_if_active(fleet: &Fleet, group: &str) -> Result<(), ClusterError> {
    let state = fleet.raft.state().borrow().clone();
    match state.active_reset(group) {
        None => Ok(()),
        Some(other) => Err(ClusterError::Conflict(format!(
            "group {group} already has reset {} {}; wait for it or cancel it \
             (proxyctl group reset-cancel {})",
            other.id, other.phase, other.id
        ))),
    }
}

fn reset_of(
    new: &NewOffsetReset,
    partitions: Vec<PartitionReset>,
    timing: Timing,
    requested_by: String,
    now_ms: u64,
) -> OffsetReset {
    let start_at_ms = now_ms.saturating_add(timing.start_in_secs.saturating_mul(1000));
    OffsetReset {
        id: fresh_id(),
        group: new.group.clone(),
        partitions,
        phase: ResetPhase::Pending,
        spec: spec_text(&new.target),
        requested_by,
        created_at_ms: now_ms,
        start_at_ms,
        deadline_ms: start_at_ms.saturating_add(timing.timeout_secs.saturating_mul(1000)),
        finished_at_ms: None,
    }
}

/// Short enough to type in `reset-cancel`, random enough never to meet another.
fn fresh_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// The admin token's name, or who presented a certificate; `anonymous` on an open API.
fn requested_by(caller: &Caller) -> String {
    match caller.who.as_deref() {
        Some(who) => who.strip_prefix("token ").unwrap_or(who).to_string(),
        None => "anonymous".into(),
    }
}

/// How the targets were asked for, as listings show it.
fn spec_text(target: &ResetTargetSpec) -> String {
    match target {
        ResetTargetSpec::ToEarliest => "to-earliest".into(),
        ResetTargetSpec::ToLatest => "to-latest".into(),
        ResetTargetSpec::ToOffset(offset) => format!("to-offset {offset}"),
        ResetTargetSpec::ToDatetime(text) => format!("to-datetime {}", text.trim()),
        ResetTargetSpec::ShiftBy(by) => format!("shift-by {by}"),
    }
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> ClusterError {
    ClusterError::Invalid(format!("{field}: {reason}"))
}

/// The request `new` makes, or why it is wrong, with the field named.
fn request_of(new: &NewOffsetReset) -> Result<ResetRequest, ClusterError> {
    let group = new.group.trim();
    if group.is_empty() {
        return Err(invalid("group", "give the consumer group to reset"));
    }
    if group.len() > MAX_NAME {
        return Err(invalid("group", format!("longer than {MAX_NAME} bytes")));
    }
    if new.topics.is_empty() {
        return Err(invalid(
            "topics",
            "give at least one topic (TOPIC or TOPIC:P,P)",
        ));
    }
    let mut topics: Vec<TopicSelection> = Vec::with_capacity(new.topics.len());
    for text in &new.topics {
        let selection = selection_of(text)?;
        if topics.iter().any(|t| t.topic == selection.topic) {
            return Err(invalid(
                "topics",
                format!(
                    "{} is named twice; list its partitions once",
                    selection.topic
                ),
            ));
        }
        topics.push(selection);
    }
    Ok(ResetRequest {
        group: group.to_string(),
        topics,
        target: target_of(&new.target)?,
    })
}

/// `TOPIC` or `TOPIC:P,P,...`, as Kafka's tool takes them.
fn selection_of(text: &str) -> Result<TopicSelection, ClusterError> {
    let (topic, partitions) = match text.split_once(':') {
        None => (text.trim(), None),
        Some((topic, list)) => (topic.trim(), Some(partitions_of(topic, list)?)),
    };
    check_topic_name(topic)?;
    Ok(TopicSelection {
        topic: topic.to_string(),
        partitions,
    })
}

fn partitions_of(topic: &str, list: &str) -> Result<Vec<i32>, ClusterError> {
    let mut partitions = Vec::new();
    for part in list.split(',') {
        let partition = part.trim().parse::<i32>().ok().filter(|p| *p >= 0);
        match partition {
            Some(p) if !partitions.contains(&p) => partitions.push(p),
            Some(p) => {
                return Err(invalid(
                    "topics",
                    format!("{topic}: partition {p} is named twice"),
                ))
            }
            None => {
                return Err(invalid(
                    "topics",
                    format!(
                        "{topic}: {:?} is not a partition number (TOPIC:0,1,2)",
                        part.trim()
                    ),
                ))
            }
        }
    }
    Ok(partitions)
}

/// Kafka's own rule for topic names, so a typo is named here rather than as "unknown".
fn check_topic_name(topic: &str) -> Result<(), ClusterError> {
    if topic.is_empty() {
        return Err(invalid("topics", "a topic name is empty"));
    }
    if topic.len() > MAX_NAME {
        return Err(invalid(
            "topics",
            format!("{topic:.40}...: longer than {MAX_NAME} bytes"),
        ));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic == "." || topic == ".." || !topic.chars().all(legal) {
        return Err(invalid(
            "topics",
            format!("{topic:?} is not a topic name (letters, digits, '.', '_', '-')"),
        ));
    }
    Ok(())
}

fn target_of(spec: &ResetTargetSpec) -> Result<ResetTarget, ClusterError> {
    Ok(match spec {
        ResetTargetSpec::ToEarliest => ResetTarget::Earliest,
        ResetTargetSpec::ToLatest => ResetTarget::Latest,
        ResetTargetSpec::ToOffset(offset) if *offset < 0 => {
            return Err(invalid(
                "target",
                format!("to-offset {offset}: an offset is 0 or more"),
            ))
        }
        ResetTargetSpec::ToOffset(offset) => ResetTarget::Offset(*offset),
        ResetTargetSpec::ToDatetime(text) => ResetTarget::Datetime {
            unix_ms: plan::parse_datetime(text.trim())
                .map_err(|e| invalid("target", format!("to-datetime {e}")))?,
        },
        ResetTargetSpec::ShiftBy(by) => ResetTarget::ShiftBy(*by),
    })
}

fn timing_of(new: &NewOffsetReset) -> Result<Timing, ClusterError> {
    let timeout_secs = match new.timeout_secs {
        Some(0) => return Err(invalid("timeout_secs", "a reset needs more than 0 s")),
        Some(secs) => secs,
        None => DEFAULT_TIMEOUT_SECS,
    };
    Ok(Timing {
        start_in_secs: new.start_in_secs.unwrap_or(0),
        timeout_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(topics: &[&str], target: ResetTargetSpec) -> NewOffsetReset {
        NewOffsetReset {
            group: "g".into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            target,
            dry_run: false,
            timeout_secs: None,
            start_in_secs: None,
        }
    }

    fn refusal(new: &NewOffsetReset) -> String {
        request_of(new).unwrap_err().to_string()
    }

    #[test]
    fn topics_with_and_without_partitions() {
        let request = request_of(&new(&["a", "b.c:0, 2"], ResetTargetSpec::ToEarliest)).unwrap();
        assert_eq!(request.group, "g");
        assert_eq!(request.target, ResetTarget::Earliest);
        assert_eq!(
            request.topics,
            vec![
                TopicSelection {
                    topic: "a".into(),
                    partitions: None
                },
                TopicSelection {
                    topic: "b.c".into(),
                    partitions: Some(vec![0, 2])
                },
            ]
        );
    }

    #[test]
    fn bad_input_is_refused_with_the_field_named() {
        let earliest = ResetTargetSpec::ToEarliest;
        let group = NewOffsetReset {
            group: " ".into(),
            ..new(&["a"], earliest.clone())
        };
        assert!(refusal(&group).starts_with("group:"));
        assert!(refusal(&new(&[], earliest.clone())).starts_with("topics:"));
        for bad in ["a:", "a:x", "a:-1", "a:1,1", ":0", "a b", "a,b"] {
            let text = refusal(&new(&[bad], earliest.clone()));
            assert!(text.starts_with("topics:"), "{bad}: {text}");
        }
        let twice = refusal(&new(&["a", "a:1"], earliest));
        assert!(twice.contains("named twice"), "{twice}");
        let offset = refusal(&new(&["a"], ResetTargetSpec::ToOffset(-1)));
        assert!(offset.starts_with("target:"), "{offset}");
        let date = refusal(&new(
            &["a"],
            ResetTargetSpec::ToDatetime("yesterday".into()),
        ));
        assert!(
            date.starts_with("target:") && date.contains("yesterday"),
            "{date}"
        );
        let timeout = NewOffsetReset {
            timeout_secs: Some(0),
            ..new(&["a"], ResetTargetSpec::ToLatest)
        };
        assert!(timing_of(&timeout)
            .unwrap_err()
            .to_string()
            .starts_with("timeout_secs:"));
    }

    #[test]
    fn a_reset_is_stamped_by_the_leaders_clock() {
        let mut asked = new(&["a"], ResetTargetSpec::ShiftBy(-5));
        asked.start_in_secs = Some(60);
        let timing = timing_of(&asked).unwrap();
        let reset = reset_of(&asked, vec![], timing, "ops".into(), 1_000);
        assert_eq!(reset.id.len(), 12);
        assert!(reset.id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(reset.id, fresh_id());
        assert_eq!(reset.spec, "shift-by -5");
        assert_eq!(reset.phase, ResetPhase::Pending);
        assert_eq!(reset.created_at_ms, 1_000);
        assert_eq!(reset.start_at_ms, 61_000);
        assert_eq!(reset.deadline_ms, 61_000 + DEFAULT_TIMEOUT_SECS * 1000);
        assert_eq!(reset.requested_by, "ops");
    }

    #[test]
    fn who_asked() {
        let anonymous = Caller::default();
        assert_eq!(requested_by(&anonymous), "anonymous");
        let token = Caller {
            who: Some("token ops".into()),
            ..Caller::default()
        };
        assert_eq!(requested_by(&token), "ops");
        let spec = spec_text(&ResetTargetSpec::ToDatetime("2026-12-01T10:00:00".into()));
        assert_eq!(spec, "to-datetime 2026-12-01T10:00:00");
    }
}
