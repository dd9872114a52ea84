//! `proxyctl acl`: the fleet's Kafka ACLs with `kafka-acls`' flags and meaning. `add`
//! creates every combination of resource, principal, host and operation; `remove` with
//! principals removes exactly those combinations (operation ALL and host `*` unless
//! given, as `kafka-acls --remove` does), and without principals every binding of the
//! named resources; `list` shows what the given flags select.

use std::collections::BTreeSet;

use clap::{Args, Subcommand, ValueEnum};
use flotilla::api::{Acl, AclQuery, AclsAdded, AclsRemoved, NewAcls};

use crate::client::{encoded, Api};
use crate::output::{json, table, Output};

#[derive(Subcommand, Debug)]
pub enum AclCommand {
    /// Add ACLs (kafka-acls --add).
    Add(AclArgs),
    /// Remove ACLs (kafka-acls --remove).
    Remove(AclArgs),
    /// List ACLs (kafka-acls --list).
    List(AclArgs),
}

#[derive(Args, Debug)]
pub struct AclArgs {
    /// Principal granted the operations, e.g. User:alice (repeatable).
    #[arg(long = "allow-principal")]
    allow_principals: Vec<String>,
    /// Principal refused the operations (repeatable).
    #[arg(long = "deny-principal")]
    deny_principals: Vec<String>,
    /// Client address the allow principals may connect from (default: any, `*`).
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// Client address the deny principals are refused from (default: any, `*`).
    #[arg(long = "deny-host")]
    deny_hosts: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite or All (repeatable; default All).
    #[arg(long = "operation")]
    operations: Vec<String>,
    /// A topic (repeatable).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// A consumer group (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// A transactional id (repeatable).
    #[arg(long = "transactional-id")]
    transactional_ids: Vec<String>,
    /// The cluster resource (kafka-cluster).
    #[arg(long)]
    cluster: bool,
    /// How resource names match (default: literal; list: any).
    #[arg(long = "resource-pattern-type", value_enum)]
    pattern_type: Option<PatternType>,
    /// list: only bindings of this principal (repeatable).
    #[arg(long = "principal")]
    principals: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PatternType {
    Literal,
    Prefixed,
}

/// A resource named on the command line.
struct Resource {
    kind: &'static str,
    name: String,
}

pub fn run(api: &Api, command: &AclCommand, output: Output) -> Result<String, String> {
    match command {
        AclCommand::Add(args) => {
            let bindings = bindings(args)?;
            let added: AclsAdded = api.post("/api/v1/acls", Some(&NewAcls { bindings }))?;
            Ok(match output {
                Output::Json => json(&added),
                Output::Table => format!("added:\n{}", acl_table(&added.added)),
            })
        }
        AclCommand::Remove(args) => {
            let mut removed = Vec::new();
            for query in removal_filters(args)? {
                let answer: AclsRemoved =
                    api.delete(&format!("/api/v1/acls?{}", query_string(&query)))?;
                removed.extend(answer.removed);
            }
            let removed = AclsRemoved { removed };
            Ok(match output {
                Output::Json => json(&removed),
                Output::Table => format!("removed:\n{}", acl_table(&removed.removed)),
            })
        }
        AclCommand::List(args) => {
            let mut listed = Vec::new();
            for query in list_filters(args) {
                let acls: Vec<Acl> = api.get(&format!("/api/v1/acls?{}", query_string(&query)))?;
                listed.extend(acls);
            }
            let listed = unique(listed);
            Ok(match output {
                Output::Json => json(&listed),
                Output::Table => acl_table(&listed),
            })
        }
    }
}

fn resources(args: &AclArgs) -> Vec<Resource> {
    let named = |kind: &'static str, names: &[String]| {
        names
            .iter()
            .map(move |name| Resource {
                kind,
                name: name.clone(),
            })
            .collect::<Vec<_>>()
    };
    let mut all = named("TOPIC", &args.topics);
    all.extend(named("GROUP", &args.groups));
    all.extend(named("TRANSACTIONAL_ID", &args.transactional_ids));
    if args.cluster {
        all.push(Resource {
            kind: "CLUSTER",
            name: "kafka-cluster".into(),
        });
    }
    all
}

fn pattern_name(pattern: Option<PatternType>) -> String {
    match pattern.unwrap_or(PatternType::Literal) {
        PatternType::Literal => "LITERAL".into(),
        PatternType::Prefixed => "PREFIXED".into(),
    }
}

