//! `/api/v1/users`: the fleet's SASL/SCRAM users, as Kafka's `kafka-configs
//! --alter --add-config SCRAM-SHA-256=[password=...]` manages them on a broker. The
//! node derives the verifiers from the password (at the Raft leader); the password is
//! never stored, logged or shown, and listing shows mechanisms, never keys.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use flotilla_raft::security::ScramMechanism;
use serde::Deserialize;

use super::auth::Caller;
use super::{answer, invalid_input, json_bytes, security_fleet};
use crate::api::{CredentialSummary, NewUser, UserDeleted, UserSaved, UserSummary};
use crate::cluster::error::ClusterError;
use crate::cluster::peer_api::Write;
use crate::cluster::security;
use crate::cluster::writes::on_leader;
use crate::context::Context;
use crate::sasl::scram::DEFAULT_ITERATIONS;

pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/api/v1/users", get(list).post(add))
        .route("/api/v1/users/{name}", delete(remove))
}

async fn list(State(ctx): State<Arc<Context>>) -> Json<Vec<UserSummary>> {
    let state = ctx.control.load();
    let users = state
        .users
        .iter()
        .map(|(name, credentials)| UserSummary {
            name: name.clone(),
            credentials: credentials
                .iter()
                .map(|(mechanism, c)| CredentialSummary {
                    mechanism: mechanism.to_string(),
                    iterations: c.iterations,
                })
                .collect(),
        })
        .collect();
    Json(users)
}

async fn add(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = security_fleet(&ctx)?;
            let Json(new) = body.map_err(|e| invalid_input(&e))?;
            let (mechanism, iterations) = checked(&new)?;
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&new)));
            let saved = UserSaved {
                name: new.name.clone(),
                mechanism: mechanism.to_string(),
                iterations,
            };
            on_leader(fleet, &replay, || async {
                security::put_user(fleet, new.name, mechanism, new.password, iterations).await?;
                Ok(saved)
            })
            .await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
struct Mechanism {
    mechanism: Option<String>,
}

async fn remove(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
    query: Result<Query<Mechanism>, QueryRejection>,
) -> Response {
    answer(
        async {
            let fleet = security_fleet(&ctx)?;
            let Query(query) = query.map_err(|e| invalid_input(&e))?;
            let mechanism = match &query.mechanism {
                Some(m) => Some(mechanism_of(m)?),
                None => None,
            };
            let replay = caller.replay(Write::Delete, &uri, None);
            let deleted = UserDeleted {
                name: name.clone(),
                mechanism: mechanism.map(|m| m.to_string()),
            };
            on_leader(fleet, &replay, || async {
                security::delete_user(fleet, name, mechanism).await?;
                Ok(deleted)
            })
            .await
        }
        .await,
    )
}

/// The mechanism and iteration count, checked as Kafka checks them.
fn checked(new: &NewUser) -> Result<(ScramMechanism, u32), ClusterError> {
    if new.name.is_empty() {
        return Err(ClusterError::Invalid(
            "the user name must not be empty".into(),
        ));
    }
    if new.password.is_empty() {
        return Err(ClusterError::Invalid(
            "the password must not be empty".into(),
        ));
    }
    let mechanism = mechanism_of(&new.mechanism)?;
    let iterations = new.iterations.unwrap_or(DEFAULT_ITERATIONS);
    let range = ScramMechanism::MIN_ITERATIONS..=ScramMechanism::MAX_ITERATIONS;
    if !range.contains(&iterations) {
        return Err(ClusterError::Invalid(format!(
            "iterations must be from {} to {}",
            range.start(),
            range.end()
        )));
    }
    Ok((mechanism, iterations))
}

fn mechanism_of(name: &str) -> Result<ScramMechanism, ClusterError> {
    name.parse()
        .map_err(|e: flotilla_raft::security::UnknownName| ClusterError::Invalid(e.to_string()))
}
