//! Faults, by name, and a schedule that mixes them from a seed.
//!
//! Every fault is applied and healed as a pair, so a run alternates fault windows and
//! quiet windows; the history records both ends, which is what the liveness figures and
//! the report's shaded windows are made of. The same seed gives the same sequence of
//! faults and targets (the processes' timing still varies).

use std::time::Duration;

use anyhow::bail;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::fleet::Fleet;
use crate::net::{Host, Network};

/// The faults the harness knows, by the names `--nemesis` takes.
pub const ALL: &[&str] = &[
    "kill",
    "kill-leader",
    "kill-busiest",
    "pause",
    "restart",
    "partition-node",
    "partition-minority",
    "partition-brokers",
    "cut-clients",
    "slow",
];

/// The mix for `--nemesis all`, and what CI runs by default.
pub const DEFAULT: &[&str] = &["kill", "kill-leader", "pause"];

/// A fault in force, and how to heal it.
#[derive(Debug, Clone)]
pub struct Fault {
    pub name: String,
    /// Nodes it hits.
    pub nodes: Vec<u8>,
    heal: Heal,
}

#[derive(Debug, Clone)]
enum Heal {
    Restart,
    Resume,
    Nothing,
    Network,
}

/// Parses `--nemesis a,b,c` (or `all`), naming the first unknown fault.
pub fn parse(list: &str) -> anyhow::Result<Vec<String>> {
    if list == "all" {
        return Ok(ALL.iter().map(|s| s.to_string()).collect());
    }
    let names: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
    for name in &names {
        if !ALL.contains(&name.as_str()) {
            bail!("unknown nemesis `{name}`; known: {}", ALL.join(", "));
        }
    }
    Ok(names)
}

pub struct Schedule {
    rng: StdRng,
    names: Vec<String>,
}

impl Schedule {
    pub fn new(seed: u64, names: Vec<String>) -> Schedule {
        Schedule {
            rng: StdRng::seed_from_u64(seed),
            names,
        }
    }

    /// How long to leave the fleet alone before the next fault.
    pub fn quiet(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(3_000..8_000))
    }

    /// How long the next fault stays in force.
    pub fn window(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(3_000..10_000))
    }

    /// Applies the next fault to the fleet.
    pub fn strike(&mut self, fleet: &mut Fleet, net: &Network) -> anyhow::Result<Fault> {
        let name = self
            .names
            .choose(&mut self.rng)
            .expect("at least one nemesis")
            .clone();
        let ids: Vec<u8> = fleet.nodes.iter().map(|n| n.id).collect();
        let random = *ids.choose(&mut self.rng).expect("a fleet has nodes");
        let (nodes, heal) = match name.as_str() {
            "kill" => (kill(fleet, random)?, Heal::Restart),
            "kill-leader" => (
                kill(fleet, fleet.leader().unwrap_or(random))?,
                Heal::Restart,
            ),
            "kill-busiest" => {
                let busiest = busiest_owner(fleet).unwrap_or(random);
                (kill(fleet, busiest)?, Heal::Restart)
            }
            "pause" => {
                fleet.pause(random)?;
                (vec![random], Heal::Resume)
            }
            "restart" => {
                fleet.kill(random)?;
                fleet.restart(random)?;
                (vec![random], Heal::Nothing)
            }
            "partition-node" => {
                for &other in ids.iter().filter(|&&o| o != random) {
                    net.cut(Host::Node(random), Host::Node(other))?;
                }
                (vec![random], Heal::Network)
            }
            "partition-minority" => {
                let minority: Vec<u8> = ids
                    .choose_multiple(&mut self.rng, (ids.len() - 1) / 2)
                    .copied()
                    .collect();
                for &a in &minority {
                    for &b in ids.iter().filter(|b| !minority.contains(b)) {
                        net.cut(Host::Node(a), Host::Node(b))?;
                    }
                }
                (minority, Heal::Network)
            }
            "partition-brokers" => {
                net.cut_from_bridge(Host::Node(random))?;
                (vec![random], Heal::Network)
            }
            "cut-clients" => {
                net.cut(Host::Clients, Host::Node(random))?;
                (vec![random], Heal::Network)
            }
            "slow" => {
                let how = net.slow(Host::Node(random), 50, 20)?;
                return Ok(Fault {
                    name: format!("slow ({how})"),
                    nodes: vec![random],
                    heal: Heal::Network,
                });
            }
            other => bail!("unknown nemesis `{other}`"),
        };
        Ok(Fault { name, nodes, heal })
    }
}

impl Fault {
    pub fn heal(&self, fleet: &mut Fleet, net: &Network) -> anyhow::Result<()> {
        match self.heal {
            Heal::Restart => self.nodes.iter().try_for_each(|&n| fleet.restart(n)),
            Heal::Resume => self.nodes.iter().try_for_each(|&n| fleet.resume(n)),
            Heal::Network => net.heal_all(),
            Heal::Nothing => Ok(()),
        }
    }
}

fn kill(fleet: &mut Fleet, id: u8) -> anyhow::Result<Vec<u8>> {
    fleet.kill(id)?;
    Ok(vec![id])
}

/// The node owning the identity that moved the most bytes, as the fleet's metrics say.
fn busiest_owner(fleet: &Fleet) -> Option<u8> {
    let busiest = fleet.busiest_identity()?;
    fleet.owner_of(busiest)
}
