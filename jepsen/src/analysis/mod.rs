//! From a recorded history to a verdict, with no Kafka, network or processes involved:
//! the history format (`history`), the safety checks (`checker`), what the faults cost
//! (`liveness`) and the report (`report`, drawn by `html`). Pure functions of the
//! history, so any history can be checked again later (`jepsen-check HISTORY`) and every
//! check is tested on hand-made ones.

pub mod campaign;
pub mod checker;
pub mod history;
mod html;
pub mod liveness;
pub mod report;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use report::Report;

/// Checks the history at `path` and writes `report.json` and `report.html` into `out`;
/// returns the report and the path of `report.json`.
pub fn analyze(
    path: &Path,
    out: &Path,
    seed: u64,
    config: Value,
) -> anyhow::Result<(Report, PathBuf)> {
    let history = history::read_history(path)?;
    let check = checker::check(&history);
    let liveness = liveness::measure(&history);
    let report = Report::build(&history, check, liveness, seed, config);
    let json = report.write(out)?;
    Ok((report, json))
}
