//! The chaos harness: proves that killing, pausing and cutting off flotilla nodes while
//! real clients produce and consume loses nothing that was acknowledged.
//!
//! - `net`: network namespaces per node, partitions and slow links;
//! - `fleet`: the flotilla processes under test;
//! - `nemesis`: the faults and their seeded schedule;
//! - `workload`: the client processes (librdkafka, Java) and their history lines;
//! - `runner`: one run from set-up to merged history;
//! - `analysis`: the pure half, from a history to a verdict and a report. Its API:
//!   - [`history`]: [`Event`] (one JSON line: `time_ms`, `process`, `client`, `kind`,
//!     `type` and the kind's fields), [`read_history`], and [`HistoryWriter`] to append
//!     events from many threads;
//!   - [`checker::check`]`(&[Event]) -> CheckResult`: every safety anomaly, counted, with
//!     examples; valid iff none but explained duplicates;
//!   - [`liveness::measure`]`(&[Event]) -> Liveness`: gaps, recovery after each fault,
//!     throughput and latency;
//!   - [`Report::build`]`(history, check, liveness, seed, config)`, then
//!     [`Report::write`]`(dir)` for `report.json` and `report.html`, and
//!     [`Report::summary_line`];
//!   - [`analysis::analyze`] does all of it for a history file (`jepsen-check` is that).

pub mod analysis;
pub mod fleet;
pub mod nemesis;
pub mod net;
pub mod runner;
pub mod workload;

pub use analysis::history::{read_history, Event, HistoryWriter};
pub use analysis::report::Report;
pub use analysis::{checker, history, liveness, report};

use std::path::Path;

/// The repository the harness runs from (scripts, the Java client's source).
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}
