//! DescribeCluster: the admin client's view of the brokers, same treatment as Metadata.

use kafka_protocol::messages::DescribeClusterResponse;

use super::readdress;
use crate::directory::Directory;

pub fn rewrite(response: &mut DescribeClusterResponse, dir: &Directory) -> bool {
    response.brokers.retain_mut(|b| {
        readdress(
            dir,
            b.broker_id.0,
            &mut b.host,
            &mut b.port,
            b.rack.as_ref(),
        )
    });
    true
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterResponse};
    use kafka_protocol::protocol::StrBytes;

    use crate::directory::tests::directory;
    use crate::rewrite::test_support::*;

    #[test]
    fn brokers_are_rewritten_in_every_version() {
        let dir = directory(8);
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
                client_view(&dir, ApiKey::DescribeCluster, version, frame);
            assert_eq!(out.brokers[0].host.as_str(), "proxy.example");
            assert_eq!(out.brokers[0].port, 9200);
            assert_eq!(out.controller_id, BrokerId(1));
        }
    }
}
