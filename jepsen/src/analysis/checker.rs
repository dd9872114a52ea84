//! The safety checks over a history: everything a Kafka client may rely on once a write is
//! acknowledged, and everything a consumer may rely on when it reads.
//!
//! Positions are (partition, offset) of the run's one topic. "Reads" are every record any
//! successful poll returned, including the final reads to the end of every partition, so
//! "lost" and "unseen" are judged against everything the cluster was ever seen to hold.
//! Each anomaly has one function; each counts exactly and keeps the first few examples.

mod facts;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::history::{Event, Mode, Op, Phase};
use facts::{Facts, Position};

/// How many examples of each anomaly are kept; counts are always exact.
pub const EXAMPLES: usize = 10;

/// The kinds of anomaly, in the order reports list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anomaly {
    /// Acknowledged, and reads went past its offset, but no read returned it there.
    Lost,
    /// Acknowledged, and no read reached its offset, not even the final reads.
    Unseen,
    /// One value at two or more offsets that no resend explains.
    DuplicateUnexplained,
    /// One value at two or more offsets, explained by a resend: the application sent it
    /// twice, or a non-idempotent producer's send ended `info` or `fail`.
    DuplicateExplained,
    /// One position seen holding two different values.
    InconsistentOffset,
    /// A value whose every send definitely failed was read.
    ReadOfFailedWrite,
    /// One producer's acknowledged offsets in a partition did not grow in send order.
    NonMonotonicSend,
    /// A consumer reading on its own (assign mode, final reads) went back or repeated an
    /// offset without a seek.
    NonMonotonicPoll,
    /// A group member's first record of a newly assigned partition was below the offset
    /// the group had committed for it.
    ResumedBelowCommitted,
}

impl Anomaly {
    pub const ALL: [Anomaly; 9] = [
        Anomaly::Lost,
        Anomaly::Unseen,
        Anomaly::DuplicateUnexplained,
        Anomaly::DuplicateExplained,
        Anomaly::InconsistentOffset,
        Anomaly::ReadOfFailedWrite,
        Anomaly::NonMonotonicSend,
        Anomaly::NonMonotonicPoll,
        Anomaly::ResumedBelowCommitted,
    ];

    /// Whether finding one makes the run invalid. A duplicate the client's own resend
    /// explains is Kafka working as documented, so it is reported but does not.
    pub fn invalidates(self) -> bool {
        self != Anomaly::DuplicateExplained
    }

    /// The name used in report.json.
    pub fn name(self) -> &'static str {
        match self {
            Anomaly::Lost => "lost",
            Anomaly::Unseen => "unseen",
            Anomaly::DuplicateUnexplained => "duplicate_unexplained",
            Anomaly::DuplicateExplained => "duplicate_explained",
            Anomaly::InconsistentOffset => "inconsistent_offset",
            Anomaly::ReadOfFailedWrite => "read_of_failed_write",
            Anomaly::NonMonotonicSend => "non_monotonic_send",
            Anomaly::NonMonotonicPoll => "non_monotonic_poll",
            Anomaly::ResumedBelowCommitted => "resumed_below_committed",
        }
    }

    /// "1 lost write", "3 unexplained duplicates".
    pub fn describe(self, count: usize) -> String {
        let (one, many) = match self {
            Anomaly::Lost => ("lost write", "lost writes"),
            Anomaly::Unseen => ("unseen write", "unseen writes"),
            Anomaly::DuplicateUnexplained => ("unexplained duplicate", "unexplained duplicates"),
            Anomaly::DuplicateExplained => ("explained duplicate", "explained duplicates"),
            Anomaly::InconsistentOffset => ("inconsistent offset", "inconsistent offsets"),
            Anomaly::ReadOfFailedWrite => ("read of a failed write", "reads of failed writes"),
            Anomaly::NonMonotonicSend => ("non-monotonic send", "non-monotonic sends"),
            Anomaly::NonMonotonicPoll => ("non-monotonic poll", "non-monotonic polls"),
            Anomaly::ResumedBelowCommitted => (
                "resume below the committed offset",
                "resumes below the committed offset",
            ),
        };
        format!("{count} {}", if count == 1 { one } else { many })
    }
}

