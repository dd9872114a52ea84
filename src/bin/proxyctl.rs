//! `proxyctl`: the operator CLI. Talks to any node's admin API; every answer is the fleet
//! as that node sees it, and writes are forwarded by the node to the Raft leader.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use flotilla::api::{
    ApiError, ClusterStatus, Drained, IdentitySummary, Mode, RaftMemberSummary, Removed,
};
use serde::de::DeserializeOwned;

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
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    Status,
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
    let out = render(cli)?;
    // A closed pipe (`proxyctl ... | head`) is the reader's choice, not an error.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn render(cli: &Cli) -> Result<String, String> {
    let api = Api::new(&cli.endpoint);
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
            let answer: Drained = api.post(&format!("/api/v1/nodes/{id}/drain"))?;
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

struct Api {
    endpoint: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(endpoint: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build();
        Api {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            agent: config.into(),
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.endpoint);
        Self::answer(&url, self.agent.get(&url).call())
    }

    fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.endpoint);
        Self::answer(&url, self.agent.post(&url).send_empty())
    }

    fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.endpoint);
        Self::answer(&url, self.agent.delete(&url).call())
    }

    fn answer<T: DeserializeOwned>(
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, String> {
        let mut response = result.map_err(|e| format!("cannot reach {url}: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(match response.body_mut().read_json::<ApiError>() {
                Ok(body) => body.error,
                Err(_) => format!("{url} answered {status}"),
            });
        }
        response
            .body_mut()
            .read_json()
            .map_err(|e| format!("unexpected answer from {url}: {e}"))
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("serializable") + "\n"
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
    let rows = identities.iter().map(|i| {
        vec![
            i.id.to_string(),
            i.slot.to_string(),
            i.owner.map_or("-".into(), |o| o.to_string()),
            i.address.clone(),
            i.broker.clone(),
        ]
    });
    table(
        &["IDENTITY", "SLOT", "OWNER", "ADVERTISED", "BROKER"],
        rows.collect(),
    )
}

fn join<T: ToString>(ids: &[T]) -> String {
    if ids.is_empty() {
        return "-".into();
    }
    ids.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in &rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}
