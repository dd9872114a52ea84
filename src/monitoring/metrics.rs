//! The traffic metrics: per topic, per client id, per principal and per client software,
//! each label capped (see `labels`), and the produce and fetch latency through the proxy.
//!
//! A slot holds the Prometheus children of one label value, resolved once; connections
//! keep the slots they use and bump them with one atomic add each, so counting takes no
//! lock and no label lookup per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flotilla_config::MonitoringConfig;
use prometheus::{
    CounterVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts,
};

use crate::metrics::Families;

use super::labels::CappedLabels;

/// Latency buckets, in seconds: from a fast acks=1 produce to a long-polling fetch.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One topic's counters.
pub struct TopicSlot {
    pub name: Arc<str>,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    pub records_in: IntCounter,
    pub records_out: IntCounter,
    pub produce_requests: IntCounter,
    pub fetch_requests: IntCounter,
    errors: IntCounterVec,
}

impl TopicSlot {
    /// Partitions answered with `error_code` (rare: resolved on each use).
    pub fn error(&self, api: &str, error_code: i16) {
        self.errors
            .with_label_values(&[&self.name, api, super::error_name(error_code)])
            .inc();
    }
}

/// One client id's counters; requests and records are for `/api/v1/traffic` only.
pub struct ClientSlot {
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    pub requests: AtomicU64,
    pub records: AtomicU64,
    throttle: prometheus::Counter,
}

