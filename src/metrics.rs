//! Prometheus metrics of one node. Everything a connection counts goes through here, so
//! the names and labels are defined once.

use flotilla_config::MonitoringConfig;
use prometheus::core::Collector;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::monitoring::metrics::TrafficMetrics;

pub struct Metrics {
    registry: Registry,
    connections_opened: IntCounterVec,
    connections_active: IntGaugeVec,
    connections_closed: IntCounterVec,
    requests: IntCounterVec,
    bytes: IntCounterVec,
    protocol_errors: IntCounterVec,
    filter_actions: IntCounterVec,
    pub upstream_connect_failures: IntCounter,
    pub backend_refresh_failures: IntCounter,
    pub identities: IntGauge,
    pub identity_listeners: IntGauge,
    pub fleet: FleetMetrics,
    pub security: SecurityMetrics,
    /// Per topic, client id, principal and client software, and request latency.
    pub traffic: TrafficMetrics,
}

/// TLS, authentication and authorization outcomes.
pub struct SecurityMetrics {
    /// Reloads of the TLS listener files, by result (ok, error).
    pub tls_reloads: IntCounterVec,
    /// Client TLS handshakes that failed or timed out.
    pub tls_handshake_failures: IntCounter,
    /// Client authentications, by mechanism and result (ok, failed).
    pub authentications: IntCounterVec,
    /// ACL decisions, by resource type and decision (allowed, denied).
    pub acl_decisions: IntCounterVec,
    /// Admin API requests that needed credentials, by result (ok, unauthenticated,
    /// forbidden), and requests let through because none are asked for (open).
    pub admin_requests: IntCounterVec,
}

impl SecurityMetrics {
    fn new(r: &Registry) -> Self {
        SecurityMetrics {
            tls_reloads: counter_vec(
                r,
                "flotilla_tls_reloads_total",
                "Reloads of changed TLS listener files, by result",
                &["result"],
            ),
            tls_handshake_failures: counter(
                r,
                "flotilla_tls_handshake_failures_total",
                "Client TLS handshakes that failed or timed out",
            ),
            authentications: counter_vec(
                r,
                "flotilla_authentications_total",
                "Client SASL authentications, by mechanism and result",
                &["mechanism", "result"],
            ),
            acl_decisions: counter_vec(
                r,
                "flotilla_acl_decisions_total",
                "ACL decisions on client requests, by resource type and decision",
                &["resource_type", "decision"],
            ),
            admin_requests: counter_vec(
                r,
                "flotilla_admin_requests_total",
                "Admin API requests by authentication result (ok, unauthenticated, forbidden; \
                 open when no credentials are asked for); open paths are not counted",
                &["result"],
            ),
        }
    }
}

/// What a fleet member reports about Raft and gossip; zero on a standalone node.
pub struct FleetMetrics {
    pub raft_is_leader: IntGauge,
    pub raft_term: IntGauge,
    pub raft_last_applied: IntGauge,
    pub raft_voters: IntGauge,
    pub gossip_live_nodes: IntGauge,
    pub gossip_dead_nodes: IntGauge,
    pub assignment_epoch: IntGauge,
    pub takeovers: IntCounter,
    pub degraded: IntGauge,
    /// Gossip incarnations now ignored because their Raft address is not the recorded one.
    pub gossip_impostors: IntGauge,
    pub gossip_impostors_detected: IntCounter,
    /// Peers the Raft RPC listener refused over TLS, by reason (handshake, identity).
    pub raft_rpc_tls_refusals: IntCounterVec,
}

