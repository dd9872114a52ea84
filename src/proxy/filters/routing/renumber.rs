//! Node ids in the hot path's responses from a cluster other than `default`: a Produce or
//! Fetch response that reports a new leader (KIP-951) names it by the broker's own id, and
//! a Fetch of a client that names its rack may name a preferred read replica (KIP-392).
//! Clients look those ids up in the merged Metadata, where that cluster's brokers are
//! virtual identities, so they are renumbered here before the address rewrites run.
//!
//! Nearly every response names no node: whether one carries endpoints is found by a walk
//! over its bytes, and a Fetch is decoded for its preferred replica only when its request
//! named a rack (noted on the way in).

use kafka_protocol::messages::{ApiKey, BrokerId, RequestKind, ResponseKind};

use flotilla_raft::ControlState;

use super::virtual_id;
use crate::proxy::filter::Env;
use crate::proxy::filters::node_endpoints::{
    carries_endpoints, FETCH_MIN_VERSION, PRODUCE_MIN_VERSION,
};
use crate::proxy::message::{Request, Response};

/// The note of a Fetch that named a rack on a connection to another cluster than
/// `default`.
const RACKED_FETCH: &str = "routing-racked-fetch";

struct RackedFetch;

/// Notes a Fetch whose answer may name a preferred read replica.
pub(super) fn note_request(request: &mut Request, env: &Env) {
    let racked = matches!(request.body(), Ok(RequestKind::Fetch(f)) if !f.rack_id.is_empty());
    if racked {
        let id = request.correlation_id();
        env.session.notes.leave(RACKED_FETCH, id, RackedFetch);
    }
}

/// Renumbers the node ids a response from `cluster` carries, if it carries any.
pub(super) fn response(response: &mut Response, env: &Env, cluster: &str) -> Result<(), String> {
    let (api_key, version) = (response.api_key(), response.version());
    let racked = api_key == ApiKey::Fetch
        && response
            .correlation_id()
            .and_then(|id| env.session.notes.take::<RackedFetch>(RACKED_FETCH, id))
            .is_some();
    let min_version = match api_key {
        ApiKey::Produce => PRODUCE_MIN_VERSION,
        _ => FETCH_MIN_VERSION,
    };
    let endpoints = version >= min_version
        && carries_endpoints(api_key, version, response.frame()) != Some(false);
    if !racked && !endpoints {
        return Ok(());
    }
    let state: &ControlState = env.control;
    let to_virtual = |id: &mut BrokerId| *id = virtual_id(state, cluster, *id);
    response.edit(|body| match body {
        ResponseKind::Produce(body) => {
            body.node_endpoints
                .iter_mut()
                .for_each(|e| to_virtual(&mut e.node_id));
            let partitions = body
                .responses
                .iter_mut()
                .flat_map(|t| &mut t.partition_responses);
            partitions.for_each(|p| to_virtual(&mut p.current_leader.leader_id));
            true
        }
        ResponseKind::Fetch(body) => {
            body.node_endpoints
                .iter_mut()
                .for_each(|e| to_virtual(&mut e.node_id));
            for p in body.responses.iter_mut().flat_map(|t| &mut t.partitions) {
                to_virtual(&mut p.current_leader.leader_id);
                to_virtual(&mut p.preferred_read_replica);
            }
            true
        }
        _ => false,
    })
}
