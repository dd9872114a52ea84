//! The chaos run's network: every proxy node in its own Linux network namespace, the
//! clients in one more, all joined by a bridge in the root namespace where the Kafka
//! brokers and the harness live. Faults are plain routing and queueing changes inside a
//! namespace, so nothing but `ip` and `tc` from iproute2 is needed:
//!
//! - a partition between two hosts is a pair of blackhole routes, one in each namespace;
//! - a slow link is a `netem` qdisc on the namespace's side of its veth.
//!
//! Addresses: node `i` is 10.77.0.`i`, the clients are 10.77.0.100 and the bridge (Kafka,
//! harness) is 10.77.0.254. Names are prefixed so that a crashed run's leftovers are found
//! and removed by the next one.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context};

const BRIDGE: &str = "flotbr0";
const PREFIX: &str = "flot";
const SUBNET: [u8; 3] = [10, 77, 0];
pub const CLIENTS_HOST: u8 = 100;
pub const BRIDGE_HOST: u8 = 254;

/// One host of the run: a namespace, or the root namespace for the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Node(u8),
    Clients,
    Bridge,
}

impl Host {
    pub fn address(self) -> Ipv4Addr {
        let last = match self {
            Host::Node(i) => i,
            Host::Clients => CLIENTS_HOST,
            Host::Bridge => BRIDGE_HOST,
        };
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], last)
    }

    /// The namespace's name; `None` for the root namespace.
    pub fn namespace(self) -> Option<String> {
        match self {
            Host::Node(i) => Some(format!("{PREFIX}-n{i}")),
            Host::Clients => Some(format!("{PREFIX}-clients")),
            Host::Bridge => None,
        }
    }

    /// The root-namespace end of the host's veth pair.
    fn veth(self) -> String {
        match self {
            Host::Node(i) => format!("{PREFIX}v{i}"),
            Host::Clients => format!("{PREFIX}vc"),
            Host::Bridge => BRIDGE.to_string(),
        }
    }

    /// A command run inside the host's namespace.
    pub fn command(self, program: &str) -> Command {
        match self.namespace() {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &ns, program]);
                command
            }
            None => Command::new(program),
        }
    }
}

/// The namespaces of one run; removed when dropped.
pub struct Network {
    hosts: Vec<Host>,
}

impl Network {
    /// Builds the bridge and a namespace for each of `nodes` nodes and for the clients,
    /// after removing anything a previous run left behind.
    pub fn create(nodes: u8) -> anyhow::Result<Network> {
        remove_leftovers();
        let mut hosts: Vec<Host> = (1..=nodes).map(Host::Node).collect();
        hosts.push(Host::Clients);
        let network = Network { hosts };
        ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["addr", "add", &cidr(Host::Bridge), "dev", BRIDGE])?;
        ip(&["link", "set", BRIDGE, "up"])?;
        for host in network.hosts.clone() {
            network.attach(host)?;
        }
        Ok(network)
    }

    fn attach(&self, host: Host) -> anyhow::Result<()> {
        let ns = host.namespace().expect("only namespaces are attached");
        let outside = host.veth();
        let inside = format!("{outside}i");
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ])?;
        ip(&["link", "set", &inside, "netns", &ns])?;
        ip(&["link", "set", &outside, "master", BRIDGE])?;
        ip(&["link", "set", &outside, "up"])?;
        in_ns(&ns, &["link", "set", "lo", "up"])?;
        in_ns(&ns, &["link", "set", &inside, "name", "eth0"])?;
        in_ns(&ns, &["addr", "add", &cidr(host), "dev", "eth0"])?;
        in_ns(&ns, &["link", "set", "eth0", "up"])?;
        Ok(())
    }

    /// Cuts `a` and `b` off from each other in both directions.
    pub fn cut(&self, a: Host, b: Host) -> anyhow::Result<()> {
        self.route(a, b, "add")?;
        self.route(b, a, "add")
    }

    /// Cuts a namespace off from the bridge: the Kafka brokers (and the harness).
    pub fn cut_from_bridge(&self, host: Host) -> anyhow::Result<()> {
        self.route(host, Host::Bridge, "add")
    }

    /// Undoes [`Network::cut`]; healing what is not cut is not an error.
    pub fn heal(&self, a: Host, b: Host) -> anyhow::Result<()> {
        let _ = self.route(a, b, "del");
        let _ = self.route(b, a, "del");
        Ok(())
    }

    fn route(&self, from: Host, to: Host, action: &str) -> anyhow::Result<()> {
        let target = format!("{}/32", to.address());
        match from.namespace() {
            Some(ns) => in_ns(&ns, &["route", action, "blackhole", &target]),
            // The root namespace holds the bridge: cut its traffic to a namespace at the
            // namespace's own end instead, which has the same effect both ways.
            None => bail!("cut the bridge from a namespace, not the other way round"),
        }
    }

    /// Slows every packet leaving `host`: `netem` delay with jitter where the kernel has
    /// it, else a token bucket (`tbf`) that holds the link to 2 Mbit/s, which queues and
    /// so delays too. Returns what was applied, for the history.
    pub fn slow(&self, host: Host, delay_ms: u32, jitter_ms: u32) -> anyhow::Result<String> {
        let ns = host
            .namespace()
            .context("only a namespace's link can be slowed")?;
        let (delay, jitter) = (format!("{delay_ms}ms"), format!("{jitter_ms}ms"));
        let root = ["qdisc", "replace", "dev", "eth0", "root"];
        let netem = ["netem", "delay", &delay, &jitter];
        if run(host.command("tc").args(root).args(netem)).is_ok() {
            return Ok(format!("netem delay {delay} ± {jitter}"));
        }
        let tbf = [
            "tbf", "rate", "2mbit", "burst", "32kbit", "latency", "400ms",
        ];
        run(host.command("tc").args(root).args(tbf))
            .with_context(|| format!("tc in {ns}: neither netem nor tbf is available"))?;
        Ok("tbf 2 Mbit/s: this kernel has no netem".into())
    }

    /// Removes what [`Network::slow`] added.
    pub fn unslow(&self, host: Host) -> anyhow::Result<()> {
        let _ = run(host
            .command("tc")
            .args(["qdisc", "del", "dev", "eth0", "root"]));
        Ok(())
    }

    /// Heals every cut and slow link.
    pub fn heal_all(&self) -> anyhow::Result<()> {
        for &a in &self.hosts {
            self.unslow(a)?;
            for &b in self.hosts.iter().chain([&Host::Bridge]) {
                if a != b && a.namespace().is_some() {
                    let _ = self.route(a, b, "del");
                }
            }
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        remove_leftovers();
    }
}

fn cidr(host: Host) -> String {
    format!("{}/24", host.address())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("ip").args(args))
}

fn in_ns(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("ip").args(["-n", ns]).args(args))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?} (is iproute2 installed?)"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Deletes every namespace and link with this run's prefix.
fn remove_leftovers() {
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with(&format!("{PREFIX}-")) {
                let _ = Command::new("ip").args(["netns", "del", name]).output();
            }
        }
    }
    // A namespace that still holds a process outlives `ip netns del`, and so does the
    // root end of its veth: delete such links by name.
    if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split(':').nth(1).unwrap_or_default().trim();
            let name = name.split('@').next().unwrap_or_default();
            if name.starts_with(PREFIX) {
                let _ = Command::new("ip").args(["link", "del", name]).output();
            }
        }
    }
}
