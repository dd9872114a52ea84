//! The history of a run: one JSON object per line, written by every client process and by
//! the nemesis, merged on one clock (milliseconds since the run's start).
//!
//! Every line is one [`Event`]: who (`process`, `client`), when (`time_ms`), what
//! (`kind` plus its own fields) and how it went (`type`, with Jepsen's meaning: `fail`
//! definitely did not happen, `info` may or may not have). An operation is an `invoke`
//! line and, later, its completion line; a poll, a rebalance or an assignment is only ever
//! recorded once it happened, so it has no invoke.
//!
//! The format is shared with clients not written in Rust (the Java client prints the same
//! objects), so it is plain JSON with string tags; kinds this checker does not know are
//! kept as [`Op::Other`] so a newer writer never breaks an older checker.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time_ms: f64,
    /// The writer of the line: "rdkafka-producer-0", "java-assign-0", "nemesis".
    pub process: String,
    /// Its client library: "rdkafka", "java", or "nemesis".
    pub client: String,
    #[serde(rename = "type")]
    pub phase: Phase,
    #[serde(flatten)]
    pub op: Op,
    /// What the client said when an operation failed or may have failed; only for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How an operation went, in Jepsen's terms, plus the one thing a group rebalance can do
/// that no operation does: take partitions away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Invoke,
    Ok,
    /// Definitely did not happen.
    Fail,
    /// May or may not have happened.
    Info,
    /// A rebalance took the listed partitions from this consumer.
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Op {
    /// One record sent. `partition` is known once the client chose it (on the invoke when
    /// the producer picks partitions itself); `offset` only on `ok`.
    Send {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partition: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<i64>,
        value: String,
        /// `false` for a producer without idempotence: its retries may write a record twice,
        /// which explains a duplicate of a send that ended `info` or `fail`. Absent means
        /// idempotent, the strict reading.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotent: Option<bool>,
    },
    /// Records one consumer's poll returned, in the order it returned them.
    Poll {
        mode: Mode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        #[serde(default)]
        records: Vec<Record>,
    },
    /// Offsets committed for a group: partition -> the next offset to read (Kafka's
    /// meaning). Partitions are JSON object keys, hence strings.
    Commit {
        group: String,
        offsets: BTreeMap<String, i64>,
    },
    /// The consumer's partitions were set: in `assign` mode by the client itself (also
    /// written as `seek`: the position of these partitions was reset, so reading them
    /// may go back); in `subscribe` mode by a group rebalance (`ok` = assigned, `revoke` =
    /// taken away).
    #[serde(alias = "seek")]
    Assign {
        mode: Mode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        #[serde(default)]
        partitions: Vec<i32>,
    },
    /// A fault of the nemesis: `invoke` when it starts, its completion when it is healed.
    Fault {
        fault: String,
        /// The nodes it hits (none for faults aimed at the clients or the brokers).
        #[serde(default)]
        nodes: Vec<u8>,
    },
    /// A kind this checker does not know (e.g. the runner's `recover` marks).
    #[serde(other)]
    Other,
}

/// How a consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Partitions assigned by the client, read forward from where it put them.
    Assign,
    /// A member of a consumer group; partitions come and go with rebalances.
    Subscribe,
    /// The final reads: every partition from the beginning to its end, as in `assign`.
    Final,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    /// `None` for a record without payload (never written by the harness's producers).
    pub value: Option<String>,
}

impl Event {
    pub fn new(time_ms: f64, process: &str, client: &str, phase: Phase, op: Op) -> Event {
        Event {
            time_ms,
            process: process.to_string(),
            client: client.to_string(),
            phase,
            op,
            error: None,
        }
    }

    /// A completed send, poll or commit that succeeded: what the liveness figures count.
    pub fn is_ok_operation(&self) -> bool {
        self.phase == Phase::Ok
            && matches!(
                self.op,
                Op::Send { .. } | Op::Poll { .. } | Op::Commit { .. }
            )
    }

    /// An acknowledged write: (partition, offset, value).
    pub fn ack(&self) -> Option<(i32, i64, &str)> {
        match &self.op {
            Op::Send {
                partition: Some(partition),
                offset: Some(offset),
                value,
                ..
            } if self.phase == Phase::Ok => Some((*partition, *offset, value)),
            _ => None,
        }
    }

    /// The records of a successful poll (none for anything else).
    pub fn records_read(&self) -> &[Record] {
        match &self.op {
            Op::Poll { records, .. } if self.phase == Phase::Ok => records,
            _ => &[],
        }
    }
}

/// Reads a JSON-lines history and orders it by time (ties keep their order in the file).
///
/// A last line without its newline is a client killed mid-write and is skipped; any other
/// line that does not parse is an error, because silently dropping, say, every send of a
/// misbehaving writer would let the checker call a broken run valid.
pub fn read_history(path: &Path) -> anyhow::Result<Vec<Event>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut events = parse_lines(&text).with_context(|| format!("in {}", path.display()))?;
    events.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
    Ok(events)
}