impl FleetMetrics {
    fn new(r: &Registry) -> Self {
        FleetMetrics {
            raft_is_leader: gauge(r, "flotilla_raft_is_leader", "1 on the Raft leader"),
            raft_term: gauge(r, "flotilla_raft_term", "Current Raft term"),
            raft_last_applied: gauge(
                r,
                "flotilla_raft_last_applied_index",
                "Last Raft log index applied to the control state",
            ),
            raft_voters: gauge(r, "flotilla_raft_voters", "Voters in the Raft group"),
            gossip_live_nodes: gauge(r, "flotilla_gossip_live_nodes", "Members gossip sees alive"),
            gossip_dead_nodes: gauge(r, "flotilla_gossip_dead_nodes", "Members gossip sees dead"),
            assignment_epoch: gauge(
                r,
                "flotilla_assignment_epoch",
                "Epoch of the committed identity assignment",
            ),
            takeovers: counter(
                r,
                "flotilla_takeovers_total",
                "Identities this node, as Raft leader, moved off dead nodes",
            ),
            degraded: gauge(
                r,
                "flotilla_degraded",
                "1 while the Raft group has no live leader",
            ),
            gossip_impostors: gauge(
                r,
                "flotilla_gossip_impostors",
                "Gossip members now ignored: their Raft address is not the one Raft recorded",
            ),
            gossip_impostors_detected: counter(
                r,
                "flotilla_gossip_impostors_total",
                "Gossip incarnations found claiming a Raft member's id from another Raft address",
            ),
            raft_rpc_tls_refusals: counter_vec(
                r,
                "flotilla_raft_rpc_tls_refusals_total",
                "Raft RPC peers refused: failed TLS handshakes, and requests whose sender's certificate does not name it",
                &["reason"],
            ),
        }
    }
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_monitoring(&MonitoringConfig::default())
    }

    /// The node's metrics, with the traffic labels capped as `monitoring` says.
    pub fn with_monitoring(monitoring: &MonitoringConfig) -> Self {
        let r = Registry::new();
        let connections_active = IntGaugeVec::new(
            Opts::new("flotilla_connections_active", "Client connections open now"),
            &["identity"],
        )
        .expect("valid metric");
        r.register(Box::new(connections_active.clone()))
            .expect("metric registered once");
        Metrics {
            connections_opened: counter_vec(
                &r,
                "flotilla_connections_opened_total",
                "Client connections accepted",
                &["identity"],
            ),
            connections_active,
            connections_closed: counter_vec(
                &r,
                "flotilla_connections_closed_total",
                "Client connections closed, by reason",
                &["reason"],
            ),
            requests: counter_vec(
                &r,
                "flotilla_requests_total",
                "Requests forwarded, by API and identity",
                &["api", "identity"],
            ),
            bytes: counter_vec(
                &r,
                "flotilla_bytes_total",
                "Frame bytes forwarded, by direction and identity",
                &["direction", "identity"],
            ),
            protocol_errors: counter_vec(
                &r,
                "flotilla_protocol_errors_total",
                "Connections closed for malformed or unsupported input, by kind",
                &["kind"],
            ),
            filter_actions: counter_vec(
                &r,
                "flotilla_filter_actions_total",
                "Requests a filter answered, delayed or closed the connection on",
                &["filter", "action"],
            ),
            upstream_connect_failures: counter(
                &r,
                "flotilla_upstream_connect_failures_total",
                "Failed connection attempts to backend brokers",
            ),
            backend_refresh_failures: counter(
                &r,
                "flotilla_backend_refresh_failures_total",
                "Failed broker list refreshes from the backend cluster",
            ),
            identities: gauge(&r, "flotilla_identities", "Identities known to this node"),
            identity_listeners: gauge(
                &r,
                "flotilla_identity_listeners",
                "Identity ports this node listens on",
            ),
            fleet: FleetMetrics::new(&r),
            security: SecurityMetrics::new(&r),
            traffic: TrafficMetrics::new(&r, monitoring),
            registry: r,
        }
    }

    /// Counters for one connection, resolved once so the hot path does no label lookups.
    pub fn connection(&self, identity: &str) -> ConnectionMetrics {
        self.connections_opened.with_label_values(&[identity]).inc();
        let active = self.connections_active.with_label_values(&[identity]);
        active.inc();
        ConnectionMetrics {
            identity: identity.to_string(),
            active,
            bytes_in: self
                .bytes
                .with_label_values(&["client_to_broker", identity]),
            bytes_out: self
                .bytes
                .with_label_values(&["broker_to_client", identity]),
            requests: Vec::new(),
        }
    }

    pub fn connection_closed(&self, reason: &str) {
        self.connections_closed.with_label_values(&[reason]).inc();
    }

    /// The counter of one filter's `action` (answer, delay, close).
    pub fn filter_action(&self, filter: &str, action: &str) -> IntCounter {
        self.filter_actions.with_label_values(&[filter, action])
    }

    /// Counts `seconds` a quota held back a request of `client_id`
    /// (`flotilla_client_throttle_seconds_total`).
    pub fn record_throttle(&self, client_id: &str, seconds: f64) {
        self.traffic.record_throttle(client_id, seconds);
    }

    pub fn protocol_error(&self, kind: &str) {
        self.protocol_errors.with_label_values(&[kind]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }

    /// Client connections open now, over all listeners.
    pub fn active_connections(&self) -> u64 {
        self.connections_active
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|m| m.get_gauge().get_value() as u64)
            .sum()
    }

    fn request_counter(&self, api: &str, identity: &str) -> IntCounter {
        self.requests.with_label_values(&[api, identity])
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub struct ConnectionMetrics {
    identity: String,
    active: IntGauge,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    requests: Vec<(i16, IntCounter)>,
}

impl ConnectionMetrics {
    pub fn request(&mut self, metrics: &Metrics, api_key: kafka_protocol::messages::ApiKey) {
        let key = api_key as i16;
        match self.requests.iter().find(|(k, _)| *k == key) {
            Some((_, counter)) => counter.inc(),
            None => {
                let counter = metrics.request_counter(&format!("{api_key:?}"), &self.identity);
                counter.inc();
                self.requests.push((key, counter));
            }
        }
    }
}

impl Drop for ConnectionMetrics {
    fn drop(&mut self) {
        self.active.dec();
    }
}
