//! The chaos harness: proves that killing, pausing and cutting off flotilla nodes while
//! real clients produce and consume loses nothing that was acknowledged.
//!
//! - `net`: network namespaces per node, partitions and slow links;
//! - `fleet`: the flotilla processes under test;
//! - `nemesis`: the faults and their seeded schedule;
//! - `workload`: the client processes (librdkafka, Java) and their history lines;
//! - `runner`: one run from set-up to merged history.

pub mod analysis;
pub mod fleet;
pub mod nemesis;
pub mod net;
pub mod runner;
pub mod workload;

use std::path::Path;

/// The repository the harness runs from (scripts, the Java client's source).
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}
