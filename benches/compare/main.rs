//! What a flotilla node costs a Kafka client, measured against the alternatives in one run:
//! direct to the Kafka cluster (the floor), one flotilla node, a 3-node fleet, and
//! Kroxylicious with port-per-broker mapping and no filters.
//!
//! Machines drift (page cache, CPU frequency, a neighbour's load), so the targets are not
//! measured one after the other but interleaved: every round runs each workload against
//! every target, in an order that rotates from round to round. Every figure is then given
//! as a ratio to direct Kafka and to Kroxylicious computed within a round, so drift that
//! hits a round hits both sides of its ratios.
//!
//! Run it with `scripts/bench.sh [--quick] [--rounds N] [--targets ...] [--workloads ...]`;
//! the last line printed is the path of `bench.json`, with `bench.md` beside it.

mod kafka;
mod proc_stats;
mod report;
mod targets;
#[allow(dead_code)]
#[path = "../../tests/support/wire.rs"]
mod wire;
mod workloads;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use crate::report::Sample;
use crate::targets::{Target, TargetKind};
use crate::workloads::{Sizes, Workload};

#[derive(Parser, Debug)]
#[command(about = "flotilla against direct Kafka and Kroxylicious, interleaved round by round")]
struct Args {
    /// About two minutes: one round with small workloads, for development.
    #[arg(long)]
    quick: bool,
    /// Rounds of every workload against every target (default 5, or 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Targets to measure, comma-separated: direct, node, fleet, kroxylicious, direct-tls,
    /// node-tls.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,node,fleet,kroxylicious"
    )]
    targets: Vec<TargetKind>,
    /// Workloads, comma-separated: produce-1k, produce-100, consume, latency, idle.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "produce-1k,produce-100,consume,latency,idle"
    )]
    workloads: Vec<Workload>,
    /// An earlier flotilla binary, measured as one more target (`baseline`) so what an
    /// optimization gained is measured in the same run.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Directory for bench.json and bench.md (default target/bench/<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sizes = if args.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 5 });
    let out = args.out.clone().unwrap_or_else(default_out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let started = Instant::now();
    let kafka = kafka::Kafka::up()?;
    let targets = targets::start_all(&args.targets, args.baseline.as_deref(), &kafka, &out)?;
    workloads::prepare(&kafka, &sizes, &args.workloads)?;
    warm_up(&kafka, &targets, &sizes)?;

    let mut samples = Vec::new();
    for round in 0..rounds {
        for &workload in &args.workloads {
            for target in rotated(&targets, round) {
                eprintln!(
                    "bench: round {}/{rounds}: {workload} via {}",
                    round + 1,
                    target.kind
                );
                let figures = workloads::run(workload, &kafka, target, &sizes, round)
                    .with_context(|| {
                        format!("{workload} via {} in round {}", target.kind, round + 1)
                    })?;
                samples.extend(figures.into_iter().map(|(metric, value)| Sample {
                    round,
                    workload,
                    target: target.kind,
                    metric,
                    value,
                }));
            }
        }
    }
    drop(targets);

    let config = serde_json::json!({
        "quick": args.quick,
        "rounds": rounds,
        "sizes": sizes,
        "kafka": kafka.describe(),
        "kroxylicious_version": targets::kroxylicious_version(),
        "baseline": args.baseline,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "seconds": started.elapsed().as_secs(),
    });
    let json = report::write(&out, &config, &samples)?;
    println!("{}", json.display());
    Ok(())
}

/// Each round starts with the next target, so no target always runs first (cold caches)
/// or last (a warm machine).
fn rotated(targets: &[Target], round: usize) -> impl Iterator<Item = &Target> {
    let n = targets.len();
    (0..n).map(move |i| &targets[(i + round) % n])
}

/// A short produce and consume through every target before measuring, so no target pays
/// for first connections, topic metadata or (Kroxylicious) a cold JIT in round 1.
fn warm_up(kafka: &kafka::Kafka, targets: &[Target], sizes: &Sizes) -> anyhow::Result<()> {
    for target in targets {
        eprintln!("bench: warming up {}", target.kind);
        workloads::warm_up(kafka, target, sizes)
            .with_context(|| format!("warming up {}", target.kind))?;
    }
    Ok(())
}

fn default_out() -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench")
        .join(now.to_string())
}
