//! The fleet under test: one flotilla process per network namespace, started, killed,
//! paused and restarted with real signals, and observed through its admin API like an
//! operator would.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use flotilla::api::ClusterStatus;
use serde::de::DeserializeOwned;

use crate::net::Host;

pub const BOOTSTRAP_PORT: u16 = 9192;
pub const IDENTITY_PORT_BASE: u16 = 9200;
pub const ADMIN_PORT: u16 = 9644;

pub struct Node {
    pub id: u8,
    config: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

pub struct Fleet {
    pub nodes: Vec<Node>,
    binary: PathBuf,
    http: ureq::Agent,
}

/// How the fleet is set up.
pub struct FleetConfig<'a> {
    pub nodes: u8,
    pub binary: &'a Path,
    pub dir: &'a Path,
    pub kafka: &'a str,
    pub takeover_after: &'a str,
}

impl Fleet {
    /// Writes every node's config and starts the nodes; waits until the fleet is healthy.
    pub fn start(config: &FleetConfig) -> anyhow::Result<Fleet> {
        let mut fleet = Fleet {
            nodes: Vec::new(),
            binary: config.binary.to_path_buf(),
            http: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .into(),
        };
        for id in 1..=config.nodes {
            let dir = config.dir.join(format!("node{id}"));
            fs::create_dir_all(&dir)?;
            let path = dir.join("node.toml");
            fs::write(&path, node_config(id, config, &dir))?;
            fleet.nodes.push(Node {
                id,
                config: path,
                log: dir.join("node.log"),
                process: None,
            });
        }
        for id in 1..=config.nodes {
            fleet.launch(id)?;
        }
        fleet.wait_healthy(Duration::from_secs(90))?;
        Ok(fleet)
    }

    fn node(&mut self, id: u8) -> &mut Node {
        &mut self.nodes[usize::from(id) - 1]
    }

    fn launch(&mut self, id: u8) -> anyhow::Result<()> {
        let binary = self.binary.clone();
        let node = self.node(id);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Host::Node(id)
            .command(&binary.display().to_string())
            .arg("--config")
            .arg(&node.config)
            .env("RUST_LOG", "info,openraft=warn,openraft::replication=off")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start node {id} ({})", binary.display()))?;
        node.process = Some(child);
        Ok(())
    }

    pub fn is_running(&mut self, id: u8) -> bool {
        let node = self.node(id);
        node.process
            .as_mut()
            .is_some_and(|p| p.try_wait().ok().flatten().is_none())
    }

    /// SIGKILL; the node stays down until [`Fleet::restart`].
    pub fn kill(&mut self, id: u8) -> anyhow::Result<()> {
        if let Some(mut process) = self.node(id).process.take() {
            signal(&process, "KILL")?;
            process.wait()?;
        }
        Ok(())
    }

    /// Starts a killed node again with its data directory.
    pub fn restart(&mut self, id: u8) -> anyhow::Result<()> {
        if self.is_running(id) {
            return Ok(());
        }
        self.launch(id)
    }

    pub fn pause(&mut self, id: u8) -> anyhow::Result<()> {
        self.signal(id, "STOP")
    }

    pub fn resume(&mut self, id: u8) -> anyhow::Result<()> {
        self.signal(id, "CONT")
    }

    fn signal(&mut self, id: u8, name: &str) -> anyhow::Result<()> {
        match &self.node(id).process {
            Some(process) => signal(process, name),
            None => Ok(()),
        }
    }

    /// `GET /api/v1/cluster` on node `id`, if it answers.
    pub fn status(&self, id: u8) -> Option<ClusterStatus> {
        self.get_json(id, "/api/v1/cluster")
    }

    fn get_json<T: DeserializeOwned>(&self, id: u8, path: &str) -> Option<T> {
        let url = format!("http://{}:{ADMIN_PORT}{path}", Host::Node(id).address());
        let mut response = self.http.get(&url).call().ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.body_mut().read_json().ok()
    }

    fn ready(&self, id: u8) -> bool {
        let url = format!("http://{}:{ADMIN_PORT}/readyz", Host::Node(id).address());
        self.http
            .get(&url)
            .call()
            .is_ok_and(|r| r.status().is_success())
    }