/// One anomaly found: where, what was seen, by whom.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub partition: i32,
    pub offset: Option<i64>,
    pub value: Option<String>,
    /// The processes involved (writer, readers), in no particular role order.
    pub processes: Vec<String>,
    /// When it shows: the acknowledgement or the offending read.
    pub time_ms: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Findings {
    pub count: usize,
    /// The first [`EXAMPLES`] found.
    pub examples: Vec<Example>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// No anomaly that [`Anomaly::invalidates`] was found.
    pub valid: bool,
    pub acknowledged_writes: usize,
    /// Every kind, found or not.
    pub anomalies: BTreeMap<Anomaly, Findings>,
}

impl CheckResult {
    fn new(acknowledged_writes: usize) -> CheckResult {
        CheckResult {
            valid: true,
            acknowledged_writes,
            anomalies: Anomaly::ALL
                .iter()
                .map(|a| (*a, Findings::default()))
                .collect(),
        }
    }

    fn add(&mut self, anomaly: Anomaly, example: Example) {
        let findings = self.anomalies.entry(anomaly).or_default();
        findings.count += 1;
        if findings.examples.len() < EXAMPLES {
            findings.examples.push(example);
        }
        self.valid &= !anomaly.invalidates();
    }

    pub fn count(&self, anomaly: Anomaly) -> usize {
        self.anomalies.get(&anomaly).map_or(0, |f| f.count)
    }

    /// The kinds found, with their counts.
    pub fn found(&self) -> Vec<(Anomaly, usize)> {
        self.anomalies
            .iter()
            .filter(|(_, f)| f.count > 0)
            .map(|(a, f)| (*a, f.count))
            .collect()
    }
}

/// Checks a history ordered by time (as [`super::history::read_history`] returns it).
pub fn check(history: &[Event]) -> CheckResult {
    let facts = Facts::gather(history);
    let mut result = CheckResult::new(facts.acks.len());
    lost_and_unseen(&facts, &mut result);
    duplicates(&facts, &mut result);
    inconsistent_offsets(&facts, &mut result);
    reads_of_failed_writes(&facts, &mut result);
    non_monotonic_sends(history, &mut result);
    non_monotonic_polls(history, &mut result);
    resumed_below_committed(history, &mut result);
    result
}

fn lost_and_unseen(facts: &Facts, result: &mut CheckResult) {
    for ack in &facts.acks {
        let position = (ack.partition, ack.offset);
        if facts.read_at(position, ack.value) {
            continue;
        }
        let example = |detail: String| Example {
            partition: ack.partition,
            offset: Some(ack.offset),
            value: Some(ack.value.to_string()),
            processes: vec![ack.event.process.clone()],
            time_ms: ack.event.time_ms,
            detail,
        };
        match facts.highest_read.get(&ack.partition) {
            Some(&highest) if highest > ack.offset => {
                let there = read_values(facts, position);
                result.add(
                    Anomaly::Lost,
                    example(format!(
                        "reads reached offset {highest}; offset {} was read as {there:?}",
                        ack.offset
                    )),
                );
            }
            highest => result.add(
                Anomaly::Unseen,
                example(format!(
                    "no read reached its offset (highest read: {})",
                    highest.map_or("none".to_string(), |h| h.to_string())
                )),
            ),
        }
    }
}

/// The values reads returned at a position.
fn read_values<'a>(facts: &Facts<'a>, position: Position) -> Vec<&'a str> {
    facts.at.get(&position).map_or(Vec::new(), |values| {
        values
            .iter()
            .filter(|(_, seen)| seen.read.is_some())
            .map(|(value, _)| *value)
            .collect()
    })
}

fn duplicates(facts: &Facts, result: &mut CheckResult) {
    for (value, positions) in &facts.positions_of {
        if positions.len() < 2 {
            continue;
        }
        let explanation = duplicate_explanation(facts, value);
        let (first_partition, first_offset) = *positions.first().expect("two or more");
        let sightings: Vec<_> = positions
            .iter()
            .flat_map(|p| {
                let seen = facts.at[p][value];
                [seen.acked, seen.read]
            })
            .flatten()
            .collect();
        let mut processes: Vec<String> = sightings.iter().map(|s| s.process.to_string()).collect();
        processes.sort();
        processes.dedup();
        let time_ms = sightings
            .iter()
            .map(|s| s.time_ms)
            .fold(f64::INFINITY, f64::min);
        let example = Example {
            partition: first_partition,
            offset: Some(first_offset),
            value: Some(value.to_string()),
            processes,
            time_ms,
            detail: format!(
                "at {}; {}",
                describe_positions(positions),
                explanation.as_deref().unwrap_or("no resend explains it")
            ),
        };
        let kind = match explanation {
            Some(_) => Anomaly::DuplicateExplained,
            None => Anomaly::DuplicateUnexplained,
        };
        result.add(kind, example);
    }
}

