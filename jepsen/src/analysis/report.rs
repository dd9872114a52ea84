//! The verdict of a run and everything it rests on, as `report.json` and a self-contained
//! `report.html`, plus the one line `scripts/chaos.sh` prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::anomalies::{Anomalies, Example};
use super::history::{Event, Op, Phase};
use super::liveness::Liveness;

/// How many examples of each anomaly the report keeps.
const EXAMPLES: usize = 10;

#[derive(Debug, Serialize)]
pub struct Report {
    pub valid: bool,
    /// One line: valid or not, and why.
    pub summary: String,
    pub seed: u64,
    pub config: Value,
    pub acknowledged_writes: usize,
    pub anomaly_counts: BTreeMap<String, usize>,
    pub examples: BTreeMap<String, Vec<Example>>,
    pub liveness: Liveness,
}

impl Report {
    pub fn build(
        history: &[Event],
        anomalies: Anomalies,
        liveness: Liveness,
        seed: u64,
        config: Value,
    ) -> Report {
        let acknowledged = history
            .iter()
            .filter(|e| {
                matches!(
                    e.op,
                    Op::Send {
                        phase: Phase::Ok,
                        ..
                    }
                )
            })
            .count();
        let counts: BTreeMap<String, usize> = anomalies
            .counts()
            .into_iter()
            .map(|(name, count)| (name.to_string(), count))
            .collect();
        let valid = anomalies.valid();
        let summary = summary_line(valid, acknowledged, &counts, &liveness);
        Report {
            valid,
            summary,
            seed,
            config,
            acknowledged_writes: acknowledged,
            anomaly_counts: counts,
            examples: examples(anomalies),
            liveness,
        }
    }

    /// Writes `report.json` and `report.html` into `dir`; returns the JSON's path.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let json = dir.join("report.json");
        std::fs::write(&json, serde_json::to_string_pretty(self)?)?;
        std::fs::write(dir.join("report.html"), super::html::render(self))?;
        Ok(json)
    }
}

fn summary_line(
    valid: bool,
    acknowledged: usize,
    counts: &BTreeMap<String, usize>,
    liveness: &Liveness,
) -> String {
    let gaps: Vec<String> = liveness
        .libraries
        .iter()
        .map(|(library, f)| format!("{library} {:.1} s", f.longest_gap_ms / 1000.0))
        .collect();
    if valid {
        format!(
            "valid: {acknowledged} acknowledged writes, every one read at its offset and none twice in the log; \
             longest producer pause {}",
            gaps.join(", ")
        )
    } else {
        let problems: Vec<String> = counts
            .iter()
            .filter(|(name, count)| **count > 0 && name.as_str() != "duplicate_explained")
            .map(|(name, count)| format!("{count} {}", name.replace('_', " ")))
            .collect();
        format!(
            "INVALID: {} (of {acknowledged} acknowledged writes)",
            problems.join(", ")
        )
    }
}

fn examples(anomalies: Anomalies) -> BTreeMap<String, Vec<Example>> {
    let Anomalies {
        lost,
        unseen,
        duplicate_unexplained,
        duplicate_explained,
        inconsistent_offset,
        read_of_failed_write,
        non_monotonic_send,
        non_monotonic_poll,
        resumed_below_committed,
    } = anomalies;
    [
        ("lost", lost),
        ("unseen", unseen),
        ("duplicate_unexplained", duplicate_unexplained),
        ("duplicate_explained", duplicate_explained),
        ("inconsistent_offset", inconsistent_offset),
        ("read_of_failed_write", read_of_failed_write),
        ("non_monotonic_send", non_monotonic_send),
        ("non_monotonic_poll", non_monotonic_poll),
        ("resumed_below_committed", resumed_below_committed),
    ]
    .into_iter()
    .filter(|(_, list)| !list.is_empty())
    .map(|(name, mut list)| {
        list.truncate(EXAMPLES);
        (name.to_string(), list)
    })
    .collect()
}