    /// The first status any node gives.
    pub fn any_status(&self) -> Option<ClusterStatus> {
        self.nodes.iter().find_map(|n| self.status(n.id))
    }

    /// The Raft leader, as the first answering node reports it.
    pub fn leader(&self) -> Option<u8> {
        let leader = self.any_status()?.leader?;
        u8::try_from(leader).ok()
    }

    /// The owner of `identity` in the committed table, as the first answering node reports.
    pub fn owner_of(&self, identity: i32) -> Option<u8> {
        let owner = self.any_status()?.identity(identity)?.owner?;
        u8::try_from(owner).ok()
    }

    /// The identity that moved the most bytes over all nodes, from their metrics.
    pub fn busiest_identity(&self) -> Option<i32> {
        let mut bytes: std::collections::BTreeMap<i32, f64> = Default::default();
        for node in &self.nodes {
            let url = format!(
                "http://{}:{ADMIN_PORT}/metrics",
                Host::Node(node.id).address()
            );
            let Ok(mut response) = self.http.get(&url).call() else {
                continue;
            };
            let text = response.body_mut().read_to_string().unwrap_or_default();
            for (identity, value) in text.lines().filter_map(identity_bytes) {
                *bytes.entry(identity).or_default() += value;
            }
        }
        bytes
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(identity, _)| identity)
    }

    /// Every node runs, is ready, and agrees on a committed table with live owners.
    pub fn healthy(&mut self) -> bool {
        let ids: Vec<u8> = self.nodes.iter().map(|n| n.id).collect();
        ids.iter().all(|&id| self.is_running(id) && self.ready(id))
            && ids.iter().all(|&id| {
                self.status(id).is_some_and(|s| {
                    !s.degraded
                        && s.leader.is_some()
                        && s.nodes.iter().filter(|n| n.alive).count() >= ids.len()
                })
            })
    }

    pub fn wait_healthy(&mut self, deadline: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while !self.healthy() {
            if start.elapsed() > deadline {
                bail!("the fleet is not healthy after {deadline:?}; see the node logs");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Every node's bootstrap address, for client configs.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}:{BOOTSTRAP_PORT}", Host::Node(n.id).address()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                let _ = signal(&process, "CONT");
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
}

/// `flotilla_bytes_total{direction="...",identity="3"} 1234` -> (3, 1234.0).
fn identity_bytes(line: &str) -> Option<(i32, f64)> {
    let rest = line.strip_prefix("flotilla_bytes_total{")?;
    let identity = rest
        .split("identity=\"")
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()?;
    let value = line.rsplit(' ').next()?.parse().ok()?;
    Some((identity, value))
}

fn signal(process: &Child, name: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(process.id().to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{name} {} failed", process.id());
    }
    Ok(())
}

fn node_config(id: u8, config: &FleetConfig, dir: &Path) -> String {
    let host = Host::Node(id).address();
    let seeds: Vec<String> = (1..=config.nodes)
        .filter(|&n| n != id)
        .map(|n| format!("\"{}:7946\"", Host::Node(n).address()))
        .collect();
    let members: Vec<String> = (1..=config.nodes.min(3)).map(|n| n.to_string()).collect();
    let servers: Vec<String> = config
        .kafka
        .split(',')
        .map(|s| format!("\"{s}\""))
        .collect();
    format!(
        "[node]\nid = {id}\nadvertised_host = \"{host}\"\nbootstrap_port = {BOOTSTRAP_PORT}\n\
         identity_port_base = {IDENTITY_PORT_BASE}\nadmin_listen = \"{host}:{ADMIN_PORT}\"\n\n\
         [backend]\nbootstrap_servers = [{}]\n\n\
         [cluster]\nid = \"chaos\"\nzone = \"zone-{}\"\ngossip_listen = \"{host}:7946\"\n\
         seeds = [{}]\nraft_listen = \"{host}:7947\"\ndata_dir = \"{}\"\n\
         initial_members = [{}]\ntakeover_after = \"{}\"\n",
        servers.join(", "),
        (id - 1) % 3 + 1,
        seeds.join(", "),
        dir.join("data").display(),
        members.join(", "),
        config.takeover_after,
    )
}