/// Principal, host and permission of every entry the flags describe.
fn entries(args: &AclArgs) -> Vec<(String, String, &'static str)> {
    let any_host = vec!["*".to_string()];
    let hosts = |given: &Vec<String>| {
        if given.is_empty() {
            any_host.clone()
        } else {
            given.clone()
        }
    };
    let mut entries = Vec::new();
    for (principals, hosts, permission) in [
        (&args.allow_principals, hosts(&args.allow_hosts), "ALLOW"),
        (&args.deny_principals, hosts(&args.deny_hosts), "DENY"),
    ] {
        for principal in principals {
            for host in &hosts {
                entries.push((principal.clone(), host.clone(), permission));
            }
        }
    }
    entries
}

fn operations(args: &AclArgs) -> Vec<String> {
    if args.operations.is_empty() {
        vec!["ALL".into()]
    } else {
        args.operations.clone()
    }
}

fn bindings(args: &AclArgs) -> Result<Vec<Acl>, String> {
    if !args.principals.is_empty() {
        return Err("--principal filters `acl list`; name principals with \
                    --allow-principal or --deny-principal"
            .into());
    }
    let resources = resources(args);
    let entries = entries(args);
    if resources.is_empty() {
        return Err("name a resource: --topic, --group, --transactional-id or --cluster".into());
    }
    if entries.is_empty() {
        return Err("name a principal: --allow-principal or --deny-principal".into());
    }
    let mut bindings = Vec::new();
    for resource in &resources {
        for (principal, host, permission) in &entries {
            for operation in operations(args) {
                bindings.push(Acl {
                    resource_type: resource.kind.into(),
                    name: resource.name.clone(),
                    pattern_type: pattern_name(args.pattern_type),
                    principal: principal.clone(),
                    host: host.clone(),
                    operation,
                    permission: (*permission).into(),
                });
            }
        }
    }
    Ok(bindings)
}

fn removal_filters(args: &AclArgs) -> Result<Vec<AclQuery>, String> {
    let resources = resources(args);
    if resources.is_empty() {
        return Err("name a resource: --topic, --group, --transactional-id or --cluster".into());
    }
    if entries(args).is_empty() {
        return Ok(resources
            .iter()
            .map(|r| resource_query(r, Some(pattern_name(args.pattern_type))))
            .collect());
    }
    Ok(bindings(args)?
        .into_iter()
        .map(|b| AclQuery {
            resource_type: Some(b.resource_type),
            name: Some(b.name),
            pattern_type: Some(b.pattern_type),
            principal: Some(b.principal),
            host: Some(b.host),
            operation: Some(b.operation),
            permission: Some(b.permission),
        })
        .collect())
}

/// The bindings of one resource, of the given pattern type (`None`: any).
fn resource_query(resource: &Resource, pattern_type: Option<String>) -> AclQuery {
    AclQuery {
        resource_type: Some(resource.kind.into()),
        name: Some(resource.name.clone()),
        pattern_type,
        ..AclQuery::default()
    }
}

fn list_filters(args: &AclArgs) -> Vec<AclQuery> {
    let mut by_resource: Vec<AclQuery> = resources(args)
        .iter()
        .map(|r| resource_query(r, args.pattern_type.map(|p| pattern_name(Some(p)))))
        .collect();
    if by_resource.is_empty() {
        by_resource.push(AclQuery::default());
    }
    let principals: Vec<&String> = args
        .principals
        .iter()
        .chain(&args.allow_principals)
        .chain(&args.deny_principals)
        .collect();
    if principals.is_empty() {
        return by_resource;
    }
    by_resource
        .iter()
        .flat_map(|q| {
            principals.iter().map(|p| AclQuery {
                principal: Some(p.to_string()),
                ..q.clone()
            })
        })
        .collect()
}

fn query_string(query: &AclQuery) -> String {
    let fields = [
        ("resource_type", &query.resource_type),
        ("name", &query.name),
        ("pattern_type", &query.pattern_type),
        ("principal", &query.principal),
        ("host", &query.host),
        ("operation", &query.operation),
        ("permission", &query.permission),
    ];
    fields
        .iter()
        .filter_map(|(key, value)| Some(format!("{key}={}", encoded(value.as_deref()?))))
        .collect::<Vec<_>>()
        .join("&")
}

fn unique(acls: Vec<Acl>) -> Vec<Acl> {
    let mut seen = BTreeSet::new();
    acls.into_iter()
        .filter(|a| seen.insert(format!("{a:?}")))
        .collect()
}

fn acl_table(acls: &[Acl]) -> String {
    let rows = acls.iter().map(|a| {
        vec![
            a.principal.clone(),
            a.permission.clone(),
            a.operation.clone(),
            a.host.clone(),
            a.resource_type.clone(),
            a.pattern_type.clone(),
            a.name.clone(),
        ]
    });
    let headers = [
        "PRINCIPAL",
        "PERMISSION",
        "OPERATION",
        "HOST",
        "RESOURCE",
        "PATTERN",
        "NAME",
    ];
    table(&headers, rows.collect())
}
