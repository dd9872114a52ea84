//! `proxyctl group`: resetting a consumer group's committed offsets while its consumers
//! keep running, with the target options of `kafka-consumer-groups --reset-offsets`.
//! `reset --dry-run` shows the plan (each partition's committed offset and target) and
//! changes nothing; `reset` commits the reset to the fleet, which fences the group,
//! commits the targets and lets the members back in; `--wait` follows it to the end.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args, Subcommand};
use flotilla::api::{NewOffsetReset, OffsetResetSummary, ResetTargetSpec};

use crate::client::{encoded, Api};
use crate::output::{json, table, Output};

/// How often `--wait` asks how the reset is going.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// How long `--wait` keeps asking after the reset's own deadline (the leader expires it
/// then; an unreachable fleet should not keep a script waiting forever).
const WAIT_PAST_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Reset a consumer group's committed offsets, while its consumers run.
    Reset(ResetArgs),
    /// The fleet's offset resets, recent first: state, targets, who asked.
    Resets,
    /// Cancel a reset that has not started (scheduled with --start-in).
    ResetCancel { id: String },
}

#[derive(Args, Debug)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])
))]
pub struct ResetArgs {
    group: String,
    /// TOPIC (every partition) or TOPIC:P,P; repeat for more topics.
    #[arg(long = "topic", required = true)]
    topics: Vec<String>,
    /// Each partition's first offset still in the log.
    #[arg(long)]
    to_earliest: bool,
    /// Each partition's end: skip everything not consumed yet.
    #[arg(long)]
    to_latest: bool,
    /// This offset (clamped to each partition's range).
    #[arg(long, allow_negative_numbers = true)]
    to_offset: Option<i64>,
    /// The first record at or after this instant (ISO 8601, e.g. 2026-12-01T10:00:00.000;
    /// UTC unless a zone is given).
    #[arg(long)]
    to_datetime: Option<String>,
    /// The committed offset moved by this much (negative: back).
    #[arg(long, allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// Show each partition's committed offset and target; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Give the reset up (expired) if not applied after this long (e.g. 30s, 2m).
    #[arg(long, value_parser = seconds)]
    timeout: Option<u64>,
    /// Start this long from now (e.g. 10m); it can be cancelled until then.
    #[arg(long, value_parser = seconds)]
    start_in: Option<u64>,
    /// Wait until the reset is applied; fail if it expires or is cancelled.
    #[arg(long, conflicts_with = "dry_run")]
    wait: bool,
}

/// Whole seconds, given bare or as a duration (`90`, `90s`, `2m`).
fn seconds(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(secs) => Ok(secs),
        Err(_) => Ok(humantime::parse_duration(text)
            .map_err(|e| e.to_string())?
            .as_secs()),
    }
}

pub fn run(api: &Api, command: &GroupCommand, output: Output) -> Result<String, String> {
    match command {
        GroupCommand::Reset(args) => reset(api, args, output),
        GroupCommand::Resets => {
            let mut resets: Vec<OffsetResetSummary> = api.get("/api/v1/offset-resets")?;
            resets.sort_by_key(|r| std::cmp::Reverse(r.created_at_ms));
            Ok(match output {
                Output::Json => json(&resets),
                Output::Table => resets_table(&resets),
            })
        }
        GroupCommand::ResetCancel { id } => {
            let path = format!("/api/v1/offset-resets/{}/cancel", encoded(id));
            let cancelled: OffsetResetSummary = api.post(&path, None::<&()>)?;
            Ok(match output {
                Output::Json => json(&cancelled),
                Output::Table => format!(
                    "offset reset {} of group {} is {}\n",
                    cancelled.id, cancelled.group, cancelled.state
                ),
            })
        }
    }
}

