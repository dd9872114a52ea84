//! `proxyctl`: the operator CLI. Talks to any node's admin API.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use flotilla::admin::NodeStatus;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Operate a flotilla fleet through any node's admin API"
)]
struct Cli {
    /// Admin API of any node.
    #[arg(
        long,
        short,
        env = "FLOTILLA_ENDPOINT",
        default_value = "http://127.0.0.1:9644"
    )]
    endpoint: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The node's readiness and the identities it advertises.
    Status,
    /// Identities: id, slot, advertised address, backend broker.
    Identities,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxyctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let status: NodeStatus = get(&cli.endpoint, "/api/v1/status")?;
    if cli.output == Output::Json {
        let json = match cli.command {
            Command::Status => serde_json::to_string_pretty(&status),
            Command::Identities => serde_json::to_string_pretty(&status.identities),
        };
        println!("{}", json.map_err(|e| e.to_string())?);
        return Ok(());
    }
    if let Command::Status = cli.command {
        println!(
            "node {}  bootstrap {}  {}",
            status.node_id,
            status.bootstrap,
            status
                .not_ready_reason
                .as_deref()
                .map_or("ready".to_string(), |r| format!("not ready: {r}"))
        );
        println!();
    }
    println!(
        "{:<10} {:<6} {:<24} BROKER",
        "IDENTITY", "SLOT", "ADVERTISED"
    );
    for identity in &status.identities {
        println!(
            "{:<10} {:<6} {:<24} {}",
            identity.id, identity.slot, identity.address, identity.broker
        );
    }
    Ok(())
}

fn get<T: serde::de::DeserializeOwned>(endpoint: &str, path: &str) -> Result<T, String> {
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    ureq::get(&url)
        .call()
        .map_err(|e| format!("cannot reach {url}: {e}"))?
        .body_mut()
        .read_json()
        .map_err(|e| format!("unexpected answer from {url}: {e}"))
}
