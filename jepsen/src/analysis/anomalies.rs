//! The safety checks over a history: everything a Kafka client may rely on after an
//! acknowledgement, and everything a consumer may rely on when it reads.
//!
//! Offsets are compared per partition of the run's one topic. Reads are every record any
//! consumer returned, including the final reads to the end of every partition, so "lost"
//! and "unseen" are judged against everything the cluster was seen to hold.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::history::{Event, Op, Phase, Record};

/// One anomaly found: where, and what was seen.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Example {
    pub partition: i32,
    pub offset: Option<i64>,
    pub value: Option<String>,
    pub process: String,
    pub time_ms: f64,
    pub detail: String,
}

/// Every anomaly kind, with all its examples (the report keeps the first few).
#[derive(Debug, Default, Serialize)]
pub struct Anomalies {
    pub lost: Vec<Example>,
    pub unseen: Vec<Example>,
    pub duplicate_unexplained: Vec<Example>,
    pub duplicate_explained: Vec<Example>,
    pub inconsistent_offset: Vec<Example>,
    pub read_of_failed_write: Vec<Example>,
    pub non_monotonic_send: Vec<Example>,
    pub non_monotonic_poll: Vec<Example>,
    pub resumed_below_committed: Vec<Example>,
}

impl Anomalies {
    /// (name, count) for every kind, in report order.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("lost", self.lost.len()),
            ("unseen", self.unseen.len()),
            ("duplicate_unexplained", self.duplicate_unexplained.len()),
            ("duplicate_explained", self.duplicate_explained.len()),
            ("inconsistent_offset", self.inconsistent_offset.len()),
            ("read_of_failed_write", self.read_of_failed_write.len()),
            ("non_monotonic_send", self.non_monotonic_send.len()),
            ("non_monotonic_poll", self.non_monotonic_poll.len()),
            (
                "resumed_below_committed",
                self.resumed_below_committed.len(),
            ),
        ]
    }

    /// Valid when nothing but duplicates a client's own retries explain was found.
    pub fn valid(&self) -> bool {
        self.counts()
            .iter()
            .all(|(name, count)| *name == "duplicate_explained" || *count == 0)
    }
}

/// An acknowledged write.
struct Ack<'a> {
    partition: i32,
    offset: i64,
    value: &'a str,
    event: &'a Event,
}

pub fn check(history: &[Event]) -> Anomalies {
    let mut found = Anomalies::default();
    let acks = acknowledged(history);
    let reads = ReadIndex::new(history);
    lost_and_unseen(&acks, &reads, &mut found);
    duplicates(history, &reads, &mut found);
    inconsistent_offsets(&acks, &reads, &mut found);
    reads_of_failed_writes(history, &reads, &mut found);
    non_monotonic_sends(history, &mut found);
    non_monotonic_polls(history, &mut found);
    resumed_below_committed(history, &mut found);
    found
}

fn acknowledged(history: &[Event]) -> Vec<Ack<'_>> {
    history
        .iter()
        .filter_map(|e| match &e.op {
            Op::Send {
                phase: Phase::Ok,
                partition,
                value,
                offset: Some(offset),
            } => Some(Ack {
                partition: *partition,
                offset: *offset,
                value,
                event: e,
            }),
            _ => None,
        })
        .collect()
}

/// Everything ever read, by position and by value.
struct ReadIndex<'a> {
    at: HashMap<(i32, i64), BTreeSet<&'a str>>,
    positions_of: HashMap<&'a str, BTreeSet<(i32, i64)>>,
    highest: HashMap<i32, i64>,
    first_read: HashMap<&'a str, (&'a Event, &'a Record)>,
}

