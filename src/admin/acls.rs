//! `/api/v1/acls`: the fleet's Kafka ACLs, with the meaning of `kafka-acls --add`,
//! `--remove` and `--list`. A filter selects bindings field by field, exactly (no
//! wildcard expansion); a removal is resolved against the leader's state, so the Raft
//! log records exactly which bindings went, and the answer lists them.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{OriginalUri, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use flotilla_raft::security::{AclBinding, AclFilter, UnknownName};

use super::auth::Caller;
use super::{answer, invalid_input, json_bytes, security_fleet};
use crate::api::{Acl, AclQuery, AclsAdded, AclsRemoved, NewAcls};
use crate::cluster::error::ClusterError;
use crate::cluster::peer_api::Write;
use crate::cluster::security;
use crate::cluster::writes::on_leader;
use crate::context::Context;

pub fn routes() -> Router<Arc<Context>> {
    Router::new().route("/api/v1/acls", get(list).post(add).delete(remove))
}

async fn list(
    State(ctx): State<Arc<Context>>,
    query: Result<Query<AclQuery>, QueryRejection>,
) -> Response {
    answer((|| {
        let Query(query) = query.map_err(|e| invalid_input(&e))?;
        let filter = filter_of(&query)?;
        let state = ctx.control.load();
        let acls: Vec<Acl> = state
            .acls_matching(&filter)
            .into_iter()
            .map(acl_of)
            .collect();
        Ok(acls)
    })())
}

async fn add(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<NewAcls>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = security_fleet(&ctx)?;
            let Json(new) = body.map_err(|e| invalid_input(&e))?;
            if new.bindings.is_empty() {
                return Err(ClusterError::Invalid("no bindings to add".into()));
            }
            let bindings = new
                .bindings
                .iter()
                .map(binding_of)
                .collect::<Result<Vec<_>, _>>()?;
            let added = AclsAdded {
                added: bindings.iter().map(acl_of).collect(),
            };
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&new)));
            on_leader(fleet, &replay, || async {
                security::add_acls(fleet, bindings).await?;
                Ok(added)
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
    query: Result<Query<AclQuery>, QueryRejection>,
) -> Response {
    answer(
        async {
            let fleet = security_fleet(&ctx)?;
            let Query(query) = query.map_err(|e| invalid_input(&e))?;
            let filter = filter_of(&query)?;
            if filter == AclFilter::default() {
                return Err(ClusterError::Invalid(
                    "an empty filter would remove every ACL; name at least a resource \
                     type, resource name or principal"
                        .into(),
                ));
            }
            let replay = caller.replay(Write::Delete, &uri, None);
            on_leader(fleet, &replay, || async {
                let removed = security::remove_acls(fleet, &filter).await?;
                Ok(AclsRemoved {
                    removed: removed.iter().map(acl_of).collect(),
                })
            })
            .await
        }
        .await,
    )
}

fn parsed<T: std::str::FromStr<Err = UnknownName>>(text: &str) -> Result<T, ClusterError> {
    text.parse()
        .map_err(|e: UnknownName| ClusterError::Invalid(e.to_string()))
}

fn optional<T: std::str::FromStr<Err = UnknownName>>(
    text: &Option<String>,
) -> Result<Option<T>, ClusterError> {
    text.as_deref().map(parsed).transpose()
}

/// A binding as Kafka would store it, or why Kafka would refuse it.
fn binding_of(acl: &Acl) -> Result<AclBinding, ClusterError> {
    let binding = AclBinding {
        resource_type: parsed(&acl.resource_type)?,
        name: acl.name.clone(),
        pattern_type: parsed(&acl.pattern_type)?,
        principal: acl.principal.clone(),
        host: acl.host.clone(),
        operation: parsed(&acl.operation)?,
        permission: parsed(&acl.permission)?,
    };
    binding
        .validate()
        .map_err(|e| ClusterError::Invalid(format!("{acl:?}: {e}")))?;
    Ok(binding)
}

fn acl_of(b: &AclBinding) -> Acl {
    Acl {
        resource_type: b.resource_type.to_string(),
        name: b.name.clone(),
        pattern_type: b.pattern_type.to_string(),
        principal: b.principal.clone(),
        host: b.host.clone(),
        operation: b.operation.to_string(),
        permission: b.permission.to_string(),
    }
}

fn filter_of(q: &AclQuery) -> Result<AclFilter, ClusterError> {
    Ok(AclFilter {
        resource_type: optional(&q.resource_type)?,
        name: q.name.clone(),
        pattern_type: optional(&q.pattern_type)?,
        principal: q.principal.clone(),
        host: q.host.clone(),
        operation: optional(&q.operation)?,
        permission: optional(&q.permission)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(resource_type: &str, operation: &str, principal: &str) -> Acl {
        Acl {
            resource_type: resource_type.into(),
            name: "orders".into(),
            pattern_type: "literal".into(),
            principal: principal.into(),
            host: "*".into(),
            operation: operation.into(),
            permission: "Allow".into(),
        }
    }

    #[test]
    fn bindings_take_kafkas_names_in_any_case_and_answer_in_kafkas_spelling() {
        let binding = binding_of(&acl("topic", "Read", "User:alice")).unwrap();
        let shown = acl_of(&binding);
        assert_eq!(shown.resource_type, "TOPIC");
        assert_eq!(shown.pattern_type, "LITERAL");
        assert_eq!(shown.operation, "READ");
        assert_eq!(shown.permission, "ALLOW");
        let txn = binding_of(&acl("transactional-id", "IDEMPOTENT_WRITE", "User:a")).unwrap();
        assert_eq!(acl_of(&txn).resource_type, "TRANSACTIONAL_ID");
    }

    #[test]
    fn what_kafka_refuses_is_invalid_with_the_reason() {
        let unknown = binding_of(&acl("broker", "Read", "User:alice")).unwrap_err();
        assert!(unknown.to_string().contains("resource type"), "{unknown}");
        let principal = binding_of(&acl("topic", "Read", "alice")).unwrap_err();
        assert!(principal.to_string().contains("User:name"), "{principal}");
        let query = AclQuery {
            operation: Some("fly".into()),
            ..AclQuery::default()
        };
        assert!(matches!(filter_of(&query), Err(ClusterError::Invalid(_))));
    }
}