/// Why a value may legitimately be in the log twice, if it may.
fn duplicate_explanation(facts: &Facts, value: &str) -> Option<String> {
    let sends = facts.sends.get(value)?;
    if sends.invokes > 1 {
        return Some(format!("sent {} times by the application", sends.invokes));
    }
    let non_idempotent = sends
        .processes
        .iter()
        .any(|p| facts.non_idempotent.contains(p));
    let unsure = sends.indeterminate() + sends.fails > 0;
    (non_idempotent && unsure).then(|| {
        "a non-idempotent producer's send that did not end ok (its retries may write twice)"
            .to_string()
    })
}

fn describe_positions(positions: &std::collections::BTreeSet<Position>) -> String {
    let list: Vec<String> = positions
        .iter()
        .map(|(partition, offset)| format!("{partition}:{offset}"))
        .collect();
    format!("partition:offset {}", list.join(", "))
}

fn inconsistent_offsets(facts: &Facts, result: &mut CheckResult) {
    let mut positions: Vec<&Position> = facts
        .at
        .iter()
        .filter(|(_, values)| values.len() > 1)
        .map(|(position, _)| position)
        .collect();
    positions.sort();
    for &(partition, offset) in positions {
        let values = &facts.at[&(partition, offset)];
        let mut processes = Vec::new();
        let mut seen = Vec::new();
        let mut first = f64::INFINITY;
        for (value, how) in values {
            for (verb, sighting) in [("acknowledged to", how.acked), ("read by", how.read)] {
                let Some(s) = sighting else { continue };
                seen.push(format!(
                    "{value:?} {verb} {} at {:.0} ms",
                    s.process, s.time_ms
                ));
                processes.push(s.process.to_string());
                first = first.min(s.time_ms);
            }
        }
        processes.sort();
        processes.dedup();
        result.add(
            Anomaly::InconsistentOffset,
            Example {
                partition,
                offset: Some(offset),
                value: None,
                processes,
                time_ms: first,
                detail: seen.join("; "),
            },
        );
    }
}

fn reads_of_failed_writes(facts: &Facts, result: &mut CheckResult) {
    for (value, positions) in &facts.positions_of {
        let failed = facts.sends.get(value).is_some_and(|s| s.all_failed());
        if !failed {
            continue;
        }
        let Some(((partition, offset), read)) = facts.first_read(value) else {
            continue;
        };
        let mut processes: Vec<String> = facts.sends[value]
            .processes
            .iter()
            .map(|p| p.to_string())
            .collect();
        processes.push(read.process.to_string());
        result.add(
            Anomaly::ReadOfFailedWrite,
            Example {
                partition,
                offset: Some(offset),
                value: Some(value.to_string()),
                processes,
                time_ms: read.time_ms,
                detail: format!(
                    "its send failed, yet it was read at {}",
                    describe_positions(positions)
                ),
            },
        );
    }
}

/// One acknowledged send: where in the history it was invoked, its offset, its ack.
type SentAndAcked<'a> = (usize, i64, &'a Event);