impl<'a> ReadIndex<'a> {
    fn new(history: &'a [Event]) -> Self {
        let mut index = ReadIndex {
            at: HashMap::new(),
            positions_of: HashMap::new(),
            highest: HashMap::new(),
            first_read: HashMap::new(),
        };
        for event in history {
            let Op::Poll {
                phase: Phase::Ok,
                records,
                ..
            } = &event.op
            else {
                continue;
            };
            for record in records {
                let Some(value) = record.value.as_deref() else {
                    continue;
                };
                let position = (record.partition, record.offset);
                index.at.entry(position).or_default().insert(value);
                index
                    .positions_of
                    .entry(value)
                    .or_default()
                    .insert(position);
                let highest = index
                    .highest
                    .entry(record.partition)
                    .or_insert(record.offset);
                *highest = (*highest).max(record.offset);
                index.first_read.entry(value).or_insert((event, record));
            }
        }
        index
    }
}

fn example(ack: &Ack, detail: String) -> Example {
    Example {
        partition: ack.partition,
        offset: Some(ack.offset),
        value: Some(ack.value.to_string()),
        process: ack.event.process.clone(),
        time_ms: ack.event.time_ms,
        detail,
    }
}

fn lost_and_unseen(acks: &[Ack], reads: &ReadIndex, found: &mut Anomalies) {
    for ack in acks {
        let read_there = reads
            .at
            .get(&(ack.partition, ack.offset))
            .is_some_and(|values| values.contains(ack.value));
        if read_there {
            continue;
        }
        let highest = reads.highest.get(&ack.partition).copied();
        if highest.is_some_and(|h| h > ack.offset) {
            found.lost.push(example(
                ack,
                format!(
                    "reads reached offset {} of this partition",
                    highest.unwrap_or(-1)
                ),
            ));
        } else {
            found.unseen.push(example(
                ack,
                "never read, not even by the final reads".into(),
            ));
        }
    }
}

fn duplicates(history: &[Event], reads: &ReadIndex, found: &mut Anomalies) {
    let mut invokes: HashMap<&str, usize> = HashMap::new();
    for event in history {
        if let Op::Send {
            phase: Phase::Invoke,
            value,
            ..
        } = &event.op
        {
            *invokes.entry(value).or_default() += 1;
        }
    }
    for (value, positions) in &reads.positions_of {
        if positions.len() < 2 {
            continue;
        }
        let (event, record) = reads.first_read[value];
        let sent_more_than_once = invokes.get(value).copied().unwrap_or(0) > 1;
        let example = Example {
            partition: record.partition,
            offset: Some(record.offset),
            value: Some(value.to_string()),
            process: event.process.clone(),
            time_ms: event.time_ms,
            detail: format!("read at {positions:?}"),
        };
        if sent_more_than_once {
            found.duplicate_explained.push(example);
        } else {
            found.duplicate_unexplained.push(example);
        }
    }
}

fn inconsistent_offsets(acks: &[Ack], reads: &ReadIndex, found: &mut Anomalies) {
    let mut values: BTreeMap<(i32, i64), BTreeSet<&str>> = BTreeMap::new();
    for ack in acks {
        values
            .entry((ack.partition, ack.offset))
            .or_default()
            .insert(ack.value);
    }
    for (position, read) in &reads.at {
        values
            .entry(*position)
            .or_default()
            .extend(read.iter().copied());
    }
    for ((partition, offset), seen) in values.into_iter().filter(|(_, v)| v.len() > 1) {
        found.inconsistent_offset.push(Example {
            partition,
            offset: Some(offset),
            value: None,
            process: String::new(),
            time_ms: 0.0,
            detail: format!("values {seen:?}"),
        });
    }
}

fn reads_of_failed_writes(history: &[Event], reads: &ReadIndex, found: &mut Anomalies) {
    for event in history {
        let Op::Send {
            phase: Phase::Fail,
            value,
            partition,
            ..
        } = &event.op
        else {
            continue;
        };
        if let Some(positions) = reads.positions_of.get(value.as_str()) {
            found.read_of_failed_write.push(Example {
                partition: *partition,
                offset: positions.iter().next().map(|p| p.1),
                value: Some(value.clone()),
                process: event.process.clone(),
                time_ms: event.time_ms,
                detail: format!("the send failed, yet it was read at {positions:?}"),
            });
        }
    }
}

