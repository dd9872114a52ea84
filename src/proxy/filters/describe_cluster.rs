//! DescribeCluster: the admin client's view of the brokers, same treatment as Metadata.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, DescribeClusterResponse, ResponseKind};

use super::Addressing;
use crate::directory::Directory;
use crate::proxy::filter::{Env, Filter};
use crate::proxy::message::Response;

pub struct DescribeClusterAddresses {
    directory: Arc<Directory>,
}

impl DescribeClusterAddresses {
    pub fn new(directory: &Arc<Directory>) -> Self {
        DescribeClusterAddresses {
            directory: directory.clone(),
        }
    }
}

impl Filter for DescribeClusterAddresses {
    fn name(&self) -> &'static str {
        "describe-cluster-addresses"
    }

    fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
        api_key == ApiKey::DescribeCluster
    }

    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        response.edit(|body| match body {
            ResponseKind::DescribeCluster(body) => {
                rewrite(body, Addressing::new(&self.directory, env))
            }
            _ => false,
        })
    }
}

fn rewrite(response: &mut DescribeClusterResponse, to: Addressing) -> bool {
    response
        .brokers
        .retain_mut(|b| to.readdress(b.broker_id.0, &mut b.host, &mut b.port, b.rack.as_ref()));
    true
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterResponse};
    use kafka_protocol::protocol::StrBytes;

    use super::DescribeClusterAddresses;
    use crate::directory::tests::directory;
    use crate::proxy::filters::test_support::*;

    #[test]
    fn brokers_are_rewritten_in_every_version() {
        let filter = DescribeClusterAddresses::new(&std::sync::Arc::new(directory(8)));
        for version in 0..=2 {
            let body = DescribeClusterResponse::default()
                .with_cluster_id(StrBytes::from_static_str("c1"))
                .with_controller_id(BrokerId(1))
                .with_brokers(vec![DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("10.9.9.9"))
                    .with_port(39092)]);
            let frame = broker_response(ApiKey::DescribeCluster, version, &body);
            let out: DescribeClusterResponse =
                client_view(&filter, ApiKey::DescribeCluster, version, frame);
            assert_eq!(out.brokers[0].host.as_str(), "proxy.example");
            assert_eq!(out.brokers[0].port, 9200);
            assert_eq!(out.controller_id, BrokerId(1));
        }
    }
}
