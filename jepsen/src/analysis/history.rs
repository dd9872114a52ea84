//! The history as the checker reads it: every line a client or the nemesis wrote (see
//! `workload::record`), typed. Unknown kinds are kept as `Other`, so a newer client never
//! breaks an older checker.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub time_ms: f64,
    pub process: String,
    pub client: String,
    #[serde(flatten)]
    pub op: Op,
}

/// Jepsen's completion types: `ok` happened, `fail` did not, `info` may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Invoke,
    Ok,
    Fail,
    Info,
    Revoke,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Op {
    Send {
        #[serde(rename = "type")]
        phase: Phase,
        partition: i32,
        value: String,
        offset: Option<i64>,
    },
    Poll {
        #[serde(rename = "type")]
        phase: Phase,
        mode: String,
        #[serde(default)]
        records: Vec<Record>,
    },
    Commit {
        #[serde(rename = "type")]
        phase: Phase,
        group: String,
        offsets: BTreeMap<String, i64>,
    },
    Assign {
        #[serde(rename = "type")]
        phase: Phase,
        mode: String,
        #[serde(default)]
        group: Option<String>,
        #[serde(default)]
        partitions: Vec<i32>,
    },
    Fault {
        #[serde(rename = "type")]
        phase: Phase,
        fault: String,
        nodes: Vec<u8>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub value: Option<String>,
}

impl Event {
    /// True for a completed operation that succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(
            self.op,
            Op::Send {
                phase: Phase::Ok,
                ..
            } | Op::Poll {
                phase: Phase::Ok,
                ..
            } | Op::Commit {
                phase: Phase::Ok,
                ..
            }
        )
    }
}

/// Reads a JSON-lines history; a torn last line (a killed client) is skipped.
pub fn read(path: &Path) -> anyhow::Result<Vec<Event>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut events: Vec<Event> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    events.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
    Ok(events)
}
