//! Fleets of real node processes for tests: each node on its own loopback host, with
//! gossip and Raft, killable with real signals and restartable with its data.

use std::time::Duration;

use flotilla::api::ClusterStatus;

use super::{next_host, wait_for, AdminAccess, Launch, Node};

pub struct Fleet {
    pub nodes: Vec<Node>,
}

impl Fleet {
    /// Starts `count` nodes in front of `backend`, waits until every identity has a live
    /// owner committed by Raft.
    pub fn start(count: usize, backend: &str, takeover_after: &str) -> Fleet {
        Self::start_with(count, backend, takeover_after, Launch::default())
    }

    /// Like [`Fleet::start`], every node started as `launch` says.
    pub fn start_with(count: usize, backend: &str, takeover_after: &str, launch: Launch) -> Fleet {
        Self::start_configured(count, backend, takeover_after, launch, |_| String::new())
    }

    /// Like [`Fleet::start_with`], with extra TOML for each node, made from its host (for
    /// example a `[tls]` section with a certificate for that host).
    pub fn start_configured(
        count: usize,
        backend: &str,
        takeover_after: &str,
        launch: Launch,
        extra_toml: impl Fn(&str) -> String,
    ) -> Fleet {
        Self::start_each(count, backend, takeover_after, launch, |_, host| {
            extra_toml(host)
        })
    }

    /// Like [`Fleet::start_configured`], with extra TOML made from each node's id and host
    /// (for example a `[cluster.tls]` table with the certificate naming `node-<id>`).
    pub fn start_each(
        count: usize,
        backend: &str,
        takeover_after: &str,
        launch: Launch,
        extra_toml: impl Fn(u64, &str) -> String,
    ) -> Fleet {
        let access = AdminAccess::default();
        Self::start_secured(count, backend, takeover_after, launch, &extra_toml, access)
    }

    /// Like [`Fleet::start_each`], with admin APIs reached as `access` says (a token,
    /// HTTPS with the test's CA), for nodes whose `[admin]` section asks for it.
    pub fn start_secured(
        count: usize,
        backend: &str,
        takeover_after: &str,
        launch: Launch,
        extra_toml: &dyn Fn(u64, &str) -> String,
        access: AdminAccess,
    ) -> Fleet {
        let zones: Vec<String> = (0..count).map(|i| format!("zone-{i}")).collect();
        Self::start_in_zones(&zones, backend, takeover_after, launch, extra_toml, access)
    }

    /// A fleet of one node per entry of `zones`, node `i + 1` in `zones[i]`.
    pub fn start_zoned(zones: &[&str], backend: &str, takeover_after: &str) -> Fleet {
        let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
        let no_extra = |_: u64, _: &str| String::new();
        let access = AdminAccess::default();
        Self::start_in_zones(
            &zones,
            backend,
            takeover_after,
            Launch::default(),
            &no_extra,
            access,
        )
    }

    fn start_in_zones(
        zones: &[String],
        backend: &str,
        takeover_after: &str,
        launch: Launch,
        extra_toml: &dyn Fn(u64, &str) -> String,
        access: AdminAccess,
    ) -> Fleet {
        let count = zones.len();
        let hosts: Vec<String> = (0..count).map(|_| next_host()).collect();
        let nodes = (0..count)
            .map(|i| {
                let seeds: Vec<String> = hosts
                    .iter()
                    .filter(|h| **h != hosts[i])
                    .map(|h| format!("\"{h}:7946\""))
                    .collect();
                let members: Vec<String> = (1..=count.min(3)).map(|n| n.to_string()).collect();
                let cluster = format!(
                    "[cluster]\nid = \"test\"\nzone = \"{}\"\ngossip_listen = \"{{host}}:7946\"\n\
                     seeds = [{}]\nraft_listen = \"{{host}}:7947\"\ndata_dir = \"{{dir}}/data\"\n\
                     initial_members = [{}]\ntakeover_after = \"{takeover_after}\"\n{}",
                    zones[i],
                    seeds.join(", "),
                    members.join(", "),
                    extra_toml(i as u64 + 1, &hosts[i])
                );
                let id = i as u64 + 1;
                Node::spawn_secured(
                    id,
                    &hosts[i],
                    backend,
                    &cluster,
                    launch.clone(),
                    access.clone(),
                )
            })
            .collect();
        let fleet = Fleet { nodes };
        // Every node, not just one: tests compare what each node says, and a ready node may
        // still advertise fallback owners until the first assignment is committed.
        for node in &fleet.nodes {
            node.wait_ready();
            fleet.wait_for_status(
                node.id,
                "a committed assignment with every identity owned",
                |s| {
                    s.leader.is_some()
                        && !s.degraded
                        && s.assignment_epoch >= 1
                        && s.all_owned_by_live_nodes()
                        && s.nodes.len() == fleet.nodes.len()
                },
            );
        }
        fleet
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    /// The bootstrap list of every node, for client configs.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.bootstrap.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `GET /api/v1/cluster` on node `via`: `None` while the node does not answer. A body
    /// that is no [`ClusterStatus`] fails the test at once, with the body, rather than
    /// as a timeout of whoever polls.
    pub fn status(&self, via: u64) -> Option<ClusterStatus> {
        let node = &self.nodes[via as usize - 1];
        let body = node
            .access
            .get(&format!("{}/api/v1/cluster", node.admin))
            .ok()?;
        Some(serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!("node {via} answered /api/v1/cluster with no cluster status ({e}): {body}")
        }))
    }

    /// Polls node `via`'s cluster status until `check` holds (deadline 30 s).
    pub fn wait_for_status(
        &self,
        via: u64,
        what: &str,
        check: impl Fn(&ClusterStatus) -> bool,
    ) -> ClusterStatus {
        wait_for(what, Duration::from_secs(30), || {
            self.status(via).filter(|s| check(s))
        })
    }
}
