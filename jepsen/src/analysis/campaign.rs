//! A campaign: several chaos runs on consecutive seeds, summarised in one table. One run
//! shows a handful of faults; how long clients wait after a kind of fault is only known
//! over many, so the campaign pools every run's faults by kind and client library and
//! gives the median and maximum time until each library was acknowledged again, next to
//! every run's verdict and the anomalies found (expected: none).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::checker::Anomaly;
use super::liveness::Liveness;
use super::report::Report;

#[derive(Debug, Default)]
pub struct Campaign {
    runs: Vec<RunLine>,
    /// By (fault kind, library): each fault's time until acknowledged again, `None` when
    /// some partition never was.
    recoveries: BTreeMap<(String, String), Vec<Option<f64>>>,
    anomalies: BTreeMap<Anomaly, usize>,
}

#[derive(Debug)]
struct RunLine {
    seed: u64,
    valid: bool,
    faults: usize,
    acknowledged: usize,
    /// Per library: the longest time one partition went without an acknowledgement.
    longest_ack_gap_ms: BTreeMap<String, f64>,
}

impl Campaign {
    pub fn add(&mut self, report: &Report) {
        self.add_run(
            report.seed,
            report.valid,
            report.acknowledged_writes,
            &report.anomaly_counts,
            &report.liveness,
        );
    }

    fn add_run(
        &mut self,
        seed: u64,
        valid: bool,
        acknowledged: usize,
        anomalies: &BTreeMap<Anomaly, usize>,
        liveness: &Liveness,
    ) {
        for fault in &liveness.faults {
            for (library, again) in &fault.acked_again_ms {
                self.recoveries
                    .entry((fault.fault.clone(), library.clone()))
                    .or_default()
                    .push(*again);
            }
        }
        for (anomaly, count) in anomalies {
            *self.anomalies.entry(*anomaly).or_default() += count;
        }
        self.runs.push(RunLine {
            seed,
            valid,
            faults: liveness.faults.len(),
            acknowledged,
            longest_ack_gap_ms: liveness
                .libraries
                .iter()
                .map(|(library, figures)| (library.clone(), figures.longest_ack_gap.ms))
                .collect(),
        });
    }

    pub fn all_valid(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(|r| r.valid)
    }

    /// The campaign as Markdown: the summary line, recovery by fault kind and library,
    /// anomalies, and one line per run.
    pub fn render(&self) -> String {
        let mut out = format!("{}\n\n", self.summary_line());
        out += "| fault | library | faults | acknowledged again: median | max | never |\n";
        out += "|---|---|---|---|---|---|\n";
        for ((fault, library), times) in &self.recoveries {
            let mut recovered: Vec<f64> = times.iter().flatten().copied().collect();
            recovered.sort_by(f64::total_cmp);
            let never = times.len() - recovered.len();
            let _ = writeln!(
                out,
                "| {fault} | {library} | {} | {} | {} | {never} |",
                times.len(),
                seconds(median(&recovered)),
                seconds(recovered.last().copied()),
            );
        }
        out += "\n| anomaly | count |\n|---|---|\n";
        for (anomaly, count) in &self.anomalies {
            let _ = writeln!(out, "| {anomaly:?} | {count} |");
        }
        out += "\n| seed | verdict | faults | acknowledged writes | longest ack gap |\n";
        out += "|---|---|---|---|---|\n";
        for run in &self.runs {
            let gaps: Vec<String> = run
                .longest_ack_gap_ms
                .iter()
                .map(|(library, ms)| format!("{library} {}", seconds(Some(*ms))))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                run.seed,
                if run.valid { "valid" } else { "INVALID" },
                run.faults,
                run.acknowledged,
                gaps.join(", ")
            );
        }
        out
    }

    pub fn summary_line(&self) -> String {
        let valid = self.runs.iter().filter(|r| r.valid).count();
        let found: usize = self.anomalies.values().sum();
        let seeds = match (self.runs.first(), self.runs.last()) {
            (Some(first), Some(last)) => format!("seeds {} to {}", first.seed, last.seed),
            _ => "no runs".into(),
        };
        format!(
            "campaign: {valid} of {} runs valid ({seeds}), {found} anomalies",
            self.runs.len()
        )
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn seconds(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("{:.1} s", ms / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::liveness::{FaultFigures, LibraryFigures};

    fn liveness(faults: &[(&str, Option<f64>)]) -> Liveness {
        Liveness {
            processes: Vec::new(),
            libraries: BTreeMap::from([("rdkafka".to_string(), LibraryFigures::default())]),
            faults: faults
                .iter()
                .map(|(kind, again)| FaultFigures {
                    fault: kind.to_string(),
                    nodes: vec![1],
                    start_ms: 0.0,
                    end_ms: None,
                    first_ok_after_ms: BTreeMap::new(),
                    acked_again_ms: BTreeMap::from([("rdkafka".to_string(), *again)]),
                })
                .collect(),
            throughput: BTreeMap::new(),
            latencies: Vec::new(),
        }
    }

    #[test]
    fn faults_pool_over_runs_by_kind_and_library() {
        let mut campaign = Campaign::default();
        let none = BTreeMap::new();
        let first = liveness(&[("kill", Some(1000.0)), ("pause", Some(500.0))]);
        campaign.add_run(1, true, 10, &none, &first);
        let lost = BTreeMap::from([(Anomaly::Lost, 2)]);
        let second = liveness(&[("kill", Some(3000.0)), ("kill", None)]);
        campaign.add_run(2, false, 10, &lost, &second);
        let table = campaign.render();
        assert!(
            table.contains("| kill | rdkafka | 3 | 2.0 s | 3.0 s | 1 |"),
            "{table}"
        );
        assert!(
            table.contains("| pause | rdkafka | 1 | 0.5 s | 0.5 s | 0 |"),
            "{table}"
        );
        assert!(table.contains("| Lost | 2 |"), "{table}");
        assert!(!campaign.all_valid());
        assert_eq!(
            campaign.summary_line(),
            "campaign: 1 of 2 runs valid (seeds 1 to 2), 2 anomalies"
        );
    }
}
