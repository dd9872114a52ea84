//! Planning a reset: from what an operator asked (`--to-earliest`, `--to-datetime`, ...)
//! to one concrete, clamped target offset per partition, checked against what Kafka
//! knows (the group and the topics exist).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use flotilla_raft::offset_resets::PartitionReset;
use flotilla_raft::routes::RouteResource;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::backend::groups::{self, Layout, OffsetSpec, TopicPartition};
use crate::backend::{BrokerClient, Cluster};
use crate::cluster::error::ClusterError;
use crate::context::Context;

/// A validated reset request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub group: String,
    pub topics: Vec<TopicSelection>,
    pub target: ResetTarget,
}

/// `TOPIC` (partitions `None`: every partition) or `TOPIC:0,1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSelection {
    pub topic: String,
    pub partitions: Option<Vec<i32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTarget {
    Earliest,
    Latest,
    Offset(i64),
    /// The first offset whose record's timestamp is at or after this instant.
    Datetime {
        unix_ms: i64,
    },
    ShiftBy(i64),
}

/// Resolves `request` against the backend cluster: one entry per selected partition with
/// the group's committed offset now and the target, clamped to the partition's
/// [log start, high watermark]. Unknown groups, topics and partitions are refused by name.
pub async fn plan(
    ctx: &Context,
    request: &ResetRequest,
) -> Result<Vec<PartitionReset>, ClusterError> {
    let cluster = group_cluster(ctx, &request.group)?;
    same_cluster(ctx, &cluster, request)?;
    let addresses = cluster.candidates();
    let names: Vec<String> = request.topics.iter().map(|t| t.topic.clone()).collect();
    let layout = groups::layout(&cluster.link, &addresses, &names)
        .await
        .map_err(backend_failed)?;
    let partitions = selected_partitions(&layout, &request.topics)?;
    let committed = committed_offsets(&cluster, &request.group).await?;
    let earliest = offsets(&cluster, &layout, &partitions, OffsetSpec::Earliest).await?;
    let latest = offsets(&cluster, &layout, &partitions, OffsetSpec::Latest).await?;
    let by_time = match request.target {
        ResetTarget::Datetime { unix_ms } => {
            offsets(
                &cluster,
                &layout,
                &partitions,
                OffsetSpec::Timestamp(unix_ms),
            )
            .await?
        }
        _ => BTreeMap::new(),
    };
    partitions
        .into_iter()
        .map(|tp| {
            let range = ValidRange {
                earliest: earliest.get(&tp).copied().flatten().unwrap_or(0),
                latest: latest.get(&tp).copied().flatten().unwrap_or(0),
            };
            let previous = committed.get(&tp).copied();
            let at_time = by_time.get(&tp).copied().flatten();
            let target = target_of(request.target, range, previous, at_time).map_err(|e| {
                ClusterError::Invalid(format!("{}-{}: {e} (group {})", tp.0, tp.1, request.group))
            })?;
            Ok(PartitionReset {
                topic: tp.0,
                partition: tp.1,
                previous,
                target,
                applied: false,
            })
        })
        .collect()
}

/// The backend cluster that serves `group` (its route, or the default cluster).
pub(super) fn group_cluster(ctx: &Context, group: &str) -> Result<Arc<Cluster>, ClusterError> {
    let control = ctx.control.load();
    let name = control.cluster_for(RouteResource::Group, group);
    ctx.clusters.get(name).cloned().ok_or_else(|| {
        ClusterError::Invalid(format!(
            "group {group} is served by backend cluster {name}, which this node's \
             configuration does not name"
        ))
    })
}

/// A reset moves a group's offsets of topics on the group's own cluster; a topic routed
/// elsewhere is refused by name.
fn same_cluster(
    ctx: &Context,
    cluster: &Cluster,
    request: &ResetRequest,
) -> Result<(), ClusterError> {
    let control = ctx.control.load();
    for selection in &request.topics {
        let topic_cluster = control.cluster_for(RouteResource::Topic, &selection.topic);
        if topic_cluster != cluster.name {
            return Err(ClusterError::Invalid(format!(
                "topic {} is served by backend cluster {topic_cluster}, group {} by {}",
                selection.topic, request.group, cluster.name
            )));
        }
    }
    Ok(())
}

/// A connection to `group`'s coordinator in `cluster`.
pub(super) async fn coordinator_client(
    cluster: &Cluster,
    group: &str,
) -> anyhow::Result<BrokerClient> {
    let addresses = cluster.candidates();
    let coordinator = groups::find_coordinator(&cluster.link, &addresses, group).await?;
    BrokerClient::connect(&cluster.link, &coordinator.address).await
}

