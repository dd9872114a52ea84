//! Traffic monitoring: per-topic, per-client and per-principal metrics, produce and fetch
//! latency, the client connections and what they do, and the rates `proxyctl top` shows.
//!
//! Everything is counted on the data path without decoding anything: topics, records,
//! codecs and producer ids come from stepping over Produce requests and Fetch responses
//! and their record batch headers (`protocol::topic_scan`, `protocol::batches`), client
//! facts from a few header bytes of the requests that carry them. Label values come from
//! clients, so each label is capped (`labels`). The admin API serves this node's view at
//! `/api/v1/traffic` and `/api/v1/clients`, and the fleet's by asking every live node
//! (`admin::traffic`).

pub mod connection;
pub mod labels;
pub mod metrics;
pub mod rates;
pub mod topic_ids;

use std::sync::Arc;

use flotilla_config::MonitoringConfig;

use crate::api::{ClientConnection, TrafficReport};
use crate::metrics::Metrics;
use crate::protocol::batches::Codecs;
pub use crate::protocol::error_name;
use crate::proxy::clients::Connected;
use metrics::TrafficMetrics;
use rates::Rates;
use topic_ids::TopicIds;

/// The node's traffic monitoring: its metrics, the topic names behind topic ids, and the
/// samples its rates are computed from.
pub struct Traffic {
    metrics: Arc<Metrics>,
    pub topic_ids: TopicIds,
    rates: Rates,
    window: std::time::Duration,
}

impl Traffic {
    pub fn new(metrics: Arc<Metrics>, config: &MonitoringConfig) -> Traffic {
        Traffic {
            metrics,
            topic_ids: TopicIds::default(),
            rates: Rates::new(config.rate_window),
            window: config.rate_window,
        }
    }

    pub fn metrics(&self) -> &TrafficMetrics {
        &self.metrics.traffic
    }

    /// Samples the counters for the rates, for the life of the node.
    pub async fn sample_forever(&self) {
        let mut timer = tokio::time::interval(rates::SAMPLE_EVERY);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            self.rates.sample(self.metrics());
        }
    }

    /// This node's rates now.
    pub fn report(&self, node: u64) -> TrafficReport {
        let (topics, clients) = self.rates.current(self.metrics());
        TrafficReport {
            answered_by: node,
            nodes: vec![node],
            missing: Vec::new(),
            window_seconds: self.window.as_secs_f64(),
            topics,
            clients,
        }
    }
}

/// One open connection as `/api/v1/clients` shows it.
pub fn describe(node: u64, connection: &Connected) -> ClientConnection {
    let facts = connection.facts();
    let (software_name, software_version) = facts.software.clone().unzip();
    ClientConnection {
        node,
        address: connection.peer.to_string(),
        identity: connection.identity.clone(),
        client_id: facts.client_id.clone(),
        software_name,
        software_version,
        principal: facts.principal.clone(),
        connected_seconds: connection.opened.elapsed().as_secs(),
        acks: facts.acks_levels(),
        codecs: Codecs(facts.codecs)
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        idempotent: facts.idempotent,
        transactional_id: facts.transactional_id.clone(),
        groups: facts.groups.clone(),
        zone: facts.zone.clone(),
    }
}

#[cfg(test)]
mod tests;
