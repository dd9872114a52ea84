//! Prometheus metrics of one node. Everything a connection counts goes through here, so
//! the names and labels are defined once.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_config::MonitoringConfig;
use flotilla_raft::QuotaKind;
use prometheus::core::Collector;
use prometheus::proto::MetricType;
use prometheus::{
    Counter, CounterVec, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::monitoring::metrics::TrafficMetrics;

pub struct Metrics {
    registry: Registry,
    /// Every series the node can export (see [`Families`]).
    exported: ExportedSeries,
    connections_opened: IntCounterVec,
    connections_active: IntGaugeVec,
    connections_closed: IntCounterVec,
    requests: IntCounterVec,
    bytes: IntCounterVec,
    protocol_errors: IntCounterVec,
    filter_actions: IntCounterVec,
    pub upstream_connect_failures: IntCounter,
    /// By backend cluster.
    pub backend_refresh_failures: IntCounterVec,
    /// Brokers each backend cluster's own Metadata listed last.
    pub backend_brokers: IntGaugeVec,
    pub identities: IntGauge,
    pub identity_listeners: IntGauge,
    /// `limits.max_connections`, so an alert can compare the open connections with it.
    pub connections_limit: IntGauge,
    pub fleet: FleetMetrics,
    pub security: SecurityMetrics,
    pub quotas: QuotaMetrics,
    pub breakers: BreakerMetrics,
    pub offset_resets: OffsetResetMetrics,
    /// Per topic, client id, principal and client software, and request latency.
    pub traffic: TrafficMetrics,
}

/// What client quotas did on this node, by kind (`producer_byte_rate`,
/// `consumer_byte_rate`, `request_rate`).
pub struct QuotaMetrics {
    /// Counters by kind, resolved once: [`QuotaKind::VALUES`] order.
    throttled_requests: [IntCounter; 3],
    throttle_seconds: [Counter; 3],
}

impl QuotaMetrics {
    fn new(r: &Families) -> Self {
        let requests = counter_vec(
            r,
            "flotilla_quota_throttled_requests_total",
            "Requests (Fetch responses for consumer_byte_rate) that earned their client a \
             throttle, by quota kind",
            &["kind"],
        );
        let seconds = r.register(
            CounterVec::new(
                Opts::new(
                    "flotilla_quota_throttle_seconds_total",
                    "Throttle time given to clients, by quota kind",
                ),
                &["kind"],
            )
            .expect("valid metric"),
        );
        let by_kind = |i: usize| QuotaKind::VALUES[i].kafka_name();
        QuotaMetrics {
            throttled_requests: std::array::from_fn(|i| requests.with_label_values(&[by_kind(i)])),
            throttle_seconds: std::array::from_fn(|i| seconds.with_label_values(&[by_kind(i)])),
        }
    }

    /// Counts a throttle of `kind`.
    fn throttled(&self, kind: QuotaKind, throttle: Duration) {
        let i = QuotaKind::VALUES
            .iter()
            .position(|&k| k == kind)
            .expect("every kind is in VALUES");
        self.throttled_requests[i].inc();
        self.throttle_seconds[i].inc_by(throttle.as_secs_f64());
    }
}

/// Topic circuit breakers, as this node sees and enforces them.
pub struct BreakerMetrics {
    /// Breakers in force on this node now, by origin (manual, rule).
    pub open: IntGaugeVec,
    /// Partitions a breaker answered, by API (produce, fetch) and mode (hold, reject).
    pub actions: IntCounterVec,
    /// Breakers that came into force, as this node saw it, by origin.
    pub trips: IntCounterVec,
    /// Breakers that stopped being in force (closed, or their time ran out), by origin.
    pub closes: IntCounterVec,
    /// Batches of acks=0 producers dropped because their topic was covered.
    pub dropped_batches: IntCounter,
}

impl BreakerMetrics {
    fn new(r: &Families) -> Self {
        let open = r.register(
            IntGaugeVec::new(
                Opts::new(
                    "flotilla_breakers_open",
                    "Topic circuit breakers in force on this node, by origin",
                ),
                &["origin"],
            )
            .expect("valid metric"),
        );
        BreakerMetrics {
            open,
            actions: counter_vec(
                r,
                "flotilla_breaker_actions_total",
                "Partitions answered by a circuit breaker, by API and mode",
                &["api", "mode"],
            ),
            trips: counter_vec(
                r,
                "flotilla_breaker_trips_total",
                "Circuit breakers that came into force as this node saw it, by origin",
                &["origin"],
            ),
            closes: counter_vec(
                r,
                "flotilla_breaker_closes_total",
                "Circuit breakers closed or run out as this node saw it, by origin",
                &["origin"],
            ),
            dropped_batches: counter(
                r,
                "flotilla_breaker_dropped_batches_total",
                "Record batches of acks=0 producers dropped because a breaker covered their topic",
            ),
        }
    }
}

/// TLS, authentication and authorization outcomes.
/// Online consumer offset resets: the leader's driving and every node's fencing.
pub struct OffsetResetMetrics {
    /// Resets in the committed control state, by state (pending, applying, done, expired,
    /// cancelled); the same on every node.
    pub by_state: IntGaugeVec,
    /// From a reset's creation to `done`, on the leader that finished it.
    pub duration: Histogram,
    /// Group members the leader removed from a group under reset.
    pub evicted_members: IntCounter,
    /// Group requests this node refused because their group is under reset, by API.
    pub refused_requests: IntCounterVec,
    /// Offset commits of a group under reset that this node dropped as stale (carrying
    /// positions from before the reset).
    pub stale_commits: IntCounter,
}

impl OffsetResetMetrics {
    fn new(r: &Families) -> Self {
        OffsetResetMetrics {
            by_state: r.register(
                IntGaugeVec::new(
                    Opts::new(
                        "flotilla_offset_resets",
                        "Consumer offset resets in the committed control state, by state",
                    ),
                    &["state"],
                )
                .expect("valid metric"),
            ),
            duration: r.register(
                Histogram::with_opts(
                    HistogramOpts::new(
                        "flotilla_offset_reset_duration_seconds",
                        "Time from an offset reset's creation to its completion",
                    )
                    .buckets(vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0]),
                )
                .expect("valid metric"),
            ),
            evicted_members: counter(
                r,
                "flotilla_offset_reset_evicted_members_total",
                "Group members removed from a consumer group under offset reset",
            ),
            refused_requests: counter_vec(
                r,
                "flotilla_offset_reset_refused_requests_total",
                "Group requests refused because their group is under offset reset, by API",
                &["api"],
            ),
            stale_commits: counter(
                r,
                "flotilla_offset_reset_stale_commits_total",
                "Offset commits dropped as stale because their group is under offset reset",
            ),
        }
    }
}

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
    fn new(r: &Families) -> Self {
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
    /// Identities the committed table gives this node.
    pub identities_owned: IntGauge,
    pub takeovers: IntCounter,
    pub degraded: IntGauge,
    /// 1 while this node reaches no broker (see `cluster::backend_reach`).
    pub backend_cut_off: IntGauge,
    /// Gossip incarnations now ignored because their Raft address is not the recorded one.
    pub gossip_impostors: IntGauge,
    pub gossip_impostors_detected: IntCounter,
    /// Peers the Raft RPC listener refused over TLS, by reason (handshake, identity).
    pub raft_rpc_tls_refusals: IntCounterVec,
}