fn backend_failed(e: anyhow::Error) -> ClusterError {
    // No ClusterError speaks of the backend; Raft's is the one the admin API answers
    // with a server error, which this is (the request may be fine: try again).
    ClusterError::Raft(format!("the backend cluster: {e:#}"))
}

/// Every partition the selections name, each once, in order; unknown topics and
/// partitions are refused by name.
fn selected_partitions(
    layout: &Layout,
    selections: &[TopicSelection],
) -> Result<Vec<TopicPartition>, ClusterError> {
    if selections.is_empty() {
        return Err(ClusterError::Invalid("name at least one topic".into()));
    }
    let mut chosen = BTreeSet::new();
    for selection in selections {
        let topic = &selection.topic;
        let existing = layout.partitions_of(topic);
        if existing.is_empty() {
            return Err(ClusterError::NotFound(format!(
                "topic {topic} does not exist"
            )));
        }
        let wanted = selection
            .partitions
            .clone()
            .unwrap_or_else(|| existing.clone());
        for partition in wanted {
            if !existing.contains(&partition) {
                return Err(ClusterError::NotFound(format!(
                    "topic {topic} has no partition {partition} (it has {})",
                    existing.len()
                )));
            }
            chosen.insert((topic.clone(), partition));
        }
    }
    Ok(chosen.into_iter().collect())
}

/// The group's committed offsets; a group Kafka does not know (no members, no offsets)
/// is refused by name.
async fn committed_offsets(
    cluster: &Cluster,
    group: &str,
) -> Result<BTreeMap<TopicPartition, i64>, ClusterError> {
    let asked = async {
        let mut client = coordinator_client(cluster, group).await?;
        let description = groups::describe_group(&mut client, group).await?;
        let committed = groups::committed_offsets(&mut client, group).await?;
        anyhow::Ok((description, committed))
    };
    let (description, committed) = asked.await.map_err(backend_failed)?;
    if !description.exists() && committed.is_empty() {
        return Err(ClusterError::NotFound(format!(
            "consumer group {group} does not exist"
        )));
    }
    Ok(committed)
}

async fn offsets(
    cluster: &Cluster,
    layout: &Layout,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<BTreeMap<TopicPartition, Option<i64>>, ClusterError> {
    groups::list_offsets(&cluster.link, layout, partitions, spec)
        .await
        .map_err(backend_failed)
}

/// A partition's valid offsets: from the log start to the high watermark, both included
/// (a consumer at the high watermark waits for the next record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ValidRange {
    earliest: i64,
    latest: i64,
}

impl ValidRange {
    fn clamp(self, offset: i64) -> i64 {
        offset.min(self.latest).max(self.earliest)
    }
}

/// One partition's target, as Kafka's `--reset-offsets` computes it: `at_time` is the
/// first offset at or after a `Datetime` target's instant (none: the high watermark).
fn target_of(
    target: ResetTarget,
    range: ValidRange,
    committed: Option<i64>,
    at_time: Option<i64>,
) -> Result<i64, String> {
    let wanted = match target {
        ResetTarget::Earliest => range.earliest,
        ResetTarget::Latest => range.latest,
        ResetTarget::Offset(offset) => offset,
        ResetTarget::Datetime { .. } => at_time.unwrap_or(range.latest),
        ResetTarget::ShiftBy(delta) => match committed {
            Some(offset) => offset.saturating_add(delta),
            None => return Err("cannot shift: the group has no committed offset there".into()),
        },
    };
    Ok(range.clamp(wanted))
}

/// Unix milliseconds of an ISO 8601 date and time as Kafka's `--to-datetime` takes it:
/// `YYYY-MM-DDTHH:mm:SS.sss`, the fraction optional, then optionally a zone (`Z`,
/// `+hh:mm`, `+hhmm` or `+hh`); without one, UTC, as Kafka's tool assumes.
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    let refused = |why: &str| {
        format!(
            "{text:?} is not a date and time as YYYY-MM-DDTHH:mm:SS.sss with an optional \
             zone (Z, +hh:mm, -hhmm; none means UTC): {why}"
        )
    };
    let (date, clock_and_zone) = text
        .trim()
        .split_once('T')
        .ok_or_else(|| refused("no 'T' between date and time"))?;
    let zone_at = clock_and_zone
        .find(['Z', 'z', '+', '-'])
        .unwrap_or(clock_and_zone.len());
    let (clock, zone) = clock_and_zone.split_at(zone_at);
    let zone =
        rfc3339_zone(zone).ok_or_else(|| refused("the zone is not Z, +hh:mm, +hhmm or +hh"))?;
    let parsed = OffsetDateTime::parse(&format!("{date}T{clock}{zone}"), &Rfc3339)
        .map_err(|e| refused(&e.to_string()))?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).map_err(|_| refused("out of range"))
}