/// Per producer and partition, acknowledged offsets must grow in the order of the sends.
fn non_monotonic_sends(history: &[Event], found: &mut Anomalies) {
    let mut order: HashMap<&str, usize> = HashMap::new();
    for (n, event) in history.iter().enumerate() {
        if let Op::Send {
            phase: Phase::Invoke,
            value,
            ..
        } = &event.op
        {
            order.entry(value).or_insert(n);
        }
    }
    // (producer, partition) -> (send order, offset, completion, value)
    type Stream<'a> = Vec<(usize, i64, &'a Event, &'a str)>;
    let mut by_stream: BTreeMap<(&str, i32), Stream> = BTreeMap::new();
    for event in history {
        if let Op::Send {
            phase: Phase::Ok,
            partition,
            value,
            offset: Some(offset),
        } = &event.op
        {
            let sent = order.get(value.as_str()).copied().unwrap_or(usize::MAX);
            by_stream
                .entry((&event.process, *partition))
                .or_default()
                .push((sent, *offset, event, value));
        }
    }
    for ((_, partition), mut acks) in by_stream {
        acks.sort_by_key(|a| a.0);
        for pair in acks.windows(2) {
            let ((_, before, _, _), (_, after, event, value)) = (pair[0], pair[1]);
            if after <= before {
                found.non_monotonic_send.push(Example {
                    partition,
                    offset: Some(after),
                    value: Some(value.to_string()),
                    process: event.process.clone(),
                    time_ms: event.time_ms,
                    detail: format!("sent later than the record at offset {before}, acknowledged at a lower offset"),
                });
            }
        }
    }
}

