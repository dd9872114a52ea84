//! Shared by the gossip tests: what a test node publishes.
#![allow(dead_code)]

use flotilla_gossip::{Lifecycle, NodeState};

pub const CLUSTER: &str = "test-cluster";

/// Node `node_id` on 127.0.0.`node_id`, serving; nodes other than 1 are in zone-b.
pub fn state(node_id: u64) -> NodeState {
    NodeState {
        node_id,
        advertised_host: format!("127.0.0.{node_id}"),
        bootstrap_port: 9192,
        identity_port_base: 9200,
        zone: (node_id != 1).then(|| "zone-b".to_string()),
        raft_addr: format!("127.0.0.{node_id}:9700"),
        admin_addr: format!("127.0.0.{node_id}:9644"),
        incarnation: format!("incarnation-{node_id}"),
        lifecycle: Lifecycle::Serving,
        load: node_id * 10,
        feature_level: 1,
        tls_identity_port_base: None,
    }
}