impl ClientSlot {
    pub fn add_requests(&self, n: u64) {
        self.requests.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_records(&self, n: u64) {
        self.records.fetch_add(n, Ordering::Relaxed);
    }
}

pub struct PrincipalSlot {
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
}

pub struct TrafficMetrics {
    pub topics: CappedLabels<TopicSlot>,
    pub clients: CappedLabels<ClientSlot>,
    pub principals: CappedLabels<PrincipalSlot>,
    /// Connections by client software (name, version), as one `name\0version` value.
    pub software: CappedLabels<IntGauge>,
    pub produce_latency: Histogram,
    pub fetch_latency: Histogram,
    /// Frame bytes by (client zone, node zone), keyed `client_zone\0node_zone`; client
    /// zones come from client ids too, so they are capped like client ids.
    pub zones: CappedLabels<ZoneSlot>,
    /// Frame bytes by (node zone, broker rack, direction): what crosses zones behind the
    /// proxy.
    pub rack_bytes: IntCounterVec,
}

/// The byte counters of one (client zone, node zone) pair.
pub struct ZoneSlot {
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
}

impl TrafficMetrics {
    pub(crate) fn new(r: &Families, config: &MonitoringConfig) -> TrafficMetrics {
        let folded = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "flotilla_metric_labels_folded_total",
                    "Label values counted under `other` because their label reached its cap \
                     (monitoring.max_topics, monitoring.max_clients)",
                ),
                &["label"],
            ),
        );
        let directed = |name: &str, help: &str, label: &str| {
            register(
                r,
                IntCounterVec::new(Opts::new(name, help), &[label, "direction"]),
            )
        };
        let topic_bytes = directed(
            "flotilla_topic_bytes_total",
            "Record bytes produced (in) and fetched (out), by topic",
            "topic",
        );
        let topic_records = directed(
            "flotilla_topic_records_total",
            "Records produced (in) and fetched (out), by topic, from the batch headers",
            "topic",
        );
        let topic_requests = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "flotilla_topic_requests_total",
                    "Produce requests naming the topic, and Fetch responses carrying it",
                ),
                &["topic", "api"],
            ),
        );
        let topic_errors = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "flotilla_topic_errors_total",
                    "Partitions answered with an error, by topic, API and Kafka error name",
                ),
                &["topic", "api", "error"],
            ),
        );
        let client_bytes = directed(
            "flotilla_client_bytes_total",
            "Frame bytes from (in) and to (out) clients, by client id",
            "client_id",
        );
        let principal_bytes = directed(
            "flotilla_principal_bytes_total",
            "Frame bytes from (in) and to (out) clients, by authenticated principal",
            "principal",
        );
        let throttle = register(
            r,
            CounterVec::new(
                Opts::new(
                    "flotilla_client_throttle_seconds_total",
                    "Time the proxy held clients' requests back under a quota, by client id",
                ),
                &["client_id"],
            ),
        );
        let software = register(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "flotilla_client_software",
                    "Client connections open now, by client software name and version \
                     (ApiVersions v3+; `unknown` for older clients)",
                ),
                &["name", "version"],
            ),
        );
        let latency = register(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "flotilla_request_latency_seconds",
                    "Produce and fetch latency through the proxy: from the request read off \
                     the client to the response written back",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["api"],
            ),
        );
        let zone_bytes = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "flotilla_zone_bytes_total",
                    "Frame bytes from (in) and to (out) clients, by the client's zone and the \
                     node's (`none` where unknown)",
                ),
                &["client_zone", "node_zone", "direction"],
            ),
        );
        let rack_bytes = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "flotilla_rack_bytes_total",
                    "Frame bytes to (in) and from (out) brokers, by the node's zone and the \
                     broker's rack (`none` where unknown, `bootstrap` for bootstrap \
                     connections)",
                ),
                &["node_zone", "broker_rack", "direction"],
            ),
        );
        let folded_of = |label: &str| folded.with_label_values(&[label]);
        TrafficMetrics {
            topics: CappedLabels::new(config.max_topics, folded_of("topic"), move |topic| {
                let topic_of =
                    |vec: &IntCounterVec, second: &str| vec.with_label_values(&[topic, second]);
                TopicSlot {
                    name: Arc::from(topic),
                    bytes_in: topic_of(&topic_bytes, "in"),
                    bytes_out: topic_of(&topic_bytes, "out"),
                    records_in: topic_of(&topic_records, "in"),
                    records_out: topic_of(&topic_records, "out"),
                    produce_requests: topic_of(&topic_requests, "produce"),
                    fetch_requests: topic_of(&topic_requests, "fetch"),
                    errors: topic_errors.clone(),
                }
            }),
            clients: CappedLabels::new(config.max_clients, folded_of("client_id"), move |id| {
                ClientSlot {
                    bytes_in: client_bytes.with_label_values(&[id, "in"]),
                    bytes_out: client_bytes.with_label_values(&[id, "out"]),
                    requests: AtomicU64::new(0),
                    records: AtomicU64::new(0),
                    throttle: throttle.with_label_values(&[id]),
                }
            }),
            principals: CappedLabels::new(
                config.max_clients,
                folded_of("principal"),
                move |principal| PrincipalSlot {
                    bytes_in: principal_bytes.with_label_values(&[principal, "in"]),
                    bytes_out: principal_bytes.with_label_values(&[principal, "out"]),
                },
            ),
            software: CappedLabels::new(config.max_clients, folded_of("software"), move |key| {
                let (name, version) = key.split_once('\0').unwrap_or((key, key));
                software.with_label_values(&[name, version])
            }),
            produce_latency: latency.with_label_values(&["produce"]),
            fetch_latency: latency.with_label_values(&["fetch"]),
            zones: CappedLabels::new(MAX_ZONES, folded_of("client_zone"), move |key| {
                let (client, node) = key.split_once('\0').unwrap_or((key, "none"));
                ZoneSlot {
                    bytes_in: zone_bytes.with_label_values(&[client, node, "in"]),
                    bytes_out: zone_bytes.with_label_values(&[client, node, "out"]),
                }
            }),
            rack_bytes,
        }
    }

    /// Counts `seconds` a quota held back a request of `client_id` (capped like every
    /// client id label).
    pub fn record_throttle(&self, client_id: &str, seconds: f64) {
        if seconds > 0.0 {
            self.clients.slot(client_id).throttle.inc_by(seconds);
        }
    }

    /// The gauge of connections running `name` `version`.
    pub fn software_gauge(&self, name: &str, version: &str) -> Arc<IntGauge> {
        self.software.slot(&format!("{name}\0{version}"))
    }
}

/// Client zones counted apart; more are counted as `other`.
const MAX_ZONES: usize = 64;

fn register<M: prometheus::core::Collector + Clone + 'static>(
    r: &Families,
    metric: prometheus::Result<M>,
) -> M {
    r.register(metric.expect("valid metric"))
}
