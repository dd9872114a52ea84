//! Turns the samples of every round into `bench.json` (every sample plus the summary) and
//! `bench.md` (one table): each figure's min, median and max over the rounds, and its
//! ratio to direct Kafka and to Kroxylicious, paired within each round.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::targets::TargetKind;
use crate::workloads::Workload;

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub round: usize,
    pub workload: Workload,
    pub target: TargetKind,
    pub metric: &'static str,
    pub value: f64,
}

/// Min, median and max over rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Spread> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Spread {
            min: values[0],
            median,
            max: values[n - 1],
        })
    }

    fn cell(spread: Option<Spread>, digits: usize) -> String {
        match spread {
            None => "–".to_string(),
            Some(s) if s.min == s.max => format!("{:.digits$}", s.median),
            Some(s) => format!(
                "{:.digits$} ({:.digits$}–{:.digits$})",
                s.median, s.min, s.max
            ),
        }
    }
}

#[derive(Debug, Serialize)]
struct Row {
    workload: Workload,
    metric: &'static str,
    target: TargetKind,
    value: Option<Spread>,
    vs_direct: Option<Spread>,
    vs_kroxylicious: Option<Spread>,
    /// Only with `--baseline`: this figure over the earlier build's.
    vs_baseline: Option<Spread>,
    /// Only for TLS targets: this figure over the same target's without TLS.
    vs_plaintext: Option<Spread>,
    /// For latencies: milliseconds added over direct Kafka, paired by round.
    added_over_direct_ms: Option<Spread>,
}

type Key = (Workload, &'static str);

pub fn write(
    out: &Path,
    config: &serde_json::Value,
    samples: &[Sample],
) -> anyhow::Result<PathBuf> {
    let rows = summarise(samples);
    let json = out.join("bench.json");
    let document = serde_json::json!({ "config": config, "summary": rows, "samples": samples });
    std::fs::write(&json, serde_json::to_string_pretty(&document)?)?;
    let markdown = markdown(config, &rows);
    std::fs::write(out.join("bench.md"), &markdown)?;
    eprintln!("{markdown}");
    Ok(json)
}

fn summarise(samples: &[Sample]) -> Vec<Row> {
    // (workload, metric) -> target -> round -> value
    let mut by_key: BTreeMap<Key, BTreeMap<TargetKind, BTreeMap<usize, f64>>> = BTreeMap::new();
    for s in samples {
        by_key
            .entry((s.workload, s.metric))
            .or_default()
            .entry(s.target)
            .or_default()
            .insert(s.round, s.value);
    }
    let mut rows = Vec::new();
    for ((workload, metric), targets) in &by_key {
        let paired = |target: &BTreeMap<usize, f64>, base: TargetKind, f: fn(f64, f64) -> f64| {
            let base = targets.get(&base)?;
            let values = target
                .iter()
                .filter_map(|(round, v)| base.get(round).map(|b| f(*v, *b)))
                .collect();
            Spread::of(values)
        };
        for (&target, values) in targets {
            rows.push(Row {
                workload: *workload,
                metric,
                target,
                value: Spread::of(values.values().copied().collect()),
                vs_direct: paired(values, target.direct_reference(), |v, b| v / b),
                vs_plaintext: target
                    .without_tls()
                    .and_then(|plain| paired(values, plain, |v, b| v / b)),
                vs_kroxylicious: paired(values, TargetKind::Kroxylicious, |v, b| v / b),
                vs_baseline: paired(values, TargetKind::Baseline, |v, b| v / b),
                added_over_direct_ms: metric
                    .ends_with("_ms")
                    .then(|| paired(values, target.direct_reference(), |v, b| v - b))
                    .flatten(),
            });
        }
    }
    rows
}

fn markdown(config: &serde_json::Value, rows: &[Row]) -> String {
    let with_baseline = rows.iter().any(|r| r.vs_baseline.is_some());
    let with_tls = rows.iter().any(|r| r.vs_plaintext.is_some());
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Rounds: {}, Kroxylicious {}, {} CPUs, {} s. Each cell: median (min–max) over rounds; \
         ratios are paired within a round; a TLS target's \"direct\" is direct Kafka over TLS.\n",
        config["rounds"],
        config["kroxylicious_version"].as_str().unwrap_or("?"),
        config["cpus"],
        config["seconds"]
    );
    md.push_str(
        "| workload | figure | target | value | ÷ direct | ÷ Kroxylicious | + over direct (ms) |",
    );
    if with_baseline {
        md.push_str(" ÷ baseline |");
    }
    if with_tls {
        md.push_str(" ÷ without TLS |");
    }
    md.push_str("\n|---|---|---|---|---|---|---|");
    md.push_str(&"---|".repeat(usize::from(with_baseline) + usize::from(with_tls)));
    md.push('\n');
    for row in rows {
        // A target is never compared with itself.
        let against = |spread: Option<Spread>, reference: TargetKind| {
            Spread::cell(spread.filter(|_| row.target != reference), 3)
        };
        let _ = write!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.workload,
            row.metric,
            row.target,
            Spread::cell(row.value, 2),
            against(row.vs_direct, TargetKind::Direct),
            against(row.vs_kroxylicious, TargetKind::Kroxylicious),
            against(row.added_over_direct_ms, TargetKind::Direct),
        );
        if with_baseline {
            let _ = write!(md, " {} |", against(row.vs_baseline, TargetKind::Baseline));
        }
        if with_tls {
            let _ = write!(md, " {} |", Spread::cell(row.vs_plaintext, 3));
        }
        md.push('\n');
    }
    md
}
