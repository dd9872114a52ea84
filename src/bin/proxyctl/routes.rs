//! `proxyctl route` and `proxyctl cluster list`: which backend cluster serves each topic,
//! consumer group and transactional id, and the clusters behind the fleet.

use clap::{Args, Subcommand};
use flotilla::api::{BackendClusterView, DefaultRoute, RouteEntry, RouteTable};

use crate::client::{encoded, Api};
use crate::output::{json, table, Output};

#[derive(Subcommand, Debug)]
pub enum RouteCommand {
    /// Every route, and the cluster of whatever no route names.
    List,
    /// Route a topic, group or transactional id (or every one whose name starts with a
    /// prefix) to CLUSTER. An exact name beats a prefix; overlapping prefixes are refused.
    Set {
        #[command(flatten)]
        target: RouteTarget,
        cluster: String,
    },
    /// Remove a route; what it named goes to the default cluster (or a prefix's route).
    Delete {
        #[command(flatten)]
        target: RouteTarget,
    },
    /// Send whatever no route names to CLUSTER.
    Default { cluster: String },
}

/// What a route names: exactly one of the flags, with the name or prefix.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct RouteTarget {
    #[arg(long, value_name = "NAME")]
    topic: Option<String>,
    #[arg(long, value_name = "PREFIX")]
    topic_prefix: Option<String>,
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    #[arg(long, value_name = "PREFIX")]
    group_prefix: Option<String>,
    #[arg(long, value_name = "ID")]
    transactional_id: Option<String>,
    #[arg(long, value_name = "PREFIX")]
    transactional_id_prefix: Option<String>,
}

impl RouteTarget {
    /// (resource, name, prefix)
    fn parts(&self) -> (&'static str, String, bool) {
        let flags = [
            ("topic", &self.topic, false),
            ("topic", &self.topic_prefix, true),
            ("group", &self.group, false),
            ("group", &self.group_prefix, true),
            ("transactional-id", &self.transactional_id, false),
            ("transactional-id", &self.transactional_id_prefix, true),
        ];
        flags
            .into_iter()
            .find_map(|(resource, name, prefix)| Some((resource, name.clone()?, prefix)))
            .expect("clap requires one target")
    }
}

pub fn run(api: &Api, command: &RouteCommand, output: Output) -> Result<String, String> {
    match command {
        RouteCommand::List => {
            let routes: RouteTable = api.get("/api/v1/routes")?;
            Ok(match output {
                Output::Json => json(&routes),
                Output::Table => route_table(&routes),
            })
        }
        RouteCommand::Set { target, cluster } => {
            let (resource, name, prefix) = target.parts();
            let new = RouteEntry {
                resource: resource.into(),
                name,
                prefix,
                cluster: cluster.clone(),
            };
            let saved: RouteEntry = api.post("/api/v1/routes", Some(&new))?;
            Ok(match output {
                Output::Json => json(&saved),
                Output::Table => format!("{} -> {}\n", describe(&saved), saved.cluster),
            })
        }
        RouteCommand::Delete { target } => {
            let (resource, name, prefix) = target.parts();
            let path = format!(
                "/api/v1/routes/{resource}/{}?prefix={prefix}",
                encoded(&name)
            );
            let deleted: RouteEntry = api.delete(&path)?;
            Ok(match output {
                Output::Json => json(&deleted),
                Output::Table => format!("route of {} removed\n", describe(&deleted)),
            })
        }
        RouteCommand::Default { cluster } => {
            let new = DefaultRoute {
                cluster: cluster.clone(),
            };
            let saved: DefaultRoute = api.post("/api/v1/routes/default", Some(&new))?;
            Ok(match output {
                Output::Json => json(&saved),
                Output::Table => format!("default cluster: {}\n", saved.cluster),
            })
        }
    }
}

fn describe(route: &RouteEntry) -> String {
    let kind = if route.prefix { " prefix" } else { "" };
    format!("{}{kind} {}", route.resource, route.name)
}

fn route_table(routes: &RouteTable) -> String {
    let mut rows: Vec<Vec<String>> = routes
        .routes
        .iter()
        .map(|r| {
            let name = if r.prefix {
                format!("{}*", r.name)
            } else {
                r.name.clone()
            };
            vec![r.resource.clone(), name, r.cluster.clone()]
        })
        .collect();
    rows.push(vec![
        "(default)".into(),
        "*".into(),
        routes.default_cluster.clone(),
    ]);
    table(&["RESOURCE", "NAME", "CLUSTER"], rows)
}

/// `proxyctl cluster list`.
pub fn clusters(api: &Api, output: Output) -> Result<String, String> {
    let clusters: Vec<BackendClusterView> = api.get("/api/v1/backend-clusters")?;
    Ok(match output {
        Output::Json => json(&clusters),
        Output::Table => cluster_table(&clusters),
    })
}

fn cluster_table(clusters: &[BackendClusterView]) -> String {
    let rows = clusters
        .iter()
        .map(|c| {
            let present = c.brokers.iter().filter(|b| b.present).count();
            let brokers: Vec<String> = c
                .brokers
                .iter()
                .filter(|b| b.present)
                .map(|b| format!("{}={}", b.identity, b.address))
                .collect();
            let health = match c.reachable {
                Some(true) => "reachable",
                Some(false) => "UNREACHABLE",
                None => "not configured here",
            };
            let name = if c.is_default {
                format!("{} (default)", c.name)
            } else {
                c.name.clone()
            };
            vec![
                name,
                health.to_string(),
                format!("{present}/{}", c.brokers.len()),
                c.routes.to_string(),
                brokers.join(" "),
            ]
        })
        .collect();
    table(
        &["CLUSTER", "HEALTH", "BROKERS", "ROUTES", "IDENTITIES"],
        rows,
    )
}
