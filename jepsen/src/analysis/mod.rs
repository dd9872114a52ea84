//! From a recorded history to a verdict: the safety checks (`anomalies`), what the faults
//! cost (`liveness`) and the report. Pure functions of the history, so a history can be
//! re-checked later (`chaos check HISTORY`) and every check is tested on hand-made ones.

pub mod anomalies;
pub mod history;
pub mod html;
pub mod liveness;
pub mod report;

use std::path::Path;

use serde_json::Value;

pub use report::Report;

/// Checks the history at `path` and writes the report next to `out`; returns the report
/// and the path of `report.json`.
pub fn analyze(
    path: &Path,
    out: &Path,
    seed: u64,
    config: Value,
) -> anyhow::Result<(Report, std::path::PathBuf)> {
    let history = history::read(path)?;
    let anomalies = anomalies::check(&history);
    let liveness = liveness::measure(&history);
    let report = Report::build(&history, anomalies, liveness, seed, config);
    let json = report.write(out)?;
    Ok((report, json))
}
