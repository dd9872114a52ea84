//! `jepsen-check HISTORY.jsonl --out DIR [--seed N]`: checks a recorded history again and
//! writes its report, so a run's verdict can be reproduced, or a checker fix applied to old
//! runs, without running anything. Prints the summary line and, last, the path of
//! report.json; exits 0 only for a valid history (1 invalid, 2 unreadable).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use flotilla_jepsen::analysis;

#[derive(Parser)]
#[command(about = "Checks a chaos history for lost, duplicated and misordered records")]
struct Cli {
    /// The merged JSON-lines history of a run.
    history: PathBuf,
    /// Where report.json and report.html go (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// The seed the run used, recorded in the report.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = serde_json::json!({ "history": cli.history });
    match analysis::analyze(&cli.history, &cli.out, cli.seed, config) {
        Ok((report, json)) => {
            println!("{}", report.summary_line());
            println!("{}", json.display());
            if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("jepsen-check: {e:#}");
            ExitCode::from(2)
        }
    }
}
