//! `proxyctl`: the operator CLI. Talks to any node's admin API; every answer is the fleet
//! as that node sees it, and writes are forwarded by the node to the Raft leader.

mod acls;
mod breakers;
mod client;
mod groups;
mod output;
mod quotas;
mod routes;
mod tokens;
mod traffic;
mod users;
mod zones;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flotilla::api::{ClusterStatus, Drained, IdentitySummary, Mode, RaftMemberSummary, Removed};

use client::{Access, Api};
use output::{join, json, table, Output};

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
    /// Bearer token for an admin API that asks for credentials.
    #[arg(long, env = "FLOTILLA_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// CA certificates (PEM) of an HTTPS endpoint; the system's roots by default.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for an HTTPS endpoint with a client CA (with --key).
    #[arg(long, global = true, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, global = true, requires = "cert")]
    key: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The fleet: nodes, liveness, Raft roles and identity owners.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Identities: id, slot, owner, advertised address, backend broker.
    Identities,
    /// Node operations.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// SASL/SCRAM users of the fleet.
    User {
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// Kafka ACLs of the fleet, with kafka-acls' flags.
    Acl {
        #[command(subcommand)]
        command: acls::AclCommand,
    },
    /// Client quotas, fleet-wide, with kafka-configs' entities and config names.
    Quota {
        #[command(subcommand)]
        command: quotas::QuotaCommand,
    },
    /// Bearer tokens of the admin API.
    Token {
        #[command(subcommand)]
        command: tokens::TokenCommand,
    },
    /// Topic circuit breakers and the rules that trip them.
    Breaker {
        #[command(subcommand)]
        command: breakers::BreakerCommand,
    },
    /// Consumer groups: reset their committed offsets while they run.
    Group {
        #[command(subcommand)]
        command: groups::GroupCommand,
    },
    /// The busiest topics and clients of the whole fleet right now (rates per second).
    #[command(alias = "traffic")]
    Top {
        /// Rows per table.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// The client connections of the whole fleet: client id, software, address,
    /// principal, node, and what they do (acks, codecs, idempotence, groups).
    Clients,
    /// Zones: where clients are, for near-source routing.
    Zone {
        #[command(subcommand)]
        command: zones::ZoneCommand,
    },
    /// Routes: which backend cluster serves each topic, consumer group and transactional id.
    Route {
        #[command(subcommand)]
        command: routes::RouteCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    Status,
    /// The backend Kafka clusters behind the fleet: health, brokers and their identities.
    List,
    /// Wait until the fleet is settled: a Raft leader with quorum, every node alive and
    /// serving, every identity owned by a live node and balanced. For scripts (a rolling
    /// restart waits for it between nodes); fails after the timeout with the reason.
    Wait {
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCommand {
    /// Move every identity off node ID (it keeps serving clients that still use it).
    Drain { id: u64 },
    /// Remove dead node ID from the Raft group, so a node with that id and an empty data
    /// directory can join as a new member.
    Remove { id: u64 },
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
    let out = render(cli)?;
    // A closed pipe (`proxyctl ... | head`) is the reader's choice, not an error.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn render(cli: &Cli) -> Result<String, String> {
    let api = Api::new(&Access {
        endpoint: cli.endpoint.clone(),
        token: cli.token.clone(),
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
    })?;
    Ok(match &cli.command {
        Command::Cluster {
            command: ClusterCommand::Status,
        } => {
            let status: ClusterStatus = api.get("/api/v1/cluster")?;
            match cli.output {
                Output::Json => json(&status),
                Output::Table => cluster_table(&status),
            }
        }
        Command::Cluster {
            command: ClusterCommand::List,
        } => routes::clusters(&api, cli.output)?,
        Command::Cluster {
            command: ClusterCommand::Wait { timeout },
        } => {
            let status = wait_settled(&api, *timeout)?;
            match cli.output {
                Output::Json => json(&status),
                Output::Table => "the fleet is settled\n".into(),
            }
        }
        Command::Identities => {
            let identities: Vec<IdentitySummary> = api.get("/api/v1/identities")?;
            match cli.output {
                Output::Json => json(&identities),
                Output::Table => identity_table(&identities),
            }
        }
        Command::Node {
            command: NodeCommand::Drain { id },
        } => {
            let answer: Drained = api.post(&format!("/api/v1/nodes/{id}/drain"), None::<&()>)?;
            match cli.output {
                Output::Json => json(&answer),
                Output::Table => format!("node {id} is draining\n"),
            }
        }
        Command::Node {
            command: NodeCommand::Remove { id },
        } => {
            let answer: Removed = api.delete(&format!("/api/v1/nodes/{id}"))?;
            match cli.output {
                Output::Json => json(&answer),
                Output::Table => format!("node {id} is removed from the Raft group\n"),
            }
        }
        Command::User { command } => users::run(&api, command, cli.output)?,
        Command::Acl { command } => acls::run(&api, command, cli.output)?,
        Command::Quota { command } => quotas::run(&api, command, cli.output)?,
        Command::Token { command } => tokens::run(&api, command, cli.output)?,
        Command::Breaker { command } => breakers::run(&api, command, cli.output)?,
        Command::Group { command } => groups::run(&api, command, cli.output)?,
        Command::Top { limit } => traffic::top(&api, *limit, cli.output)?,
        Command::Clients => traffic::clients(&api, cli.output)?,
        Command::Zone { command } => zones::run(&api, command, cli.output)?,
        Command::Route { command } => routes::run(&api, command, cli.output)?,
    })
}

fn wait_settled(api: &Api, timeout: std::time::Duration) -> Result<ClusterStatus, String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let reason = match api.get::<ClusterStatus>("/api/v1/cluster") {
            Ok(status) => match status.unsettled() {
                None => return Ok(status),
                Some(reason) => reason,
            },
            Err(e) => e,
        };
        if std::time::Instant::now() >= deadline {
            return Err(format!("not settled after {timeout:?}: {reason}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn cluster_table(status: &ClusterStatus) -> String {
    let leader = status.leader.map_or("none".to_string(), |l| l.to_string());
    let mut out = format!(
        "mode {}  leader {leader}  term {}  assignment epoch {}  feature level {}{}  \
         (answered by node {})\n",
        status.mode,
        status.term,
        status.assignment_epoch,
        status.feature_level,
        if status.degraded {
            "  DEGRADED: no Raft quorum"
        } else {
            ""
        },
        status.answered_by
    );
    if status.mode == Mode::Fleet {
        let (voters, learners): (Vec<_>, Vec<_>) =
            status.raft_members.iter().partition(|m| m.voter);
        let ids = |members: Vec<&RaftMemberSummary>| {
            join(&members.iter().map(|m| m.id).collect::<Vec<_>>())
        };
        out += &format!("raft voters {}  learners {}\n", ids(voters), ids(learners));
    }
    let rows = status.nodes.iter().map(|n| {
        vec![
            n.id.to_string(),
            n.address.clone(),
            n.zone.clone().unwrap_or_else(|| "-".into()),
            n.state.to_string(),
            if n.alive { "yes" } else { "NO" }.into(),
            n.raft_role.to_string(),
            join(&n.identities),
            n.connections.to_string(),
        ]
    });
    let headers = [
        "NODE",
        "ADDRESS",
        "ZONE",
        "STATE",
        "ALIVE",
        "RAFT",
        "IDENTITIES",
        "CONNECTIONS",
    ];
    out += &table(&headers, rows.collect());
    out += "\n";
    out += &identity_table(&status.identities);
    out
}

fn identity_table(identities: &[IdentitySummary]) -> String {
    let zoned = identities.iter().any(|i| !i.zone_owners.is_empty());
    let clustered = identities
        .iter()
        .any(|i| i.cluster != flotilla_config::DEFAULT_CLUSTER);
    let rows = identities.iter().map(|i| {
        let mut row = vec![
            i.id.to_string(),
            i.slot.to_string(),
            i.owner.map_or("-".into(), |o| o.to_string()),
            i.address.clone(),
            i.broker.clone(),
            i.rack.clone().unwrap_or_else(|| "-".into()),
        ];
        if clustered {
            row.insert(4, i.cluster.clone());
        }
        if zoned {
            let owners: Vec<String> = i
                .zone_owners
                .iter()
                .map(|(zone, node)| format!("{zone}:{node}"))
                .collect();
            row.push(owners.join(" "));
        }
        row
    });
    let mut headers = vec!["IDENTITY", "SLOT", "OWNER", "ADVERTISED", "BROKER", "RACK"];
    if clustered {
        headers.insert(4, "CLUSTER");
    }
    if zoned {
        headers.push("ZONE OWNERS");
    }
    table(&headers, rows.collect())
}
