//! `/api/v1/zone-map`: the CIDR -> zone map that places clients by source address. A
//! block is checked on the node that received it (a CIDR, no host bits, a valid zone
//! name) and against the leader's map (no overlap) before it is proposed; the state
//! machine refuses an overlap again, so two racing writes cannot both land.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use flotilla_raft::zones::{parse_cidr, valid_zone_name, ZoneMapError, LEVEL};
use flotilla_raft::Command;

use super::auth::Caller;
use super::{answer, fleet_at_level, invalid_input, json_bytes};
use crate::api::{ZoneMapping, ZoneMappingRemoved};
use crate::cluster::error::ClusterError;
use crate::cluster::peer_api::Write;
use crate::cluster::writes::{commit, on_leader};
use crate::context::Context;

pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/api/v1/zone-map", get(list).post(set))
        .route("/api/v1/zone-map/{*cidr}", delete(remove))
}

async fn list(State(ctx): State<Arc<Context>>) -> Response {
    let state = ctx.control.load();
    let map: Vec<ZoneMapping> = state
        .zone_map
        .iter()
        .map(|(cidr, zone)| ZoneMapping {
            cidr: cidr.to_string(),
            zone: zone.clone(),
        })
        .collect();
    answer(Ok(map))
}

async fn set(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<ZoneMapping>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Json(new) = body.map_err(|e| invalid_input(&e))?;
            let cidr = parse_cidr(&new.cidr).map_err(|e| ClusterError::Invalid(e.to_string()))?;
            if !valid_zone_name(&new.zone) {
                let refused = ZoneMapError::ZoneName(new.zone.clone());
                return Err(ClusterError::Invalid(refused.to_string()));
            }
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&new)));
            on_leader(fleet, &replay, || async {
                let command = Command::SetZoneMapping {
                    cidr,
                    zone: new.zone.clone(),
                };
                commit(fleet, command).await?;
                Ok(ZoneMapping {
                    cidr: cidr.to_string(),
                    zone: new.zone.clone(),
                })
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
    Path(cidr): Path<String>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let parsed = parse_cidr(&cidr).map_err(|e| ClusterError::Invalid(e.to_string()))?;
            let replay = caller.replay(Write::Delete, &uri, None);
            on_leader(fleet, &replay, || async {
                if !fleet.raft.state().borrow().zone_map.contains_key(&parsed) {
                    return Err(ClusterError::NotFound(format!(
                        "{parsed} is not in the zone map"
                    )));
                }
                commit(fleet, Command::RemoveZoneMapping { cidr: parsed }).await?;
                Ok(ZoneMappingRemoved {
                    removed: parsed.to_string(),
                })
            })
            .await
        }
        .await,
    )
}
