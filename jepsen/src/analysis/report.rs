//! The verdict of a run and everything it rests on, written as `report.json` (for tools
//! and for comparing runs) and a self-contained `report.html` (for people), plus the one
//! line a run prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use super::checker::{Anomaly, CheckResult, Example};
use super::history::Event;
use super::liveness::Liveness;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub valid: bool,
    /// One line: the verdict and why ([`Report::summary_line`]).
    pub reason: String,
    /// The seed of the run's fault schedule, so it can be run again.
    pub seed: u64,
    /// The run's settings, as the runner describes them.
    pub config: Value,
    pub durations: Durations,
    pub acknowledged_writes: usize,
    /// Every anomaly kind, found or not.
    pub anomaly_counts: BTreeMap<Anomaly, usize>,
    /// The first few examples of every kind found.
    pub examples: BTreeMap<Anomaly, Vec<Example>>,
    pub liveness: Liveness,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Durations {
    /// From the history's start (the run's clock zero) to its last line.
    pub history_ms: f64,
    /// From the first send invoked to the last send completed.
    pub sending_ms: f64,
    /// Time with at least one fault in force.
    pub under_fault_ms: f64,
    pub faults: usize,
}

impl Report {
    pub fn build(
        history: &[Event],
        check: CheckResult,
        liveness: Liveness,
        seed: u64,
        config: Value,
    ) -> Report {
        let durations = durations(history, &liveness);
        let reason = summary(&check, &liveness);
        let mut anomaly_counts = BTreeMap::new();
        let mut examples = BTreeMap::new();
        for (anomaly, findings) in check.anomalies {
            anomaly_counts.insert(anomaly, findings.count);
            if findings.count > 0 {
                examples.insert(anomaly, findings.examples);
            }
        }
        Report {
            verdict: if check.valid {
                Verdict::Valid
            } else {
                Verdict::Invalid
            },
            valid: check.valid,
            reason,
            seed,
            config,
            durations,
            acknowledged_writes: check.acknowledged_writes,
            anomaly_counts,
            examples,
            liveness,
        }
    }

    /// `valid: 12345 acknowledged writes, ...; longest gap between acks 2.3 s (rdkafka)`
    /// or `INVALID: 3 lost writes, 1 unexplained duplicate (of 12345 acknowledged writes)`.
    pub fn summary_line(&self) -> &str {
        &self.reason
    }

    /// Writes `report.json` and `report.html` into `dir` (created if missing); returns the
    /// path of `report.json`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = dir.join("report.json");
        std::fs::write(&json, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", json.display()))?;
        let html = dir.join("report.html");
        std::fs::write(&html, super::html::render(self))
            .with_context(|| format!("writing {}", html.display()))?;
        Ok(json)
    }
}

fn summary(check: &CheckResult, liveness: &Liveness) -> String {
    let acknowledged = check.acknowledged_writes;
    if !check.valid {
        let problems: Vec<String> = check
            .found()
            .into_iter()
            .filter(|(anomaly, _)| anomaly.invalidates())
            .map(|(anomaly, count)| anomaly.describe(count))
            .collect();
        return format!(
            "INVALID: {} (of {acknowledged} acknowledged writes)",
            problems.join(", ")
        );
    }
    if acknowledged == 0 {
        return "valid, but vacuously: no write was acknowledged".to_string();
    }
    let mut line = format!(
        "valid: {acknowledged} acknowledged writes, all read at their offsets, none duplicated"
    );
    let explained = check.count(Anomaly::DuplicateExplained);
    if explained > 0 {
        line += &format!(
            " but {} (client resends)",
            Anomaly::DuplicateExplained.describe(explained)
        );
    }
    let gaps: Vec<String> = liveness
        .libraries
        .iter()
        .filter(|(_, f)| f.longest_ack_gap_partition.is_some())
        .map(|(library, f)| format!("{:.1} s ({library})", f.longest_ack_gap.ms / 1000.0))
        .collect();
    if !gaps.is_empty() {
        line += &format!("; longest gap between acks {}", gaps.join(", "));
    }
    line
}

fn durations(history: &[Event], liveness: &Liveness) -> Durations {
    let history_ms = history.iter().map(|e| e.time_ms).fold(0.0, f64::max);
    let send_times: Vec<f64> = history
        .iter()
        .filter(|e| matches!(e.op, super::history::Op::Send { .. }))
        .map(|e| e.time_ms)
        .collect();
    let sending_ms = match (send_times.first(), send_times.last()) {
        (Some(first), Some(last)) => last - first,
        _ => 0.0,
    };
    let mut windows: Vec<(f64, f64)> = liveness
        .faults
        .iter()
        .map(|f| (f.start_ms, f.end_ms.unwrap_or(history_ms)))
        .collect();
    windows.sort_by(|a, b| a.0.total_cmp(&b.0));
    Durations {
        history_ms,
        sending_ms,
        under_fault_ms: union_length(&windows),
        faults: windows.len(),
    }
}