fn parse_lines(text: &str) -> anyhow::Result<Vec<Event>> {
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut events = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(_) if torn_tail && n + 1 == lines.len() => {}
            Err(e) => bail!("line {}: {e}: {}", n + 1, abbreviate(line)),
        }
    }
    Ok(events)
}

fn abbreviate(line: &str) -> String {
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

/// Appends events to a history file, one line each, from any number of threads. Each line
/// is flushed as it is written, so a process killed mid-run leaves at most its last line
/// torn (which [`read_history`] skips).
pub struct HistoryWriter {
    out: Mutex<BufWriter<File>>,
}

impl HistoryWriter {
    /// Creates (or truncates) the file.
    pub fn create(path: &Path) -> std::io::Result<HistoryWriter> {
        Ok(HistoryWriter {
            out: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }

    pub fn append(&self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_string(event)?;
        line.push('\n');
        // A writer that panicked mid-line leaves a torn line, which the reader skips;
        // the file is still worth appending to.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(line.as_bytes())?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Event {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn the_lines_the_clients_write_parse() {
        let send = parse(
            r#"{"client":"rdkafka","kind":"send","partition":0,"process":"p","time_ms":48.7,"type":"ok","offset":3,"value":"p-0"}"#,
        );
        assert_eq!(send.ack(), Some((0, 3, "p-0")));
        let poll = parse(
            r#"{"time_ms":1.0,"process":"c","client":"java","kind":"poll","type":"ok","mode":"assign","records":[{"partition":5,"offset":0,"value":"v"}]}"#,
        );
        assert_eq!(poll.records_read().len(), 1);
        let failed_poll = parse(
            r#"{"client":"rdkafka","error":"boom","group":null,"kind":"poll","mode":"subscribe","process":"g","time_ms":83.0,"type":"info"}"#,
        );
        assert_eq!(failed_poll.error.as_deref(), Some("boom"));
        let revoke = parse(
            r#"{"client":"rdkafka","group":"g","kind":"assign","mode":"subscribe","partitions":[0,1],"process":"g","time_ms":3.0,"type":"revoke"}"#,
        );
        assert_eq!(revoke.phase, Phase::Revoke);
        let commit = parse(
            r#"{"client":"rdkafka","group":"g","kind":"commit","offsets":{"0":12},"process":"g","time_ms":3.0,"type":"ok"}"#,
        );
        assert!(matches!(commit.op, Op::Commit { ref offsets, .. } if offsets["0"] == 12));
        let fault = parse(
            r#"{"client":"nemesis","fault":"kill","kind":"fault","nodes":[2],"process":"nemesis","time_ms":29127.5,"type":"invoke"}"#,
        );
        assert_eq!(
            fault.op,
            Op::Fault {
                fault: "kill".into(),
                nodes: vec![2]
            }
        );
    }

    #[test]
    fn a_seek_is_an_assignment_and_unknown_kinds_are_kept() {
        let seek = parse(
            r#"{"time_ms":1,"process":"c","client":"java","kind":"seek","type":"ok","mode":"assign","partitions":[3]}"#,
        );
        assert!(matches!(seek.op, Op::Assign { ref partitions, .. } if partitions == &[3]));
        let other = parse(
            r#"{"time_ms":1,"process":"nemesis","client":"nemesis","kind":"recover","type":"ok"}"#,
        );
        assert_eq!(other.op, Op::Other);
    }

    #[test]
    fn events_written_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("jepsen-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let events = vec![
            Event::new(
                2.0,
                "p",
                "rdkafka",
                Phase::Ok,
                Op::Send {
                    partition: Some(1),
                    offset: Some(7),
                    value: "p-1".into(),
                    idempotent: None,
                },
            ),
            Event::new(
                1.0,
                "nemesis",
                "nemesis",
                Phase::Invoke,
                Op::Fault {
                    fault: "pause".into(),
                    nodes: vec![1, 3],
                },
            ),
        ];
        let writer = std::sync::Arc::new(HistoryWriter::create(&path).unwrap());
        std::thread::scope(|s| {
            for event in &events {
                let writer = writer.clone();
                s.spawn(move || writer.append(event).unwrap());
            }
        });
        let read = read_history(&path).unwrap();
        assert_eq!(
            read,
            vec![events[1].clone(), events[0].clone()],
            "ordered by time"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_skipped_but_a_bad_line_elsewhere_is_an_error() {
        let good = r#"{"time_ms":1,"process":"c","client":"java","kind":"recover","type":"ok"}"#;
        let torn = format!("{good}\n{{\"time_ms\":2,\"proc");
        assert_eq!(parse_lines(&torn).unwrap().len(), 1);
        let bad = format!("{{\"time_ms\":2}}\n{good}\n");
        let error = parse_lines(&bad).unwrap_err().to_string();
        assert!(error.starts_with("line 1:"), "{error}");
        assert!(parse_lines("").unwrap().is_empty());
    }
}
