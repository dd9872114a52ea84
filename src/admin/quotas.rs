//! `/api/v1/quotas`: the fleet's client quotas, with the meaning of `kafka-configs
//! --entity-type users/clients --alter --add-config/--delete-config` and `--describe`.
//! A quota is enforced by every node for the whole fleet (`proxy::filters::quota`), so a
//! change is a Raft command; setting merges with the entity's current limits on the
//! leader, the freshest state there is.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{OriginalUri, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use flotilla_raft::{Command, QuotaEntity, QuotaKey, QuotaLimits};

use super::auth::Caller;
use super::{answer, fleet_at_level, invalid_input, json_bytes};
use crate::api::{Quota, QuotaDeleted, QuotaEntityQuery};
use crate::cluster::error::ClusterError;
use crate::cluster::fleet::Fleet;
use crate::cluster::peer_api::Write;
use crate::cluster::writes::{commit, on_leader};
use crate::context::Context;

/// The fleet feature level that knows quotas.
const LEVEL: u16 = flotilla_raft::governance::LEVEL;

pub fn routes() -> Router<Arc<Context>> {
    Router::new().route("/api/v1/quotas", get(list).post(set).delete(remove))
}

async fn list(State(ctx): State<Arc<Context>>) -> Response {
    let state = ctx.control.load();
    let quotas: Vec<Quota> = state.quotas.iter().map(|(k, l)| quota_of(k, l)).collect();
    answer(Ok::<_, ClusterError>(quotas))
}

async fn set(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<Quota>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Json(quota) = body.map_err(|e| invalid_input(&e))?;
            let (key, limits) = parse_quota(&quota)?;
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&quota)));
            on_leader(fleet, &replay, || async {
                let merged = merged(current(fleet, &key), limits);
                let command = Command::SetQuota {
                    key: key.clone(),
                    limits: merged,
                };
                commit(fleet, command).await?;
                Ok(quota_of(&key, &merged))
            })
            .await
        }
        .await,
    )
}

async fn remove(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<QuotaEntityQuery>, QueryRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Query(entity) = query.map_err(|e| invalid_input(&e))?;
            let key = parse_entity(&entity)?;
            let replay = caller.replay(Write::Delete, &uri, None);
            on_leader(fleet, &replay, || async {
                let Some(limits) = current(fleet, &key) else {
                    return Err(ClusterError::NotFound(format!("no quota for {key}")));
                };
                let command = Command::SetQuota {
                    key: key.clone(),
                    limits: QuotaLimits::default(),
                };
                commit(fleet, command).await?;
                Ok(QuotaDeleted {
                    deleted: quota_of(&key, &limits),
                })
            })
            .await
        }
        .await,
    )
}

/// The fleet, for quota writes: only once every member enforces quotas.
fn current(fleet: &Fleet, key: &QuotaKey) -> Option<QuotaLimits> {
    fleet.raft.state().borrow().quotas.get(key).copied()
}

/// `current` with every limit `new` sets replaced.
fn merged(current: Option<QuotaLimits>, new: QuotaLimits) -> QuotaLimits {
    let current = current.unwrap_or_default();
    QuotaLimits {
        producer_byte_rate: new.producer_byte_rate.or(current.producer_byte_rate),
        consumer_byte_rate: new.consumer_byte_rate.or(current.consumer_byte_rate),
        request_rate: new.request_rate.or(current.request_rate),
    }
}

fn side(
    field: &str,
    name: &Option<String>,
    default: bool,
) -> Result<Option<QuotaEntity>, ClusterError> {
    match (name, default) {
        (Some(_), true) => Err(ClusterError::Invalid(format!(
            "{field}: give a name or {field}_default, not both"
        ))),
        (Some(name), false) if name.is_empty() => Err(ClusterError::Invalid(format!(
            "{field}: the name is empty (use {field}_default for the default)"
        ))),
        (Some(name), false) => Ok(Some(QuotaEntity::Named(name.clone()))),
        (None, true) => Ok(Some(QuotaEntity::Default)),
        (None, false) => Ok(None),
    }
}