fn reset(api: &Api, args: &ResetArgs, output: Output) -> Result<String, String> {
    let new = NewOffsetReset {
        group: args.group.clone(),
        topics: args.topics.clone(),
        target: target(args)?,
        dry_run: args.dry_run,
        timeout_secs: args.timeout,
        start_in_secs: args.start_in,
    };
    let asked_at = Instant::now();
    let created: OffsetResetSummary = api.post("/api/v1/offset-resets", Some(&new))?;
    if args.dry_run {
        return Ok(match output {
            Output::Json => json(&created),
            Output::Table => plan_table(&created),
        });
    }
    if !args.wait {
        return Ok(match output {
            Output::Json => json(&created),
            Output::Table => format!(
                "offset reset {} of group {} is {} ({})\n",
                created.id,
                created.group,
                created.state,
                start_text(created.start_at_ms)
            ),
        });
    }
    let finished = wait_finished(api, &created)?;
    let elapsed = asked_at.elapsed().as_secs_f64();
    match finished.state.as_str() {
        "done" => Ok(match output {
            Output::Json => json(&finished),
            Output::Table => format!(
                "offset reset {} of group {} is done after {elapsed:.1}s\n",
                finished.id, finished.group
            ),
        }),
        state => Err(format!(
            "offset reset {} of group {} ended {state} after {elapsed:.1}s",
            finished.id, finished.group
        )),
    }
}

fn target(args: &ResetArgs) -> Result<ResetTargetSpec, String> {
    Ok(if args.to_earliest {
        ResetTargetSpec::ToEarliest
    } else if args.to_latest {
        ResetTargetSpec::ToLatest
    } else if let Some(offset) = args.to_offset {
        ResetTargetSpec::ToOffset(offset)
    } else if let Some(at) = &args.to_datetime {
        ResetTargetSpec::ToDatetime(at.clone())
    } else if let Some(by) = args.shift_by {
        ResetTargetSpec::ShiftBy(by)
    } else {
        return Err("give a target: --to-earliest, --to-latest, --to-offset, \
                    --to-datetime or --shift-by"
            .into());
    })
}

/// Polls the reset until it is no longer pending or applying.
fn wait_finished(api: &Api, created: &OffsetResetSummary) -> Result<OffsetResetSummary, String> {
    let path = format!("/api/v1/offset-resets/{}", encoded(&created.id));
    let give_up = UNIX_EPOCH + Duration::from_millis(created.deadline_ms) + WAIT_PAST_DEADLINE;
    let mut last = created.clone();
    loop {
        if !matches!(last.state.as_str(), "pending" | "applying") {
            return Ok(last);
        }
        if SystemTime::now() > give_up {
            return Err(format!(
                "offset reset {} is still {} past its deadline",
                last.id, last.state
            ));
        }
        std::thread::sleep(POLL_EVERY);
        // A node briefly unreachable (a leader change) is not the reset failing.
        if let Ok(now) = api.get::<OffsetResetSummary>(&path) {
            last = now;
        }
    }
}

fn offset_text(offset: Option<i64>) -> String {
    offset.map_or_else(|| "-".into(), |o| o.to_string())
}

/// An instant in Unix milliseconds, as UTC to the second.
fn instant_text(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn start_text(start_at_ms: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(start_at_ms);
    match at.duration_since(SystemTime::now()) {
        Ok(left) if left.as_secs() > 0 => {
            format!(
                "starts at {} (in {}s)",
                instant_text(start_at_ms),
                left.as_secs()
            )
        }
        _ => "starting now".into(),
    }
}

fn plan_table(plan: &OffsetResetSummary) -> String {
    let rows = plan
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                offset_text(p.current),
                p.target.to_string(),
            ]
        })
        .collect();
    format!(
        "dry run (nothing changed): reset of group {} {}\n",
        plan.group, plan.spec
    ) + &table(&["TOPIC", "PARTITION", "CURRENT", "TARGET"], rows)
}

fn resets_table(resets: &[OffsetResetSummary]) -> String {
    let rows = resets
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.group.clone(),
                r.state.clone(),
                r.spec.clone(),
                r.requested_by.clone(),
                instant_text(r.created_at_ms),
                r.finished_at_ms.map_or_else(|| "-".into(), instant_text),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID",
            "GROUP",
            "STATE",
            "SPEC",
            "REQUESTED-BY",
            "CREATED",
            "FINISHED",
        ],
        rows,
    );
    let partitions = resets
        .iter()
        .flat_map(|r| {
            r.partitions.iter().map(|p| {
                vec![
                    r.id.clone(),
                    p.topic.clone(),
                    p.partition.to_string(),
                    offset_text(p.current),
                    p.target.to_string(),
                    if p.applied { "yes" } else { "no" }.into(),
                ]
            })
        })
        .collect();
    out += "\n";
    out += &table(
        &["ID", "TOPIC", "PARTITION", "PREVIOUS", "TARGET", "APPLIED"],
        partitions,
    );
    out
}
