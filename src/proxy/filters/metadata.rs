//! Metadata: the broker list is what clients connect to, so every entry is replaced by
//! the identity's advertised address. Partition leaders and replicas are broker ids, which
//! are identities already, and stay as they are.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, MetadataResponse, ResponseKind};

use super::Addressing;
use crate::directory::Directory;
use crate::proxy::filter::{Env, Filter};
use crate::proxy::message::Response;

pub struct MetadataAddresses {
    directory: Arc<Directory>,
}

impl MetadataAddresses {
    pub fn new(directory: &Arc<Directory>) -> Self {
        MetadataAddresses {
            directory: directory.clone(),
        }
    }
}

impl Filter for MetadataAddresses {
    fn name(&self) -> &'static str {
        "metadata-addresses"
    }

    fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
        api_key == ApiKey::Metadata
    }

    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        response.edit(|body| match body {
            ResponseKind::Metadata(body) => rewrite(body, Addressing::new(&self.directory, env)),
            _ => false,
        })
    }
}

fn rewrite(response: &mut MetadataResponse, to: Addressing) -> bool {
    response
        .brokers
        .retain_mut(|b| to.readdress(b.node_id.0, &mut b.host, &mut b.port, b.rack.as_ref()));
    true
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::{ApiKey, BrokerId, MetadataResponse};
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    use super::MetadataAddresses;
    use crate::directory::tests::directory;
    use crate::proxy::filters::test_support::*;

    fn broker(id: i32, port: i32) -> MetadataResponseBroker {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_static_str("10.9.9.9"))
            .with_port(port)
            .with_rack(Some(StrBytes::from_static_str("rack-a")))
    }

    proptest! {
        /// Every version, any set of brokers: only advertised addresses come out, one
        /// distinct port per identity, and the rest of the response is untouched.
        #[test]
        fn brokers_get_advertised_addresses(
            version in 0i16..=13,
            ids in proptest::collection::btree_set(0i32..1000, 0..8),
            controller in -1i32..1000,
        ) {
            let dir = std::sync::Arc::new(directory(64));
            let body = MetadataResponse::default()
                .with_brokers(ids.iter().map(|&id| broker(id, 39092 + id)).collect())
                .with_controller_id(BrokerId(controller))
                .with_cluster_id(Some(StrBytes::from_static_str("c1")));
            let frame = broker_response(ApiKey::Metadata, version, &body);
            let filter = MetadataAddresses::new(&dir);
            let out: MetadataResponse = client_view(&filter, ApiKey::Metadata, version, frame);
            let mut ports: Vec<i32> = out.brokers.iter().map(|b| b.port).collect();
            ports.dedup();
            prop_assert_eq!(ports.len(), ids.len());
            for b in &out.brokers {
                prop_assert_eq!(b.host.as_str(), "proxy.example");
                let slot = dir.slot_of(b.node_id.0).unwrap();
                prop_assert_eq!(b.port, 9200 + i32::from(slot));
            }
            if version >= 1 {
                prop_assert_eq!(out.controller_id, BrokerId(controller));
            }
        }
    }

    #[test]
    fn brokers_beyond_the_slot_limit_are_dropped_not_leaked() {
        let filter = MetadataAddresses::new(&std::sync::Arc::new(directory(1)));
        let body = MetadataResponse::default().with_brokers(vec![broker(1, 1), broker(2, 2)]);
        let frame = broker_response(ApiKey::Metadata, 12, &body);
        let out: MetadataResponse = client_view(&filter, ApiKey::Metadata, 12, frame);
        assert_eq!(out.brokers.len(), 1);
        assert_eq!(out.brokers[0].port, 9200);
    }
}