/// The entity a request names, or why it names none.
fn parse_entity(entity: &QuotaEntityQuery) -> Result<QuotaKey, ClusterError> {
    let key = QuotaKey {
        user: side("user", &entity.user, entity.user_default)?,
        client_id: side("client_id", &entity.client_id, entity.client_id_default)?,
    };
    if key.user.is_none() && key.client_id.is_none() {
        return Err(ClusterError::Invalid(
            "user, client_id: name a user or the default user, a client id or the default \
             client id, or both"
                .into(),
        ));
    }
    Ok(key)
}

fn parse_quota(quota: &Quota) -> Result<(QuotaKey, QuotaLimits), ClusterError> {
    let key = parse_entity(&quota.entity)?;
    let limits = QuotaLimits {
        producer_byte_rate: quota.producer_byte_rate,
        consumer_byte_rate: quota.consumer_byte_rate,
        request_rate: quota.request_rate,
    };
    if limits.is_empty() {
        return Err(ClusterError::Invalid(
            "producer_byte_rate, consumer_byte_rate, request_rate: set at least one".into(),
        ));
    }
    let limits_by_name = [
        ("producer_byte_rate", limits.producer_byte_rate),
        ("consumer_byte_rate", limits.consumer_byte_rate),
        ("request_rate", limits.request_rate),
    ];
    for (field, limit) in limits_by_name {
        if limit == Some(0) {
            return Err(ClusterError::Invalid(format!(
                "{field}: must be at least 1 (delete the quota to lift it)"
            )));
        }
    }
    Ok((key, limits))
}

fn quota_of(key: &QuotaKey, limits: &QuotaLimits) -> Quota {
    let name = |side: &Option<QuotaEntity>| match side {
        Some(QuotaEntity::Named(name)) => Some(name.clone()),
        _ => None,
    };
    let is_default = |side: &Option<QuotaEntity>| matches!(side, Some(QuotaEntity::Default));
    Quota {
        entity: QuotaEntityQuery {
            user: name(&key.user),
            user_default: is_default(&key.user),
            client_id: name(&key.client_id),
            client_id_default: is_default(&key.client_id),
        },
        producer_byte_rate: limits.producer_byte_rate,
        consumer_byte_rate: limits.consumer_byte_rate,
        request_rate: limits.request_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<&str>, client_id_default: bool) -> QuotaEntityQuery {
        QuotaEntityQuery {
            user: user.map(str::to_string),
            client_id_default,
            ..QuotaEntityQuery::default()
        }
    }

    fn invalid(result: Result<impl std::fmt::Debug, ClusterError>) -> String {
        match result {
            Err(ClusterError::Invalid(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_entity_names_at_least_one_side_each_once() {
        let key = parse_entity(&entity(Some("alice"), true)).unwrap();
        assert_eq!(key.to_string(), "user=alice client-id=<default>");
        assert!(invalid(parse_entity(&entity(None, false))).contains("user, client_id"));
        let both = QuotaEntityQuery {
            user: Some("alice".into()),
            user_default: true,
            ..QuotaEntityQuery::default()
        };
        assert!(invalid(parse_entity(&both)).starts_with("user:"));
        assert!(invalid(parse_entity(&entity(Some(""), false))).starts_with("user:"));
    }

    #[test]
    fn a_quota_sets_at_least_one_positive_limit_and_round_trips() {
        let mut quota = Quota {
            entity: entity(None, true),
            ..Quota::default()
        };
        assert!(invalid(parse_quota(&quota)).contains("at least one"));
        quota.request_rate = Some(0);
        assert!(invalid(parse_quota(&quota)).starts_with("request_rate:"));
        quota.request_rate = Some(50);
        quota.producer_byte_rate = Some(1024);
        let (key, limits) = parse_quota(&quota).unwrap();
        assert_eq!(quota_of(&key, &limits), quota);
    }

    #[test]
    fn setting_keeps_the_limits_it_does_not_name() {
        let current = QuotaLimits {
            producer_byte_rate: Some(1),
            consumer_byte_rate: Some(2),
            request_rate: None,
        };
        let new = QuotaLimits {
            consumer_byte_rate: Some(5),
            request_rate: Some(7),
            ..QuotaLimits::default()
        };
        let merged = merged(Some(current), new);
        assert_eq!(merged.producer_byte_rate, Some(1));
        assert_eq!(merged.consumer_byte_rate, Some(5));
        assert_eq!(merged.request_rate, Some(7));
    }
}
