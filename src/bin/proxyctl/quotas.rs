//! `proxyctl quota`: the fleet's client quotas, with `kafka-configs`' entity model (a
//! user, a client id, or both, each a name or the default) and config names. Every node
//! enforces a quota for the whole fleet: a client id spread over three nodes gets its
//! rate once, not three times.

use clap::{Args, Subcommand};
use flotilla::api::{Quota, QuotaDeleted, QuotaEntityQuery};

use crate::client::{encoded, Api};
use crate::output::{json, table, Output};

#[derive(Subcommand, Debug)]
pub enum QuotaCommand {
    /// Set limits of an entity (kafka-configs --alter --add-config); limits not given
    /// keep their value.
    Set {
        #[command(flatten)]
        entity: EntityArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Remove every limit of an entity (kafka-configs --alter --delete-config).
    Delete {
        #[command(flatten)]
        entity: EntityArgs,
    },
    /// List every quota (kafka-configs --describe).
    List,
}

#[derive(Args, Debug)]
pub struct EntityArgs {
    /// The user (the principal without `User:`).
    #[arg(long, conflicts_with = "user_default")]
    user: Option<String>,
    /// The default user: each user without a quota of its own gets this one.
    #[arg(long)]
    user_default: bool,
    /// The client id.
    #[arg(long, conflicts_with = "client_id_default")]
    client_id: Option<String>,
    /// The default client id: each client id without a quota of its own gets this one.
    #[arg(long)]
    client_id_default: bool,
}

#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Produce bytes per second, for the whole fleet.
    #[arg(long)]
    producer_byte_rate: Option<u64>,
    /// Fetch bytes per second, for the whole fleet.
    #[arg(long)]
    consumer_byte_rate: Option<u64>,
    /// Requests per second of any API, for the whole fleet.
    #[arg(long)]
    request_rate: Option<u64>,
}

pub fn run(api: &Api, command: &QuotaCommand, output: Output) -> Result<String, String> {
    match command {
        QuotaCommand::Set { entity, limits } => {
            let quota = Quota {
                entity: entity_of(entity)?,
                producer_byte_rate: limits.producer_byte_rate,
                consumer_byte_rate: limits.consumer_byte_rate,
                request_rate: limits.request_rate,
            };
            if quota.producer_byte_rate.is_none()
                && quota.consumer_byte_rate.is_none()
                && quota.request_rate.is_none()
            {
                return Err("give at least one of --producer-byte-rate, \
                            --consumer-byte-rate, --request-rate"
                    .into());
            }
            let saved: Quota = api.post("/api/v1/quotas", Some(&quota))?;
            Ok(match output {
                Output::Json => json(&saved),
                Output::Table => quota_table(&[saved]),
            })
        }
        QuotaCommand::Delete { entity } => {
            let query = query_string(&entity_of(entity)?);
            let deleted: QuotaDeleted = api.delete(&format!("/api/v1/quotas?{query}"))?;
            Ok(match output {
                Output::Json => json(&deleted),
                Output::Table => format!("deleted:\n{}", quota_table(&[deleted.deleted])),
            })
        }
        QuotaCommand::List => {
            let quotas: Vec<Quota> = api.get("/api/v1/quotas")?;
            Ok(match output {
                Output::Json => json(&quotas),
                Output::Table => quota_table(&quotas),
            })
        }
    }
}

fn entity_of(args: &EntityArgs) -> Result<QuotaEntityQuery, String> {
    let entity = QuotaEntityQuery {
        user: args.user.clone(),
        user_default: args.user_default,
        client_id: args.client_id.clone(),
        client_id_default: args.client_id_default,
    };
    if entity == QuotaEntityQuery::default() {
        return Err(
            "name the entity: --user NAME or --user-default, and/or --client-id ID \
                    or --client-id-default"
                .into(),
        );
    }
    Ok(entity)
}

fn query_string(entity: &QuotaEntityQuery) -> String {
    let mut fields = Vec::new();
    if let Some(user) = &entity.user {
        fields.push(format!("user={}", encoded(user)));
    }
    if entity.user_default {
        fields.push("user_default=true".into());
    }
    if let Some(client_id) = &entity.client_id {
        fields.push(format!("client_id={}", encoded(client_id)));
    }
    if entity.client_id_default {
        fields.push("client_id_default=true".into());
    }
    fields.join("&")
}

fn side(name: &Option<String>, default: bool) -> String {
    match (name, default) {
        (Some(name), _) => name.clone(),
        (None, true) => "<default>".into(),
        (None, false) => "-".into(),
    }
}

fn limit(value: Option<u64>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn quota_table(quotas: &[Quota]) -> String {
    let rows = quotas
        .iter()
        .map(|q| {
            vec![
                side(&q.entity.user, q.entity.user_default),
                side(&q.entity.client_id, q.entity.client_id_default),
                limit(q.producer_byte_rate),
                limit(q.consumer_byte_rate),
                limit(q.request_rate),
            ]
        })
        .collect();
    table(
        &[
            "USER",
            "CLIENT-ID",
            "PRODUCER-BYTE-RATE",
            "CONSUMER-BYTE-RATE",
            "REQUEST-RATE",
        ],
        rows,
    )
}