/// Per producer and partition, acknowledged offsets must grow in the order the sends were
/// invoked: an idempotent producer keeps its order per partition even with many in flight.
fn non_monotonic_sends(history: &[Event], result: &mut CheckResult) {
    let mut invoked_at: HashMap<(&str, &str), usize> = HashMap::new();
    let mut streams: BTreeMap<(&str, i32), Vec<SentAndAcked>> = BTreeMap::new();
    for (n, event) in history.iter().enumerate() {
        if let (Op::Send { value, .. }, Phase::Invoke) = (&event.op, event.phase) {
            invoked_at.entry((&event.process, value)).or_insert(n);
        }
        if let Some((partition, offset, value)) = event.ack() {
            // An ack without a recorded invoke sorts after every invoked send.
            let sent = invoked_at
                .get(&(event.process.as_str(), value))
                .copied()
                .unwrap_or(usize::MAX);
            streams
                .entry((&event.process, partition))
                .or_default()
                .push((sent, offset, event));
        }
    }
    for ((_, partition), mut acks) in streams {
        acks.sort_by_key(|(sent, _, _)| *sent);
        let mut highest: Option<(i64, &str)> = None;
        for (_, offset, event) in acks {
            let value = event.ack().map_or("", |a| a.2);
            match highest {
                Some((above, earlier)) if offset <= above => result.add(
                    Anomaly::NonMonotonicSend,
                    Example {
                        partition,
                        offset: Some(offset),
                        value: Some(value.to_string()),
                        processes: vec![event.process.clone()],
                        time_ms: event.time_ms,
                        detail: format!(
                            "sent after {earlier:?}, which was acknowledged at offset {above}"
                        ),
                    },
                ),
                _ => highest = Some((offset, value)),
            }
        }
    }
}

/// A consumer that reads on its own (assign mode and the final reads) reads each
/// partition strictly forward until it seeks. Each step back (or repeat) counts once.
fn non_monotonic_polls(history: &[Event], result: &mut CheckResult) {
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for event in history {
        match &event.op {
            Op::Assign {
                mode: Mode::Assign | Mode::Final,
                partitions,
                ..
            } => {
                for partition in partitions {
                    last.remove(&(event.process.as_str(), *partition));
                }
            }
            Op::Poll {
                mode: Mode::Assign | Mode::Final,
                ..
            } => {
                for record in event.records_read() {
                    let key = (event.process.as_str(), record.partition);
                    if let Some(&previous) = last.get(&key) {
                        if record.offset <= previous {
                            result.add(
                                Anomaly::NonMonotonicPoll,
                                Example {
                                    partition: record.partition,
                                    offset: Some(record.offset),
                                    value: record.value.clone(),
                                    processes: vec![event.process.clone()],
                                    time_ms: event.time_ms,
                                    detail: format!("read after offset {previous} without a seek"),
                                },
                            );
                        }
                    }
                    last.insert(key, record.offset);
                }
            }
            _ => {}
        }
    }
}

/// A group member given a partition must start at or after the offset the group had
/// committed for it (a committed offset is the next one to read), or the group re-reads
/// what it had declared done.
fn resumed_below_committed(history: &[Event], result: &mut CheckResult) {
    let mut committed: HashMap<(&str, i32), i64> = HashMap::new();
    // (member, partition) -> the group's committed offset when it was assigned, until
    // the member's first record of that partition.
    let mut awaiting: HashMap<(&str, i32), (i64, f64)> = HashMap::new();
    for event in history {
        let process = event.process.as_str();
        match (&event.op, event.phase) {
            (Op::Commit { group, offsets }, Phase::Ok) => {
                for (partition, offset) in offsets {
                    let Ok(partition) = partition.parse::<i32>() else {
                        continue;
                    };
                    let highest = committed.entry((group, partition)).or_insert(*offset);
                    *highest = (*highest).max(*offset);
                }
            }
            (
                Op::Assign {
                    mode: Mode::Subscribe,
                    group,
                    partitions,
                },
                phase,
            ) => {
                for partition in partitions {
                    let key = (process, *partition);
                    let at_assignment = group
                        .as_deref()
                        .and_then(|g| committed.get(&(g, *partition)));
                    match (phase, at_assignment) {
                        (Phase::Ok, Some(&c)) => {
                            awaiting.insert(key, (c, event.time_ms));
                        }
                        _ => {
                            awaiting.remove(&key);
                        }
                    }
                }
            }
            (
                Op::Poll {
                    mode: Mode::Subscribe,
                    ..
                },
                _,
            ) => {
                for record in event.records_read() {
                    let Some((c, assigned)) = awaiting.remove(&(process, record.partition)) else {
                        continue;
                    };
                    if record.offset < c {
                        result.add(
                            Anomaly::ResumedBelowCommitted,
                            Example {
                                partition: record.partition,
                                offset: Some(record.offset),
                                value: record.value.clone(),
                                processes: vec![event.process.clone()],
                                time_ms: event.time_ms,
                                detail: format!(
                                    "assigned at {assigned:.0} ms, when the group had committed offset {c}"
                                ),
                            },
                        );
                    }
                }
            }
            _ => {}
        }
    }
}