impl FleetMetrics {
    fn new(r: &Families) -> Self {
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
            identities_owned: gauge(
                r,
                "flotilla_identities_owned",
                "Identities the committed assignment gives this node to serve",
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
            backend_cut_off: gauge(
                r,
                "flotilla_backend_cut_off",
                "1 while this node has reached no broker for longer than the takeover \
                 deadline, and so gives its identities up",
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

/// The node's registry, remembering every family registered in it. A labelled family shows
/// in `Registry::gather()` only once it has a child, yet the shipped alert rules and
/// dashboard must be checked against every series the node can export.
pub(crate) struct Families {
    registry: Registry,
    series: RefCell<ExportedSeries>,
}

/// Series names as the text exposition writes them, each with its label names.
pub type ExportedSeries = BTreeMap<String, Vec<String>>;

impl Families {
    fn new() -> Families {
        Families {
            registry: Registry::new(),
            series: RefCell::default(),
        }
    }

    pub(crate) fn register<C: Collector + Clone + 'static>(&self, metric: C) -> C {
        let mut series = self.series.borrow_mut();
        for (desc, family) in metric.desc().into_iter().zip(metric.collect()) {
            let labels = desc.const_label_pairs.iter().map(|l| l.name().to_string());
            let labels: Vec<String> = labels.chain(desc.variable_labels.clone()).collect();
            for (name, extra) in series_names(family.name(), family.get_field_type()) {
                let extra = extra.map(str::to_string);
                series.insert(name, labels.iter().cloned().chain(extra).collect());
            }
        }
        self.registry
            .register(Box::new(metric.clone()))
            .expect("metric registered once");
        metric
    }
}

/// The names a family's samples carry in the text exposition, each with the label the
/// type adds to it (a histogram bucket's `le`, a summary's `quantile`).
fn series_names(family: &str, kind: MetricType) -> Vec<(String, Option<&'static str>)> {
    let suffixes: &[(&str, Option<&'static str>)] = match kind {
        MetricType::HISTOGRAM => &[("_bucket", Some("le")), ("_sum", None), ("_count", None)],
        MetricType::SUMMARY => &[("", Some("quantile")), ("_sum", None), ("_count", None)],
        _ => &[("", None)],
    };
    suffixes
        .iter()
        .map(|(suffix, extra)| (format!("{family}{suffix}"), *extra))
        .collect()
}

fn counter_vec(registry: &Families, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registry.register(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

fn gauge_vec(registry: &Families, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registry.register(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

fn gauge(registry: &Families, name: &str, help: &str) -> IntGauge {
    registry.register(IntGauge::new(name, help).expect("valid metric"))
}

fn counter(registry: &Families, name: &str, help: &str) -> IntCounter {
    registry.register(IntCounter::new(name, help).expect("valid metric"))
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_monitoring(&MonitoringConfig::default())
    }

    /// The node's metrics, with the traffic labels capped as `monitoring` says.
    pub fn with_monitoring(monitoring: &MonitoringConfig) -> Self {
        let r = Families::new();
        let connections_active = r.register(
            IntGaugeVec::new(
                Opts::new("flotilla_connections_active", "Client connections open now"),
                &["identity"],
            )
            .expect("valid metric"),
        );
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
            backend_refresh_failures: counter_vec(
                &r,
                "flotilla_backend_refresh_failures_total",
                "Failed broker list refreshes, by backend cluster",
                &["cluster"],
            ),
            backend_brokers: gauge_vec(
                &r,
                "flotilla_backend_brokers",
                "Brokers each backend cluster's own Metadata listed last",
                &["cluster"],
            ),
            identities: gauge(&r, "flotilla_identities", "Identities known to this node"),
            identity_listeners: gauge(
                &r,
                "flotilla_identity_listeners",
                "Identity ports this node listens on",
            ),
            connections_limit: gauge(
                &r,
                "flotilla_connections_limit",
                "Client connections this node accepts at once (limits.max_connections)",
            ),
            fleet: FleetMetrics::new(&r),
            security: SecurityMetrics::new(&r),
            quotas: QuotaMetrics::new(&r),
            breakers: BreakerMetrics::new(&r),
            offset_resets: OffsetResetMetrics::new(&r),
            traffic: TrafficMetrics::new(&r, monitoring),
            // Last: fields are built in the order written, so every family is in by now.
            exported: r.series.into_inner(),
            registry: r.registry,
        }
    }

    /// Every series name this node can export, with its label names: labelled families
    /// before their first sample too, and a histogram's `_bucket`, `_sum` and `_count`.
    pub fn exported(&self) -> &ExportedSeries {
        &self.exported
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

    /// Counts a throttle of quota `kind` given to `client_id`, by kind and by client id
    /// (`flotilla_client_throttle_seconds_total`).
    pub fn record_throttle(&self, kind: QuotaKind, client_id: &str, throttle: Duration) {
        self.quotas.throttled(kind, throttle);
        self.traffic
            .record_throttle(client_id, throttle.as_secs_f64());
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

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec};

    #[test]
    fn families_list_labelled_series_before_their_first_sample() {
        let metrics = Metrics::new();
        assert!(
            !metrics.render().contains("flotilla_requests_total"),
            "no request counted yet, so the exposition has no such series"
        );
        let labels = &metrics.exported()["flotilla_requests_total"];
        assert_eq!(labels, &["api", "identity"]);
        assert_eq!(
            metrics.exported()["flotilla_identities"],
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_histogram_exports_bucket_sum_and_count() {
        let families = Families::new();
        let opts = HistogramOpts::new("flotilla_test_seconds", "a histogram");
        families.register(HistogramVec::new(opts, &["api"]).expect("valid metric"));
        let series = families.series.into_inner();
        let names: Vec<&str> = series.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "flotilla_test_seconds_bucket",
                "flotilla_test_seconds_count",
                "flotilla_test_seconds_sum"
            ]
        );
        assert_eq!(series["flotilla_test_seconds_bucket"], ["api", "le"]);
        assert_eq!(series["flotilla_test_seconds_sum"], ["api"]);
    }
}
