//! DescribeCluster across clusters: the cluster `default` answers for the fleet (its
//! cluster id, its controller), with every cluster's brokers as virtual identities. A
//! request for the controllers (KIP-919) is the cluster `default`'s alone.

use flotilla_raft::routes::DEFAULT_CLUSTER;
use futures::future::join_all;
use kafka_protocol::messages::{DescribeClusterRequest, ResponseKind};

use super::{call, exchanged, Routed};
use crate::proxy::filter::Verdict;

/// DescribeCluster's endpoint type of the controllers.
const CONTROLLERS: i8 = 2;

pub(super) fn exchange(routed: Routed, body: DescribeClusterRequest, version: i16) -> Verdict {
    exchanged(async move {
        let clusters = match body.endpoint_type {
            CONTROLLERS => vec![routed.cluster(DEFAULT_CLUSTER)?],
            _ => routed.configured(),
        };
        let answers = join_all(clusters.iter().map(|c| call(c, version, &body))).await;
        let mut merged = None;
        let mut brokers = Vec::new();
        for (cluster, answer) in clusters.iter().zip(answers) {
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) if cluster.name == DEFAULT_CLUSTER => return Err(e),
                Err(e) => {
                    tracing::warn!("DescribeCluster: {e}");
                    continue;
                }
            };
            for mut broker in answer.brokers.iter().cloned() {
                broker.broker_id = routed.virtual_id(&cluster.name, broker.broker_id);
                if broker.broker_id.0 >= 0 {
                    brokers.push(broker);
                }
            }
            if cluster.name == DEFAULT_CLUSTER {
                merged = Some(answer);
            }
        }
        let mut merged = merged.ok_or("the cluster default gave no DescribeCluster answer")?;
        if body.endpoint_type != CONTROLLERS {
            merged.brokers = brokers;
        }
        Ok(ResponseKind::DescribeCluster(merged))
    })
}