/// Total length covered by intervals sorted by start.
fn union_length(windows: &[(f64, f64)]) -> f64 {
    let mut total = 0.0;
    let mut covered_until = f64::NEG_INFINITY;
    for &(start, end) in windows {
        let start = start.max(covered_until);
        if end > start {
            total += end - start;
            covered_until = end;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::history::{Mode, Op, Phase, Record};
    use crate::analysis::{checker, liveness};

    fn send(time_ms: f64, phase: Phase, offset: Option<i64>, value: &str) -> Event {
        let op = Op::Send {
            partition: Some(0),
            offset,
            value: value.into(),
            idempotent: None,
        };
        Event::new(time_ms, "rdkafka-p", "rdkafka", phase, op)
    }

    fn read(time_ms: f64, records: &[(i64, &str)]) -> Event {
        let records = records
            .iter()
            .map(|(offset, value)| Record {
                partition: 0,
                offset: *offset,
                value: Some(value.to_string()),
            })
            .collect();
        let op = Op::Poll {
            mode: Mode::Final,
            group: None,
            records,
        };
        Event::new(time_ms, "final", "rdkafka", Phase::Ok, op)
    }

    fn fault(time_ms: f64, phase: Phase) -> Event {
        let op = Op::Fault {
            fault: "pause".into(),
            nodes: vec![2],
        };
        Event::new(time_ms, "nemesis", "nemesis", phase, op)
    }

    fn report(history: &[Event]) -> Report {
        Report::build(
            history,
            checker::check(history),
            liveness::measure(history),
            7,
            serde_json::json!({"nodes": 3}),
        )
    }

    fn valid_run() -> Vec<Event> {
        vec![
            send(0.0, Phase::Invoke, None, "a"),
            send(10.0, Phase::Ok, Some(0), "a"),
            fault(100.0, Phase::Invoke),
            send(200.0, Phase::Invoke, None, "b"),
            send(2_400.0, Phase::Ok, Some(1), "b"),
            fault(2_500.0, Phase::Ok),
            read(3_000.0, &[(0, "a"), (1, "b")]),
        ]
    }

    #[test]
    fn a_valid_run_says_how_much_was_checked_and_the_longest_gap() {
        let report = report(&valid_run());
        assert_eq!(report.verdict, Verdict::Valid);
        assert_eq!(
            report.summary_line(),
            "valid: 2 acknowledged writes, all read at their offsets, none duplicated; \
             longest gap between acks 2.4 s (rdkafka)"
        );
        assert_eq!(
            report.durations,
            Durations {
                history_ms: 3_000.0,
                sending_ms: 2_400.0,
                under_fault_ms: 2_400.0,
                faults: 1
            }
        );
        assert!(report.examples.is_empty());
        assert_eq!(report.anomaly_counts.len(), Anomaly::ALL.len());
    }

    #[test]
    fn an_invalid_run_lists_what_was_found() {
        let mut history = valid_run();
        history.pop();
        history.push(read(3_000.0, &[(1, "b"), (2, "b")]));
        let report = report(&history);
        assert!(!report.valid);
        assert_eq!(
            report.summary_line(),
            "INVALID: 1 lost write, 1 unexplained duplicate (of 2 acknowledged writes)"
        );
        assert_eq!(report.examples.len(), 2);
    }

    #[test]
    fn an_empty_history_is_valid_but_says_it_proves_nothing() {
        let report = report(&[]);
        assert!(report.valid);
        assert!(report.summary_line().contains("vacuously"));
    }

    #[test]
    fn report_json_names_every_anomaly_and_leaves_out_latencies() {
        let report = report(&valid_run());
        let json: Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["verdict"], "valid");
        assert_eq!(json["seed"], 7);
        assert_eq!(json["config"]["nodes"], 3);
        for anomaly in Anomaly::ALL {
            assert_eq!(json["anomaly_counts"][anomaly.name()], 0, "{anomaly:?}");
        }
        assert!(json["liveness"].get("latencies").is_none());
        assert_eq!(json["liveness"]["faults"][0]["fault"], "pause");
    }

    #[test]
    fn write_puts_both_files_in_the_directory() {
        let dir = std::env::temp_dir().join(format!("jepsen-report-{}", std::process::id()));
        let json = report(&valid_run()).write(&dir.join("out")).unwrap();
        assert_eq!(json, dir.join("out/report.json"));
        let html = std::fs::read_to_string(dir.join("out/report.html")).unwrap();
        assert!(html.contains("<svg") && !html.contains("<script"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn overlapping_fault_windows_count_once() {
        assert_eq!(
            union_length(&[(0.0, 10.0), (5.0, 20.0), (30.0, 31.0)]),
            21.0
        );
        assert_eq!(union_length(&[(0.0, 10.0), (2.0, 3.0)]), 10.0);
        assert_eq!(union_length(&[]), 0.0);
    }
}