/// In assign mode (and the final reads), each consumer reads each partition forward.
fn non_monotonic_polls(history: &[Event], found: &mut Anomalies) {
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for event in history {
        match &event.op {
            Op::Assign {
                mode, partitions, ..
            } if mode == "assign" => {
                for p in partitions {
                    last.remove(&(event.process.as_str(), *p));
                }
            }
            Op::Poll {
                phase: Phase::Ok,
                mode,
                records,
            } if mode != "subscribe" => {
                for record in records {
                    let key = (event.process.as_str(), record.partition);
                    if let Some(&previous) = last.get(&key) {
                        if record.offset <= previous {
                            found.non_monotonic_poll.push(Example {
                                partition: record.partition,
                                offset: Some(record.offset),
                                value: record.value.clone(),
                                process: event.process.clone(),
                                time_ms: event.time_ms,
                                detail: format!("read after offset {previous}"),
                            });
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
/// committed for it (a committed offset is the next one to read).
fn resumed_below_committed(history: &[Event], found: &mut Anomalies) {
    let mut committed: HashMap<(&str, i32), i64> = HashMap::new();
    // (process, partition) -> the committed offset when it was assigned, until first read.
    let mut pending: HashMap<(&str, i32), i64> = HashMap::new();
    for event in history {
        match &event.op {
            Op::Commit {
                phase: Phase::Ok,
                group,
                offsets,
            } => {
                for (partition, offset) in offsets {
                    if let Ok(p) = partition.parse::<i32>() {
                        let entry = committed.entry((group.as_str(), p)).or_insert(*offset);
                        *entry = (*entry).max(*offset);
                    }
                }
            }
            Op::Assign {
                phase: Phase::Ok,
                mode,
                group: Some(group),
                partitions,
            } if mode == "subscribe" => {
                for p in partitions {
                    if let Some(&c) = committed.get(&(group.as_str(), *p)) {
                        pending.insert((&event.process, *p), c);
                    }
                }
            }
            Op::Poll {
                phase: Phase::Ok,
                mode,
                records,
            } if mode == "subscribe" => {
                for record in records {
                    let Some(c) = pending.remove(&(event.process.as_str(), record.partition))
                    else {
                        continue;
                    };
                    if record.offset < c {
                        found.resumed_below_committed.push(Example {
                            partition: record.partition,
                            offset: Some(record.offset),
                            value: record.value.clone(),
                            process: event.process.clone(),
                            time_ms: event.time_ms,
                            detail: format!("the group had committed offset {c}"),
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made history, one builder call per line.
    #[derive(Default)]
    struct History(Vec<Event>);

    impl History {
        fn push(&mut self, process: &str, op: Op) -> &mut Self {
            let time_ms = self.0.len() as f64;
            self.0.push(Event {
                time_ms,
                process: process.into(),
                client: "rdkafka".into(),
                op,
            });
            self
        }

        fn invoke(&mut self, process: &str, partition: i32, value: &str) -> &mut Self {
            self.push(process, send(Phase::Invoke, partition, value, None))
        }

        fn ack(&mut self, process: &str, partition: i32, offset: i64, value: &str) -> &mut Self {
            self.push(process, send(Phase::Ok, partition, value, Some(offset)))
        }

        fn sent(&mut self, process: &str, partition: i32, offset: i64, value: &str) -> &mut Self {
            self.invoke(process, partition, value)
                .ack(process, partition, offset, value)
        }

        fn poll(&mut self, process: &str, mode: &str, records: &[(i32, i64, &str)]) -> &mut Self {
            let records = records
                .iter()
                .map(|&(partition, offset, value)| Record {
                    partition,
                    offset,
                    value: Some(value.into()),
                })
                .collect();
            self.push(
                process,
                Op::Poll {
                    phase: Phase::Ok,
                    mode: mode.into(),
                    records,
                },
            )
        }

        fn check(&self) -> Anomalies {
            check(&self.0)
        }
    }

    fn send(phase: Phase, partition: i32, value: &str, offset: Option<i64>) -> Op {
        Op::Send {
            phase,
            partition,
            value: value.into(),
            offset,
        }
    }

    /// The counts that are not zero.
    fn found(anomalies: &Anomalies) -> Vec<(&'static str, usize)> {
        anomalies
            .counts()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn clean() -> History {
        let mut h = History::default();
        h.sent("p", 0, 0, "a")
            .sent("p", 0, 1, "b")
            .sent("p", 1, 0, "c");
        h.poll("final", "final", &[(0, 0, "a"), (0, 1, "b"), (1, 0, "c")]);
        h
    }

    #[test]
    fn a_clean_history_is_valid() {
        let anomalies = clean().check();
        assert_eq!(found(&anomalies), vec![]);
        assert!(anomalies.valid());
    }

    #[test]
    fn an_empty_history_is_valid() {
        assert!(History::default().check().valid());
    }

    #[test]
    fn an_acknowledged_write_missing_below_the_highest_read_is_lost() {
        let mut h = History::default();
        h.sent("p", 0, 0, "a")
            .sent("p", 0, 1, "b")
            .sent("p", 0, 2, "c");
        h.poll("final", "final", &[(0, 0, "a"), (0, 2, "c")]);
        let anomalies = h.check();
        assert_eq!(found(&anomalies), vec![("lost", 1)]);
        assert_eq!(anomalies.lost[0].value.as_deref(), Some("b"));
        assert!(!anomalies.valid());
    }

    #[test]
    fn an_acknowledged_write_never_read_is_unseen() {
        let mut h = History::default();
        h.sent("p", 0, 0, "a").sent("p", 0, 1, "b");
        h.poll("final", "final", &[(0, 0, "a")]);
        assert_eq!(found(&h.check()), vec![("unseen", 1)]);
    }

    #[test]
    fn a_value_at_two_offsets_is_a_duplicate_unexplained_unless_it_was_sent_twice() {
        let mut h = History::default();
        h.sent("p", 0, 0, "a");
        h.poll("final", "final", &[(0, 0, "a"), (0, 1, "a")]);
        assert_eq!(found(&h.check()), vec![("duplicate_unexplained", 1)]);

        let mut resent = History::default();
        resent.invoke("p", 0, "a").sent("p", 0, 0, "a");
        resent.poll("final", "final", &[(0, 0, "a"), (0, 1, "a")]);
        let anomalies = resent.check();
        assert_eq!(found(&anomalies), vec![("duplicate_explained", 1)]);
        assert!(
            anomalies.valid(),
            "a resend the client asked for explains it"
        );
    }

    #[test]
    fn one_offset_with_two_values_is_inconsistent() {
        let mut h = History::default();
        h.sent("p", 0, 0, "a");
        h.poll("c1", "assign", &[(0, 0, "a")]);
        h.poll("c2", "assign", &[(0, 0, "x")]);
        let anomalies = h.check();
        assert_eq!(found(&anomalies), vec![("inconsistent_offset", 1)]);
    }

    #[test]
    fn a_failed_write_that_is_read_is_reported() {
        let mut h = History::default();
        h.invoke("p", 0, "a")
            .push("p", send(Phase::Fail, 0, "a", None));
        h.poll("final", "final", &[(0, 0, "a")]);
        assert_eq!(found(&h.check()), vec![("read_of_failed_write", 1)]);
    }

    #[test]
    fn an_indeterminate_write_that_shows_up_is_fine() {
        let mut h = History::default();
        h.invoke("p", 0, "a")
            .push("p", send(Phase::Info, 0, "a", None));
        h.poll("final", "final", &[(0, 0, "a")]);
        assert!(h.check().valid());
    }

    #[test]
    fn later_sends_acknowledged_at_lower_offsets_are_non_monotonic() {
        let mut h = History::default();
        h.invoke("p", 0, "a").invoke("p", 0, "b");
        h.ack("p", 0, 5, "a").ack("p", 0, 4, "b");
        h.poll("final", "final", &[(0, 4, "b"), (0, 5, "a")]);
        assert_eq!(found(&h.check()), vec![("non_monotonic_send", 1)]);
    }

    #[test]
    fn an_assigned_consumer_reading_backwards_is_non_monotonic_unless_reassigned() {
        let mut h = clean();
        h.poll("c", "assign", &[(0, 0, "a"), (0, 1, "b")]);
        h.poll("c", "assign", &[(0, 0, "a")]);
        assert_eq!(found(&h.check()), vec![("non_monotonic_poll", 1)]);

        let mut reassigned = clean();
        reassigned.poll("c", "assign", &[(0, 0, "a"), (0, 1, "b")]);
        reassigned.push(
            "c",
            Op::Assign {
                phase: Phase::Ok,
                mode: "assign".into(),
                group: None,
                partitions: vec![0],
            },
        );
        reassigned.poll("c", "assign", &[(0, 0, "a")]);
        assert!(reassigned.check().valid());
    }

    #[test]
    fn a_group_member_starting_below_the_committed_offset_is_reported() {
        let commit = |offset: i64| Op::Commit {
            phase: Phase::Ok,
            group: "g".into(),
            offsets: BTreeMap::from([("0".to_string(), offset)]),
        };
        let assign = Op::Assign {
            phase: Phase::Ok,
            mode: "subscribe".into(),
            group: Some("g".into()),
            partitions: vec![0],
        };
        let mut h = clean();
        h.poll("c1", "subscribe", &[(0, 0, "a"), (0, 1, "b")]);
        h.push("c1", commit(2));
        h.push("c2", assign.clone());
        h.poll("c2", "subscribe", &[(0, 1, "b")]);
        assert_eq!(found(&h.check()), vec![("resumed_below_committed", 1)]);

        let mut fine = clean();
        fine.poll("c1", "subscribe", &[(0, 0, "a")]);
        fine.push("c1", commit(1));
        fine.push("c2", assign);
        fine.poll("c2", "subscribe", &[(0, 1, "b")]);
        assert!(fine.check().valid());
    }
}
