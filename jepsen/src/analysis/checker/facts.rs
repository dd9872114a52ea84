//! What a history says, indexed once so that every anomaly check is a lookup: what each
//! position of the log was seen to hold (by the producers' acknowledgements and by every
//! read), where each value was seen, and how each value's sends ended.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::analysis::history::{Event, Op, Phase};

/// A (partition, offset) of the run's one topic.
pub type Position = (i32, i64);

/// Who first saw something, and when.
#[derive(Debug, Clone, Copy)]
pub struct Sighting<'a> {
    pub process: &'a str,
    pub time_ms: f64,
}

/// How one value was seen at one position.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen<'a> {
    pub acked: Option<Sighting<'a>>,
    pub read: Option<Sighting<'a>>,
}

/// An acknowledged write.
pub struct Ack<'a> {
    pub partition: i32,
    pub offset: i64,
    pub value: &'a str,
    pub event: &'a Event,
}

/// How the sends of one value ended.
#[derive(Debug, Default)]
pub struct Sends<'a> {
    pub invokes: usize,
    pub oks: usize,
    pub infos: usize,
    pub fails: usize,
    pub processes: BTreeSet<&'a str>,
}

impl Sends<'_> {
    /// Sends that may have written the value without saying so: `info`, and invokes
    /// that never completed (the producer died first).
    pub fn indeterminate(&self) -> usize {
        let completed = self.oks + self.infos + self.fails;
        self.infos + self.invokes.saturating_sub(completed)
    }

    /// Every send of the value definitely did not happen.
    pub fn all_failed(&self) -> bool {
        self.fails > 0 && self.oks == 0 && self.indeterminate() == 0
    }
}

pub struct Facts<'a> {
    pub acks: Vec<Ack<'a>>,
    /// Every value seen at each position, by acknowledgement or by read.
    pub at: HashMap<Position, BTreeMap<&'a str, Seen<'a>>>,
    /// The highest offset any read returned, per partition.
    pub highest_read: HashMap<i32, i64>,
    /// Every position each value was seen at (ordered, so reports are stable).
    pub positions_of: BTreeMap<&'a str, BTreeSet<Position>>,
    pub sends: HashMap<&'a str, Sends<'a>>,
    /// Producers that said they are not idempotent.
    pub non_idempotent: HashSet<&'a str>,
}

impl<'a> Facts<'a> {
    pub fn gather(history: &'a [Event]) -> Facts<'a> {
        let mut facts = Facts {
            acks: Vec::new(),
            at: HashMap::new(),
            highest_read: HashMap::new(),
            positions_of: BTreeMap::new(),
            sends: HashMap::new(),
            non_idempotent: HashSet::new(),
        };
        for event in history {
            facts.note_send(event);
            facts.note_reads(event);
        }
        for (position, values) in &facts.at {
            for value in values.keys() {
                facts
                    .positions_of
                    .entry(value)
                    .or_default()
                    .insert(*position);
            }
        }
        facts
    }

    fn note_send(&mut self, event: &'a Event) {
        let Op::Send {
            value, idempotent, ..
        } = &event.op
        else {
            return;
        };
        if *idempotent == Some(false) {
            self.non_idempotent.insert(&event.process);
        }
        let sends = self.sends.entry(value).or_default();
        sends.processes.insert(&event.process);
        match event.phase {
            Phase::Invoke => sends.invokes += 1,
            Phase::Ok => sends.oks += 1,
            Phase::Info => sends.infos += 1,
            Phase::Fail => sends.fails += 1,
            Phase::Revoke => {}
        }
        if let Some((partition, offset, value)) = event.ack() {
            self.acks.push(Ack {
                partition,
                offset,
                value,
                event,
            });
            let seen = self.seen(partition, offset, value);
            seen.acked.get_or_insert(sighting(event));
        }
    }

    fn note_reads(&mut self, event: &'a Event) {
        for record in event.records_read() {
            let highest = self
                .highest_read
                .entry(record.partition)
                .or_insert(record.offset);
            *highest = (*highest).max(record.offset);
            // A record without payload still shows how far the log went, but no value of
            // the harness's producers is at that position.
            if let Some(value) = &record.value {
                let seen = self.seen(record.partition, record.offset, value);
                seen.read.get_or_insert(sighting(event));
            }
        }
    }

    fn seen(&mut self, partition: i32, offset: i64, value: &'a str) -> &mut Seen<'a> {
        self.at
            .entry((partition, offset))
            .or_default()
            .entry(value)
            .or_default()
    }

    /// Whether a read returned `value` at this position.
    pub fn read_at(&self, position: Position, value: &str) -> bool {
        self.at
            .get(&position)
            .and_then(|values| values.get(value))
            .is_some_and(|seen| seen.read.is_some())
    }

    /// The first read of `value` anywhere, and where.
    pub fn first_read(&self, value: &str) -> Option<(Position, Sighting<'a>)> {
        self.positions_of
            .get(value)?
            .iter()
            .filter_map(|position| Some((*position, self.at[position].get(value)?.read?)))
            .min_by(|a, b| a.1.time_ms.total_cmp(&b.1.time_ms))
    }
}

fn sighting(event: &Event) -> Sighting<'_> {
    Sighting {
        process: &event.process,
        time_ms: event.time_ms,
    }
}