/// A zone as RFC 3339 writes it (`Z` or `+hh:mm`); none is UTC.
fn rfc3339_zone(zone: &str) -> Option<String> {
    if zone.is_empty() || zone.eq_ignore_ascii_case("z") {
        return Some("Z".into());
    }
    let (sign, rest) = zone.split_at(1);
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let well_formed = digits.chars().all(|c| c.is_ascii_digit())
        && match rest.len() {
            2 | 4 => !rest.contains(':'),
            5 => rest.as_bytes()[2] == b':',
            _ => false,
        };
    if !well_formed {
        return None;
    }
    let minutes = if digits.len() == 4 {
        &digits[2..]
    } else {
        "00"
    };
    Some(format!("{sign}{}:{minutes}", &digits[..2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: ValidRange = ValidRange {
        earliest: 10,
        latest: 50,
    };

    fn target(target: ResetTarget, committed: Option<i64>) -> Result<i64, String> {
        target_of(target, RANGE, committed, None)
    }

    #[test]
    fn earliest_and_latest_are_the_log_start_and_the_high_watermark() {
        assert_eq!(target(ResetTarget::Earliest, Some(30)), Ok(10));
        assert_eq!(target(ResetTarget::Latest, None), Ok(50));
    }

    #[test]
    fn an_offset_is_clamped_to_the_valid_range() {
        assert_eq!(target(ResetTarget::Offset(5), None), Ok(10));
        assert_eq!(target(ResetTarget::Offset(25), None), Ok(25));
        assert_eq!(target(ResetTarget::Offset(50), None), Ok(50));
        assert_eq!(target(ResetTarget::Offset(500), None), Ok(50));
    }

    #[test]
    fn a_shift_moves_the_committed_offset_within_the_range() {
        assert_eq!(target(ResetTarget::ShiftBy(-5), Some(30)), Ok(25));
        assert_eq!(target(ResetTarget::ShiftBy(-100), Some(30)), Ok(10));
        assert_eq!(target(ResetTarget::ShiftBy(100), Some(30)), Ok(50));
        assert_eq!(target(ResetTarget::ShiftBy(i64::MAX), Some(30)), Ok(50));
        assert!(target(ResetTarget::ShiftBy(1), None).is_err());
    }

    #[test]
    fn a_datetime_past_every_record_is_the_high_watermark() {
        let at = ResetTarget::Datetime { unix_ms: 0 };
        assert_eq!(target_of(at, RANGE, None, Some(20)), Ok(20));
        assert_eq!(target_of(at, RANGE, None, None), Ok(50));
    }

    #[test]
    fn an_empty_partition_has_one_valid_offset() {
        let empty = ValidRange {
            earliest: 7,
            latest: 7,
        };
        assert_eq!(target_of(ResetTarget::Offset(0), empty, None, None), Ok(7));
        assert_eq!(
            target_of(ResetTarget::ShiftBy(3), empty, Some(7), None),
            Ok(7)
        );
    }

    #[test]
    fn datetimes_parse_as_kafkas_tool_takes_them() {
        // 2026-12-01T10:00:00Z
        let ten = 1_796_119_200_000;
        assert_eq!(parse_datetime("2026-12-01T10:00:00.000"), Ok(ten));
        assert_eq!(parse_datetime("2026-12-01T10:00:00.000Z"), Ok(ten));
        assert_eq!(parse_datetime("2026-12-01T10:00:00"), Ok(ten));
        assert_eq!(parse_datetime("2026-12-01T10:00:00.250Z"), Ok(ten + 250));
        assert_eq!(parse_datetime("2026-12-01T12:00:00.000+02:00"), Ok(ten));
        assert_eq!(parse_datetime("2026-12-01T12:30:00.000+0230"), Ok(ten));
        assert_eq!(parse_datetime("2026-12-01T07:00:00.000-03"), Ok(ten));
        assert_eq!(parse_datetime("2026-12-01T05:00:00.000-0500"), Ok(ten));
    }

    #[test]
    fn malformed_datetimes_are_refused_with_the_format() {
        for bad in [
            "2026-12-01",
            "2026-12-01 10:00:00",
            "2026-12-01T10:00",
            "2026-13-01T10:00:00",
            "2026-12-01T10:00:00+2",
            "2026-12-01T10:00:00+02:0",
            "2026-12-01T10:00:00 +02:00",
            "yesterday",
        ] {
            let refused = parse_datetime(bad).expect_err(bad);
            assert!(refused.contains("YYYY-MM-DDTHH:mm:SS.sss"), "{refused}");
        }
    }
}
