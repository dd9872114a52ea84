//! `chaos`: runs the chaos harness (`chaos run ...`, what `scripts/chaos.sh` calls), or one
//! of its librdkafka clients (`chaos client ROLE ...`, started by the harness itself
//! inside the clients' network namespace).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use flotilla_jepsen::analysis::campaign::Campaign;
use flotilla_jepsen::analysis::Report;
use flotilla_jepsen::runner::{self, RunConfig};
use flotilla_jepsen::workload::{self, ClientArgs, Role};
use flotilla_jepsen::{analysis, nemesis};

#[derive(Parser)]
#[command(about = "Chaos runs against a flotilla fleet, checked for lost and duplicated records")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One chaos run; prints a summary line and, last, the path of report.json. With
    /// `--runs N`, a campaign of N runs on consecutive seeds, summarised in one table
    /// (campaign.md, printed too); the last line is then its path.
    Run {
        /// Seconds of faults and traffic (recovery and final reads come after).
        #[arg(long, default_value_t = 60)]
        time: u64,
        /// Seed of the fault schedule (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, default_value_t = 3)]
        nodes: u8,
        /// Comma-separated faults, or `all`.
        #[arg(long, default_value = "kill,kill-leader,pause")]
        nemesis: String,
        /// Where the run's files go (default: target/chaos/run-SEED).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The flotilla binary to test.
        #[arg(long, default_value = "target/release/flotilla")]
        flotilla: PathBuf,
        /// Leave the Java clients out (faster start on small machines).
        #[arg(long)]
        no_java: bool,
        /// Runs of the campaign, on seeds SEED, SEED+1, ...
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        runs: u64,
    },
    /// Checks a recorded history again and writes its report next to it.
    Check {
        history: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// One librdkafka client role (used by `run`).
    Client {
        #[arg(value_enum)]
        role: Role,
        #[command(flatten)]
        args: ClientArgs,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Client { role, args } => match workload::run_client(role, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chaos client: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Check { history, seed } => match check(&history, seed, serde_json::json!({})) {
            Some(report) if report.valid => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        },
        Command::Run {
            time,
            seed,
            nodes,
            nemesis: names,
            out,
            flotilla,
            no_java,
            runs,
        } => {
            let nemeses = match nemesis::parse(&names) {
                Ok(nemeses) => nemeses,
                Err(e) => {
                    eprintln!("chaos: {e}");
                    return ExitCode::from(2);
                }
            };
            let seed = seed.unwrap_or_else(|| workload::record::unix_ms() as u64 % 1_000_000);
            let config = |seed: u64, out: PathBuf| RunConfig {
                time: Duration::from_secs(time),
                seed,
                nodes,
                nemeses: nemeses.clone(),
                out,
                flotilla: flotilla.clone(),
                java: !no_java,
            };
            if runs == 1 {
                let out = out.unwrap_or_else(|| PathBuf::from(format!("target/chaos/run-{seed}")));
                return match run_and_check(&config(seed, out)) {
                    Some(report) if report.valid => ExitCode::SUCCESS,
                    _ => ExitCode::FAILURE,
                };
            }
            let dir = out.unwrap_or_else(|| PathBuf::from(format!("target/chaos/campaign-{seed}")));
            let mut campaign = Campaign::default();
            for seed in seed..seed + runs {
                let run = config(seed, dir.join(format!("run-{seed}")));
                if let Some(report) = run_and_check(&run) {
                    campaign.add(&report);
                }
            }
            let table = campaign.render();
            let path = dir.join("campaign.md");
            if let Err(e) = std::fs::write(&path, &table) {
                eprintln!("chaos: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("{table}");
            println!("{}", path.display());
            if campaign.all_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// One run, checked: prints its summary line and, last, the path of its report.json;
/// `None` when the run or its check could not be carried out.
fn run_and_check(config: &RunConfig) -> Option<Report> {
    let described = serde_json::json!({
        "time_s": config.time.as_secs(),
        "nodes": config.nodes,
        "nemeses": config.nemeses,
        "java": config.java,
        "flotilla": config.flotilla,
    });
    match runner::run(config) {
        Ok(outcome) => {
            eprintln!(
                "chaos: {} faults; history in {}",
                outcome.faults,
                outcome.history.display()
            );
            check(&outcome.history, config.seed, described)
        }
        Err(e) => {
            eprintln!("chaos: {e:#}");
            None
        }
    }
}

/// Checks the history, writes the report next to it, prints the summary line and, last,
/// the path of report.json.
fn check(history: &std::path::Path, seed: u64, config: serde_json::Value) -> Option<Report> {
    let dir = history.parent().unwrap_or(std::path::Path::new("."));
    match analysis::analyze(history, dir, seed, config) {
        Ok((report, json)) => {
            println!("{}", report.summary_line());
            println!("{}", json.display());
            Some(report)
        }
        Err(e) => {
            eprintln!("chaos: checking {}: {e:#}", history.display());
            None
        }
    }
}
