//! `chaos`: runs the chaos harness (`chaos run ...`, what `scripts/chaos.sh` calls), or one
//! of its librdkafka clients (`chaos client ROLE ...`, started by the harness itself
//! inside the clients' network namespace).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
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
    /// One chaos run; prints a summary line and, last, the path of report.json.
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
        Command::Check { history, seed } => verdict(&history, seed, serde_json::json!({})),
        Command::Run {
            time,
            seed,
            nodes,
            nemesis: names,
            out,
            flotilla,
            no_java,
        } => {
            let seed = seed.unwrap_or_else(|| workload::record::unix_ms() as u64 % 1_000_000);
            let config = match nemesis::parse(&names) {
                Ok(nemeses) => RunConfig {
                    time: Duration::from_secs(time),
                    seed,
                    nodes,
                    nemeses,
                    out: out.unwrap_or_else(|| PathBuf::from(format!("target/chaos/run-{seed}"))),
                    flotilla,
                    java: !no_java,
                },
                Err(e) => {
                    eprintln!("chaos: {e}");
                    return ExitCode::from(2);
                }
            };
            let described = serde_json::json!({
                "time_s": time,
                "nodes": nodes,
                "nemeses": config.nemeses,
                "java": config.java,
                "flotilla": config.flotilla,
            });
            match runner::run(&config) {
                Ok(outcome) => {
                    eprintln!(
                        "chaos: {} faults; history in {}",
                        outcome.faults,
                        outcome.history.display()
                    );
                    verdict(&outcome.history, seed, described)
                }
                Err(e) => {
                    eprintln!("chaos: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Checks the history, writes the report next to it, prints the summary line and, last,
/// the path of report.json; success only for a valid history.
fn verdict(history: &std::path::Path, seed: u64, config: serde_json::Value) -> ExitCode {
    let dir = history.parent().unwrap_or(std::path::Path::new("."));
    match analysis::analyze(history, dir, seed, config) {
        Ok((report, json)) => {
            println!("{}", report.summary_line());
            println!("{}", json.display());
            if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("chaos: checking {}: {e:#}", history.display());
            ExitCode::FAILURE
        }
    }
}
