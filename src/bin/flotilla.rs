//! `flotilla --config FILE`: runs one proxy node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use flotilla_config::{Config, Overrides};

/// A Kafka-protocol proxy node. Flags override the config file.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML config file (see config/examples/node.toml).
    #[arg(long, short)]
    config: PathBuf,
    /// node.id
    #[arg(long)]
    node_id: Option<u64>,
    /// node.advertised_host
    #[arg(long)]
    advertised_host: Option<String>,
    /// node.listen_host
    #[arg(long)]
    listen_host: Option<String>,
    /// node.bootstrap_port
    #[arg(long)]
    bootstrap_port: Option<u16>,
    /// node.identity_port_base
    #[arg(long)]
    identity_port_base: Option<u16>,
    /// node.admin_listen
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// backend.bootstrap_servers, comma-separated host:port list
    #[arg(long, value_delimiter = ',')]
    backend: Option<Vec<String>>,
    /// log.filter (RUST_LOG still wins)
    #[arg(long)]
    log_filter: Option<String>,
    /// cluster.zone
    #[arg(long)]
    zone: Option<String>,
    /// cluster.seeds, comma-separated host:port list
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<String>>,
    /// cluster.data_dir
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Args {
    fn overrides(&self) -> Overrides {
        Overrides {
            node_id: self.node_id,
            advertised_host: self.advertised_host.clone(),
            listen_host: self.listen_host.clone(),
            bootstrap_port: self.bootstrap_port,
            identity_port_base: self.identity_port_base,
            admin_listen: self.admin_listen,
            bootstrap_servers: self.backend.clone(),
            log_filter: self.log_filter.clone(),
            zone: self.zone.clone(),
            seeds: self.seeds.clone(),
            data_dir: self.data_dir.clone(),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args.config, &args.overrides()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("flotilla: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = flotilla::logging::init(&config.log) {
        eprintln!("flotilla: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flotilla: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(flotilla::node::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("flotilla: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
