//! FindCoordinator: the group or transaction coordinator's address. Versions 0 to 3 carry
//! one coordinator at the top level, version 4 and later a list (batched lookups). An
//! error answer (node id -1) has no address to rewrite.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, FindCoordinatorResponse, ResponseKind};

use super::Addressing;
use crate::directory::Directory;
use crate::proxy::filter::{Env, Filter};
use crate::proxy::message::Response;

/// Version 4 moved the coordinator into the `coordinators` list.
const BATCHED_VERSION: i16 = 4;

pub struct CoordinatorAddresses {
    directory: Arc<Directory>,
}

impl CoordinatorAddresses {
    pub fn new(directory: &Arc<Directory>) -> Self {
        CoordinatorAddresses {
            directory: directory.clone(),
        }
    }
}

impl Filter for CoordinatorAddresses {
    fn name(&self) -> &'static str {
        "coordinator-addresses"
    }

    fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
        api_key == ApiKey::FindCoordinator
    }

    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        let version = response.version();
        response.edit(|body| match body {
            ResponseKind::FindCoordinator(body) => {
                rewrite(body, version, Addressing::new(&self.directory, env))
            }
            _ => false,
        })
    }
}

fn rewrite(response: &mut FindCoordinatorResponse, version: i16, to: Addressing) -> bool {
    if version < BATCHED_VERSION && response.node_id.0 >= 0 {
        let r = &mut *response;
        if !to.readdress(r.node_id.0, &mut r.host, &mut r.port, None) {
            clear(&mut r.node_id.0, &mut r.host, &mut r.port);
        }
    }
    for c in response
        .coordinators
        .iter_mut()
        .filter(|c| c.node_id.0 >= 0)
    {
        if !to.readdress(c.node_id.0, &mut c.host, &mut c.port, None) {
            clear(&mut c.node_id.0, &mut c.host, &mut c.port);
            c.error_code = COORDINATOR_NOT_AVAILABLE;
        }
    }
    true
}

/// Retriable: the client looks the coordinator up again.
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

fn clear(id: &mut i32, host: &mut kafka_protocol::protocol::StrBytes, port: &mut i32) {
    *id = -1;
    *host = Default::default();
    *port = -1;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorResponse};
    use kafka_protocol::protocol::StrBytes;

    use super::CoordinatorAddresses;
    use crate::directory::tests::directory;
    use crate::proxy::filters::test_support::*;

    #[test]
    fn top_level_coordinator_is_rewritten_in_old_versions() {
        let filter = CoordinatorAddresses::new(&std::sync::Arc::new(directory(8)));
        for version in 0..=3 {
            let body = FindCoordinatorResponse::default()
                .with_node_id(BrokerId(2))
                .with_host(StrBytes::from_static_str("10.9.9.9"))
                .with_port(39093);
            let frame = broker_response(ApiKey::FindCoordinator, version, &body);
            let out: FindCoordinatorResponse =
                client_view(&filter, ApiKey::FindCoordinator, version, frame);
            assert_eq!(out.host.as_str(), "proxy.example");
            assert_eq!(out.port, 9200);
        }
    }

    #[test]
    fn every_batched_coordinator_is_rewritten_and_errors_kept() {
        let filter = CoordinatorAddresses::new(&std::sync::Arc::new(directory(8)));
        for version in 4..=6 {
            let found = Coordinator::default()
                .with_key(StrBytes::from_static_str("g1"))
                .with_node_id(BrokerId(3))
                .with_host(StrBytes::from_static_str("10.9.9.9"))
                .with_port(39094);
            let missing = Coordinator::default()
                .with_key(StrBytes::from_static_str("g2"))
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(15);
            let body = FindCoordinatorResponse::default().with_coordinators(vec![found, missing]);
            let frame = broker_response(ApiKey::FindCoordinator, version, &body);
            let out: FindCoordinatorResponse =
                client_view(&filter, ApiKey::FindCoordinator, version, frame);
            assert_eq!(out.coordinators[0].host.as_str(), "proxy.example");
            assert_eq!(out.coordinators[0].port, 9200);
            assert_eq!(out.coordinators[1].port, -1);
            assert_eq!(out.coordinators[1].error_code, 15);
        }
    }
}
