//! Typed configuration for a flotilla node.
//!
//! Operators hand-edit these files, so everything here is strict: unknown keys are
//! refused (a typo must not silently fall back to a default), and every value is checked
//! at start with the dotted name of the offending field in the message. Command-line
//! flags override the file through [`Overrides`]; validation runs after they are applied,
//! so a bad flag is reported the same way as a bad file value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod admin;
mod monitoring;
mod security;
pub mod zones;

pub use admin::{AdminConfig, AdminScope, AdminTls, StaticToken};
pub use monitoring::MonitoringConfig;
pub use security::{
    AclConfig, ClusterTls, ListenerKind, ListenerTls, SaslMechanism, SaslTermination,
    ServiceCredentials, UpstreamTls,
};
pub use zones::valid_zone_name;

/// The whole configuration of one node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    pub backend: BackendConfig,
    /// Fleet membership; without it the node runs alone and owns every identity.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// TLS listeners for clients, beside the plaintext ones.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// SASL termination: the fleet authenticates clients itself. Without it SASL passes
    /// through to the brokers.
    #[serde(default)]
    pub sasl: Option<SaslTermination>,
    /// ACLs enforced by the fleet; without this section requests are not checked.
    #[serde(default)]
    pub acl: Option<AclConfig>,
    /// Credentials and HTTPS for the admin API; without it the API is open over HTTP.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Caps on the traffic metrics' labels, and the window of the traffic rates.
    #[serde(default)]
    pub monitoring: MonitoringConfig,
}

/// Who this node is and where clients reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Unique within the fleet.
    pub id: u64,
    /// The host name or address put into Metadata responses for this node.
    #[serde(default = "default_host")]
    pub advertised_host: String,
    /// The address the Kafka listeners bind to; defaults to `advertised_host`.
    #[serde(default)]
    pub listen_host: Option<String>,
    /// Port of the bootstrap listener: forwards to any healthy broker.
    #[serde(default = "default_bootstrap_port")]
    pub bootstrap_port: u16,
    /// Identity slot `s` is served on `identity_port_base + s`.
    #[serde(default = "default_identity_port_base")]
    pub identity_port_base: u16,
    /// How many identity slots (ports) this node may open; bounds the port range.
    #[serde(default = "default_max_identities")]
    pub max_identities: u16,
    /// Admin HTTP listener (metrics, health, JSON API).
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// Whether the plaintext listeners (`bootstrap_port`, `identity_port_base`) open; turn
    /// them off when every client must come over TLS.
    #[serde(default = "default_true")]
    pub plaintext: bool,
}

/// The Kafka clusters behind the fleet: this section's own servers, TLS and login are the
/// cluster `default`; `[backend.clusters.NAME]` adds others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `host:port` of one or more brokers; the rest are discovered through Metadata.
    pub bootstrap_servers: Vec<String>,
    /// How often the broker list is refreshed from the backend.
    #[serde(default = "default_metadata_refresh", with = "humantime_serde")]
    pub metadata_refresh: Duration,
    /// TLS to the brokers; plaintext if unset.
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    /// The proxy's own SASL login at the brokers.
    #[serde(default)]
    pub sasl: Option<ServiceCredentials>,
    /// Further backend clusters by name. Which topics, groups and transactional ids each
    /// one serves is fleet state (`proxyctl route`), not configuration.
    #[serde(default)]
    pub clusters: BTreeMap<String, BackendCluster>,
}

/// How this node reaches one backend cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendCluster {
    /// `host:port` of one or more brokers; the rest are discovered through Metadata.
    pub bootstrap_servers: Vec<String>,
    /// TLS to the brokers; plaintext if unset.
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    /// The proxy's own SASL login at the brokers.
    #[serde(default)]
    pub sasl: Option<ServiceCredentials>,
}

/// The name of the cluster `[backend]` itself describes.
pub const DEFAULT_CLUSTER: &str = "default";

/// Whether `name` may name a backend cluster: 1 to 64 letters, digits, `-` or `_`.
pub fn valid_cluster_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// How this node finds and joins its fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Nodes only gossip with nodes of the same cluster id.
    pub id: String,
    /// Failure domain (rack, availability zone); identities move within a zone first,
    /// and clients of the zone are served by its nodes.
    #[serde(default)]
    pub zone: Option<String>,
    /// Client address blocks and their zones (`"10.1.0.0/16" = "eu-1"`), for clients the
    /// fleet's own map (`proxyctl zone map set`) does not place.
    #[serde(default)]
    pub zone_map: BTreeMap<String, String>,
    /// UDP address for gossip.
    pub gossip_listen: SocketAddr,
    /// `host:port` gossip addresses of other nodes; any subset of the fleet will do.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// TCP address of the Raft RPC listener (bind it to a private network).
    pub raft_listen: SocketAddr,
    /// Raft log, vote and snapshots live here; keep it across restarts.
    pub data_dir: PathBuf,
    /// Node ids that form the Raft group of a brand-new cluster, as etcd's
    /// initial-cluster. Ignored once the group exists; nodes not listed join later.
    #[serde(default)]
    pub initial_members: Vec<u64>,
    /// How many nodes vote in Raft; the rest are learners that still receive the state.
    #[serde(default = "default_voters")]
    pub voters: usize,
    /// A node dead this long loses its identities to live nodes.
    #[serde(default = "default_takeover_after", with = "humantime_serde")]
    pub takeover_after: Duration,
    /// Gossip round interval; failure detection takes a few dozen rounds.
    #[serde(default = "default_gossip_interval", with = "humantime_serde")]
    pub gossip_interval: Duration,
    /// Mutual TLS for Raft RPC between nodes; plain HTTP without it. Gossip is not
    /// covered: it is unauthenticated UDP, so bind `gossip_listen` privately too.
    #[serde(default)]
    pub tls: Option<ClusterTls>,
}

/// Protective limits on client and broker connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request frame accepted from a client (Kafka's `socket.request.max.bytes`).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Largest response frame accepted from a broker.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Deadline for opening a connection to a broker.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// A client connection with nothing in flight and no bytes for this long is closed
    /// (Kafka's `connections.max.idle.ms`).
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Client connections open at once on this node; more are refused (each one also
    /// holds a broker connection, so this bounds file descriptors too).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

/// What a node does on SIGTERM: hand its identities to the fleet, then let the requests it
/// already forwarded finish, so that restarting a node costs clients nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Longest wait for the fleet to commit new owners for this node's identities.
    #[serde(default = "default_handoff_timeout", with = "humantime_serde")]
    pub handoff_timeout: Duration,
    /// How long clients are sent to the new owners (a retriable NOT_LEADER_OR_FOLLOWER to
    /// Produce and Fetch) before the node stops accepting; cut short once no client is
    /// connected. 0 closes connections without redirecting.
    #[serde(default = "default_redirect_window", with = "humantime_serde")]
    pub redirect_window: Duration,
    /// Longest wait for responses to requests already forwarded before connections close.
    #[serde(default = "default_drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
}

/// Logging: an `EnvFilter` directive (overridden by `RUST_LOG`) and an output format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "default_log_filter")]
    pub filter: String,
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: default_max_request_bytes(),
            max_response_bytes: default_max_response_bytes(),
            connect_timeout: default_connect_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            handoff_timeout: default_handoff_timeout(),
            redirect_window: default_redirect_window(),
            drain_timeout: default_drain_timeout(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: default_log_filter(),
            format: LogFormat::default(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_host() -> String {
    "127.0.0.1".to_string()
}
fn default_bootstrap_port() -> u16 {
    9192
}
fn default_identity_port_base() -> u16 {
    9200
}
fn default_max_identities() -> u16 {
    64
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9644))
}
fn default_metadata_refresh() -> Duration {
    Duration::from_secs(30)
}
fn default_max_request_bytes() -> usize {
    100 * 1024 * 1024
}
fn default_max_response_bytes() -> usize {
    i32::MAX as usize
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_max_connections() -> usize {
    10_000
}
fn default_handoff_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_redirect_window() -> Duration {
    Duration::from_secs(1)
}
fn default_drain_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_voters() -> usize {
    3
}
fn default_takeover_after() -> Duration {
    Duration::from_secs(2)
}
fn default_gossip_interval() -> Duration {
    Duration::from_millis(100)
}
/// openraft reports every failed retry to an unreachable peer at ERROR, several times a
/// second for as long as a node is down; gossip and the metrics already say it is down.
fn default_log_filter() -> String {
    "info,openraft=warn,openraft::replication=off,openraft::engine::handler::replication_handler=off".to_string()
}

/// A configuration problem, naming the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Values given on the command line; each one that is set replaces the file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub node_id: Option<u64>,
    pub advertised_host: Option<String>,
    pub listen_host: Option<String>,
    pub bootstrap_port: Option<u16>,
    pub identity_port_base: Option<u16>,
    pub admin_listen: Option<SocketAddr>,
    pub bootstrap_servers: Option<Vec<String>>,
    pub log_filter: Option<String>,
    pub zone: Option<String>,
    pub seeds: Option<Vec<String>>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Reads, overrides and validates: the one entry point for a starting node.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML without validating; the error names the key and line.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    pub fn apply(&mut self, o: &Overrides) {
        let node = &mut self.node;
        set(&mut node.id, o.node_id);
        set(&mut node.advertised_host, o.advertised_host.clone());
        if o.listen_host.is_some() {
            node.listen_host = o.listen_host.clone();
        }
        set(&mut node.bootstrap_port, o.bootstrap_port);
        set(&mut node.identity_port_base, o.identity_port_base);
        set(&mut node.admin_listen, o.admin_listen);
        set(
            &mut self.backend.bootstrap_servers,
            o.bootstrap_servers.clone(),
        );
        set(&mut self.log.filter, o.log_filter.clone());
        if let Some(cluster) = &mut self.cluster {
            if o.zone.is_some() {
                cluster.zone = o.zone.clone();
            }
            set(&mut cluster.seeds, o.seeds.clone());
            set(&mut cluster.data_dir, o.data_dir.clone());
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.node.validate()?;
        self.backend.validate()?;
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        self.limits.validate()?;
        self.monitoring.validate()?;
        if let Some(acl) = &self.acl {
            if self.cluster.is_none() {
                return Err(invalid(
                    "acl",
                    "ACLs are kept in the fleet's Raft state; they need a [cluster] section",
                ));
            }
            acl.validate()?;
        }
        if let Some(admin) = &self.admin {
            admin.validate()?;
        }
        self.validate_listeners()
    }

    /// The plaintext and TLS listeners: at least one kind open, no port used twice, and
    /// SASL termination only on listeners that exist.
    fn validate_listeners(&self) -> Result<(), ConfigError> {
        if self.sasl.is_some() && self.cluster.is_none() {
            return Err(invalid(
                "sasl",
                "SASL termination checks users kept in the fleet's Raft state; it needs a \
                 [cluster] section",
            ));
        }
        let node = &self.node;
        let Some(tls) = &self.tls else {
            if !node.plaintext {
                return Err(invalid(
                    "node.plaintext",
                    "cannot be false without a [tls] section: no listener would open",
                ));
            }
            if let Some(sasl) = &self.sasl {
                sasl.validate()?;
                if sasl.applies_to(ListenerKind::Tls) && !sasl.applies_to(ListenerKind::Plaintext) {
                    return Err(invalid(
                        "sasl.listeners",
                        "names tls, but there is no [tls] section",
                    ));
                }
            }
            return Ok(());
        };
        tls.validate()?;
        if let Some(sasl) = &self.sasl {
            sasl.validate()?;
        }
        let tls_ports =
            port_range(tls.identity_port_base, node.max_identities).ok_or_else(|| {
                invalid(
                    "tls.identity_port_base",
                    "identity ports run past 65535 (node.max_identities of them)",
                )
            })?;
        if tls_ports.contains(&tls.bootstrap_port) {
            return Err(invalid(
                "tls.bootstrap_port",
                format!("falls inside the TLS identity port range {tls_ports:?}"),
            ));
        }
        if node.plaintext {
            let plain = node.identity_ports();
            let overlaps = tls_ports.start() <= plain.end() && plain.start() <= tls_ports.end();
            if overlaps || plain.contains(&tls.bootstrap_port) {
                return Err(invalid(
                    "tls.identity_port_base",
                    format!(
                        "TLS ports {tls_ports:?} and bootstrap {} overlap the plaintext ports {plain:?}",
                        tls.bootstrap_port
                    ),
                ));
            }
            if tls.bootstrap_port == node.bootstrap_port || tls_ports.contains(&node.bootstrap_port)
            {
                return Err(invalid(
                    "tls.bootstrap_port",
                    "must differ from node.bootstrap_port and the TLS identity ports",
                ));
            }
        }
        Ok(())
    }

    /// The address the Kafka listeners bind to.
    pub fn listen_host(&self) -> &str {
        self.node
            .listen_host
            .as_deref()
            .unwrap_or(&self.node.advertised_host)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

impl NodeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(invalid("node.id", "must be a positive integer"));
        }
        if self.advertised_host.trim().is_empty() {
            return Err(invalid("node.advertised_host", "must not be empty"));
        }
        if self.advertised_host.contains(':') && !self.advertised_host.starts_with('[') {
            return Err(invalid(
                "node.advertised_host",
                "must be a host name or address without a port",
            ));
        }
        if matches!(&self.listen_host, Some(h) if h.trim().is_empty()) {
            return Err(invalid("node.listen_host", "must not be empty when set"));
        }
        if self.bootstrap_port == 0 {
            return Err(invalid("node.bootstrap_port", "must not be 0"));
        }
        if self.identity_port_base == 0 {
            return Err(invalid("node.identity_port_base", "must not be 0"));
        }
        if self.max_identities == 0 {
            return Err(invalid("node.max_identities", "must be at least 1"));
        }
        let last = u32::from(self.identity_port_base) + u32::from(self.max_identities) - 1;
        if last > u32::from(u16::MAX) {
            return Err(invalid(
                "node.max_identities",
                format!(
                    "identity ports {}..={last} run past 65535",
                    self.identity_port_base
                ),
            ));
        }
        if self.identity_ports().contains(&self.bootstrap_port) {
            return Err(invalid(
                "node.bootstrap_port",
                format!(
                    "{} falls inside the identity port range {:?}",
                    self.bootstrap_port,
                    self.identity_ports()
                ),
            ));
        }
        Ok(())
    }

    /// The ports reserved for identity slots.
    pub fn identity_ports(&self) -> std::ops::RangeInclusive<u16> {
        let last = u32::from(self.identity_port_base) + u32::from(self.max_identities) - 1;
        self.identity_port_base..=last.min(u32::from(u16::MAX)) as u16
    }
}

/// `count` ports from `base`, if they fit below 65536.
fn port_range(base: u16, count: u16) -> Option<std::ops::RangeInclusive<u16>> {
    let last = u16::try_from(u32::from(base) + u32::from(count.max(1)) - 1).ok()?;
    Some(base..=last)
}

impl BackendConfig {
    /// The cluster `[backend]` itself describes.
    pub fn default_cluster(&self) -> BackendCluster {
        BackendCluster {
            bootstrap_servers: self.bootstrap_servers.clone(),
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
        }
    }

    /// Every backend cluster by name, `default` among them.
    pub fn all_clusters(&self) -> BTreeMap<String, BackendCluster> {
        let mut all = self.clusters.clone();
        all.insert(DEFAULT_CLUSTER.to_string(), self.default_cluster());
        all
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.default_cluster().validate("backend")?;
        for (name, cluster) in &self.clusters {
            let section = format!("backend.clusters.{name}");
            if name == DEFAULT_CLUSTER {
                return Err(invalid(
                    section,
                    "`default` is the cluster of [backend] itself; give this one another name",
                ));
            }
            if !valid_cluster_name(name) {
                return Err(invalid(
                    section,
                    "a cluster name is 1 to 64 letters, digits, `-` or `_`",
                ));
            }
            cluster.validate(&section)?;
        }
        if self.metadata_refresh < Duration::from_millis(100) {
            return Err(invalid(
                "backend.metadata_refresh",
                "must be at least 100ms",
            ));
        }
        Ok(())
    }
}

impl BackendCluster {
    /// Checks the cluster's fields; `section` is where they are (`backend`,
    /// `backend.clusters.NAME`), for the messages.
    fn validate(&self, section: &str) -> Result<(), ConfigError> {
        if let Some(tls) = &self.tls {
            tls.validate(section)?;
        }
        if let Some(sasl) = &self.sasl {
            sasl.validate(section)?;
        }
        let field = format!("{section}.bootstrap_servers");
        if self.bootstrap_servers.is_empty() {
            return Err(invalid(field, "needs at least one host:port"));
        }
        for server in &self.bootstrap_servers {
            parse_host_port(server)
                .map_err(|reason| invalid(&field, format!("`{server}`: {reason}")))?;
        }
        Ok(())
    }
}

impl ClusterConfig {
    /// `zone_map` with its blocks parsed; refused as the fleet's map would refuse them.
    pub fn parsed_zone_map(&self) -> Result<BTreeMap<ipnet::IpNet, String>, zones::ZoneMapError> {
        let mut map = BTreeMap::new();
        for (cidr, zone) in &self.zone_map {
            let net = zones::parse_cidr(cidr)?;
            zones::check_mapping(&map, &net, zone)?;
            map.insert(net, zone.clone());
        }
        Ok(map)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.id.trim().is_empty() {
            return Err(invalid("cluster.id", "must not be empty"));
        }
        if let Some(zone) = self.zone.as_deref().filter(|z| !valid_zone_name(z)) {
            return Err(invalid(
                "cluster.zone",
                format!("`{zone}`: 1 to 64 letters, digits, '-', '_' or '.'"),
            ));
        }
        self.parsed_zone_map()
            .map_err(|e| invalid("cluster.zone_map", e.to_string()))?;
        for seed in &self.seeds {
            parse_host_port(seed)
                .map_err(|reason| invalid("cluster.seeds", format!("`{seed}`: {reason}")))?;
        }
        if !(1..=7).contains(&self.voters) {
            return Err(invalid(
                "cluster.voters",
                "must be from 1 to 7 (3 or 5 is usual)",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("cluster.data_dir", "must not be empty"));
        }
        if self.initial_members.contains(&0) {
            return Err(invalid("cluster.initial_members", "node ids are positive"));
        }
        if self.gossip_interval < Duration::from_millis(10) {
            return Err(invalid("cluster.gossip_interval", "must be at least 10ms"));
        }
        if self.takeover_after < self.gossip_interval * 5 {
            return Err(invalid(
                "cluster.takeover_after",
                "must be at least 5 gossip intervals, or live nodes look dead",
            ));
        }
        if self.gossip_listen == self.raft_listen {
            return Err(invalid(
                "cluster.raft_listen",
                "must differ from cluster.gossip_listen",
            ));
        }
        match &self.tls {
            Some(tls) => tls.validate(),
            None => Ok(()),
        }
    }
}

impl Limits {
    fn validate(&self) -> Result<(), ConfigError> {
        let frame_range = 1024..=(i32::MAX as usize);
        if !frame_range.contains(&self.max_request_bytes) {
            return Err(invalid(
                "limits.max_request_bytes",
                format!("must be within {frame_range:?}"),
            ));
        }
        if !frame_range.contains(&self.max_response_bytes) {
            return Err(invalid(
                "limits.max_response_bytes",
                format!("must be within {frame_range:?}"),
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(invalid("limits.connect_timeout", "must be greater than 0"));
        }
        if self.idle_timeout.is_zero() {
            return Err(invalid("limits.idle_timeout", "must be greater than 0"));
        }
        if self.max_connections == 0 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        Ok(())
    }
}

/// Splits `host:port` (IPv6 hosts in brackets), refusing empty hosts and bad ports.
pub fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_string())?;
    if host.is_empty() {
        return Err("host is empty".to_string());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port `{port}` is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err("port must not be 0".to_string());
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [node]
        id = 1
        [backend]
        bootstrap_servers = ["127.0.0.1:39092"]
    "#;

    fn parsed(extra_node: &str, extra: &str) -> Result<Config, String> {
        let text = format!(
            "[node]\nid = 1\n{extra_node}\n[backend]\nbootstrap_servers = [\"127.0.0.1:39092\"]\n{extra}"
        );
        Config::parse(&text)
    }

    fn field_of(result: Result<(), ConfigError>) -> String {
        match result {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let config = Config::parse(MINIMAL).unwrap();
        config.validate().unwrap();
        assert_eq!(config.node.bootstrap_port, 9192);
        assert_eq!(config.listen_host(), "127.0.0.1");
        assert_eq!(config.limits.max_request_bytes, 100 * 1024 * 1024);
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(600));
    }

    #[test]
    fn example_files_are_valid() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut checked = 0;
        for entry in std::fs::read_dir(examples).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path, &Overrides::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                checked += 1;
            }
        }
        assert!(checked > 0, "no example config found");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let err = parsed("advertized_host = \"x\"", "").unwrap_err();
        assert!(err.contains("advertized_host"), "{err}");
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = Config::parse("[node]\nid = 1\n").unwrap_err();
        assert!(err.contains("backend"), "{err}");
    }

    #[test]
    fn durations_are_human_readable() {
        let config = parsed("", "[limits]\nidle_timeout = \"1m 30s\"\n").unwrap();
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(90));
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "", "ok"),
            ("advertised_host = \"\"", "", "node.advertised_host"),
            ("advertised_host = \"h:1\"", "", "node.advertised_host"),
            ("bootstrap_port = 9201", "", "node.bootstrap_port"),
            (
                "identity_port_base = 65500\nmax_identities = 100",
                "",
                "node.max_identities",
            ),
            (
                "",
                "[limits]\nmax_request_bytes = 10",
                "limits.max_request_bytes",
            ),
            (
                "",
                "[limits]\nconnect_timeout = \"0s\"",
                "limits.connect_timeout",
            ),
            (
                "",
                "[limits]\nmax_connections = 0",
                "limits.max_connections",
            ),
        ];
        for (node, extra, field) in cases {
            let config = parsed(node, extra).unwrap();
            if *field == "ok" {
                config.validate().unwrap();
            } else {
                assert_eq!(field_of(config.validate()), *field, "{node} {extra}");
            }
        }
        let mut config = parsed("", "").unwrap();
        config.node.id = 0;
        assert_eq!(field_of(config.validate()), "node.id");
        config.node.id = 1;
        config.backend.bootstrap_servers = vec!["nohost".into()];
        assert_eq!(field_of(config.validate()), "backend.bootstrap_servers");
        config.backend.bootstrap_servers = vec!["h:99999".into()];
        assert_eq!(field_of(config.validate()), "backend.bootstrap_servers");
    }

    #[test]
    fn overrides_replace_file_values() {
        let mut config = Config::parse(MINIMAL).unwrap();
        config.apply(&Overrides {
            node_id: Some(7),
            advertised_host: Some("127.0.0.7".into()),
            bootstrap_servers: Some(vec!["10.0.0.1:9092".into()]),
            ..Overrides::default()
        });
        config.validate().unwrap();
        assert_eq!(config.node.id, 7);
        assert_eq!(config.listen_host(), "127.0.0.7");
        assert_eq!(config.backend.bootstrap_servers, vec!["10.0.0.1:9092"]);
    }

    const CLUSTER: &str = "[cluster]\nid = \"c1\"\ngossip_listen = \"127.0.0.1:7946\"\n\
        raft_listen = \"127.0.0.1:7947\"\ndata_dir = \"/tmp/x\"\n";

    #[test]
    fn cluster_section_defaults_and_checks() {
        let config = parsed("", CLUSTER).unwrap();
        config.validate().unwrap();
        let cluster = config.cluster.as_ref().unwrap();
        assert_eq!(cluster.voters, 3);
        assert_eq!(cluster.takeover_after, Duration::from_secs(2));
        let cases = [
            ("voters = 0", "cluster.voters"),
            ("seeds = [\"nope\"]", "cluster.seeds"),
            ("takeover_after = \"100ms\"", "cluster.takeover_after"),
            ("initial_members = [0]", "cluster.initial_members"),
            ("zone = \"eu 1\"", "cluster.zone"),
            (
                "[cluster.zone_map]\n\"10.0.0.0/8\" = \"a\"\n\"10.1.0.0/16\" = \"b\"",
                "cluster.zone_map",
            ),
            (
                "[cluster.zone_map]\n\"10.0.0.1/8\" = \"a\"",
                "cluster.zone_map",
            ),
            (
                "[cluster.tls]\nca = \"\"\ncert = \"c\"\nkey = \"k\"",
                "cluster.tls.ca",
            ),
            (
                "[cluster.tls]\nca = \"ca\"\ncert = \"\"\nkey = \"k\"",
                "cluster.tls.cert",
            ),
            (
                "[cluster.tls]\nca = \"ca\"\ncert = \"c\"\nkey = \"\"",
                "cluster.tls.key",
            ),
        ];
        for (line, field) in cases {
            let config = parsed("", &format!("{CLUSTER}{line}\n")).unwrap();
            assert_eq!(field_of(config.validate()), field, "{line}");
        }
        assert!(parsed("", "").unwrap().cluster.is_none());
        assert!(cluster.tls.is_none(), "plain Raft RPC unless asked");
    }

    #[test]
    fn cluster_tls_needs_all_three_files_and_no_others() {
        let tls = "[cluster.tls]\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n.key\"\n";
        let config = parsed("", &format!("{CLUSTER}{tls}")).unwrap();
        config.validate().unwrap();
        let got = config.cluster.unwrap().tls.unwrap();
        assert_eq!(got.ca, PathBuf::from("ca.pem"));
        let missing_key = "[cluster.tls]\nca = \"ca.pem\"\ncert = \"n.pem\"\n";
        let err = parsed("", &format!("{CLUSTER}{missing_key}")).unwrap_err();
        assert!(err.contains("key"), "{err}");
        let typo = format!("{CLUSTER}{tls}client_ca = \"x\"\n");
        let err = parsed("", &typo).unwrap_err();
        assert!(err.contains("client_ca"), "{err}");
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(
            parse_host_port("[::1]:9092").unwrap(),
            ("[::1]".to_string(), 9092)
        );
        assert!(parse_host_port(":9092").is_err());
        assert!(parse_host_port("h:0").is_err());
        assert!(parse_host_port("h:x").is_err());
    }

    const TLS: &str = "[tls]\nbootstrap_port = 9193\nidentity_port_base = 9300\n\
        cert = \"n.pem\"\nkey = \"n.key\"\n";

    #[test]
    fn tls_and_sasl_sections_are_checked() {
        let config = parsed(
            "",
            &format!("{TLS}{CLUSTER}[sasl]\nsession_lifetime = \"1h\"\n"),
        )
        .unwrap();
        config.validate().unwrap();
        let sasl = config.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanisms, SaslMechanism::ALL.to_vec());
        assert!(sasl.applies_to(ListenerKind::Tls) && sasl.applies_to(ListenerKind::Plaintext));
        assert_eq!(
            config.tls.as_ref().unwrap().reload_interval,
            Duration::from_secs(10)
        );
        let cases = [
            ("plaintext = false", "", "node.plaintext"),
            ("", "[tls]\nbootstrap_port = 9193\nidentity_port_base = 9210\ncert = \"c\"\nkey = \"k\"", "tls.identity_port_base"),
            ("", "[tls]\nbootstrap_port = 9192\nidentity_port_base = 9300\ncert = \"c\"\nkey = \"k\"", "tls.bootstrap_port"),
            ("", "[tls]\nbootstrap_port = 9301\nidentity_port_base = 9300\ncert = \"c\"\nkey = \"k\"", "tls.bootstrap_port"),
            ("", "[tls]\nbootstrap_port = 9193\nidentity_port_base = 9300\ncert = \"\"\nkey = \"k\"", "tls.cert"),
            ("", "[sasl]", "sasl"),
            ("", &format!("{CLUSTER}[sasl]\nlisteners = [\"tls\"]"), "sasl.listeners"),
            ("", &format!("{CLUSTER}[sasl]\nmechanisms = []"), "sasl.mechanisms"),
            ("", &format!("{CLUSTER}[sasl]\nsession_lifetime = \"10ms\""), "sasl.session_lifetime"),
        ];
        for (node, extra, field) in cases {
            let config = parsed(node, extra).unwrap();
            assert_eq!(field_of(config.validate()), field, "{node} {extra}");
        }
        let tls_only = parsed("plaintext = false", TLS).unwrap();
        tls_only.validate().unwrap();
    }

    #[test]
    fn backend_credentials_need_exactly_one_password() {
        let backend = |sasl: &str| {
            let text = format!(
                "[node]\nid = 1\n[backend]\nbootstrap_servers = [\"h:1\"]\n\
                 [backend.tls]\nca = \"ca.pem\"\n[backend.sasl]\nmechanism = \"SCRAM-SHA-512\"\n{sasl}"
            );
            Config::parse(&text).unwrap()
        };
        backend("username = \"u\"\npassword = \"p\"")
            .validate()
            .unwrap();
        let both = backend("username = \"u\"\npassword = \"p\"\npassword_file = \"f\"");
        assert_eq!(field_of(both.validate()), "backend.sasl.password");
        let none = backend("username = \"u\"");
        assert_eq!(field_of(none.validate()), "backend.sasl.password_file");
        let unknown = Config::parse("[node]\nid = 1\n[backend]\nbootstrap_servers = [\"h:1\"]\n[backend.sasl]\nmechanism = \"GSSAPI\"\nusername = \"u\"\n");
        assert!(unknown.unwrap_err().contains("GSSAPI"));
    }

    #[test]
    fn further_backend_clusters_are_checked_with_their_section_named() {
        let with = |clusters: &str| {
            let text =
                format!("[node]\nid = 1\n[backend]\nbootstrap_servers = [\"h:1\"]\n{clusters}");
            Config::parse(&text).unwrap()
        };
        let two = with("[backend.clusters.b]\nbootstrap_servers = [\"h:2\"]\n");
        two.validate().unwrap();
        let names: Vec<String> = two.backend.all_clusters().into_keys().collect();
        assert_eq!(names, ["b", "default"]);
        assert_eq!(two.backend.all_clusters()["b"].bootstrap_servers, ["h:2"]);

        let no_servers = with("[backend.clusters.b]\nbootstrap_servers = []\n");
        assert_eq!(
            field_of(no_servers.validate()),
            "backend.clusters.b.bootstrap_servers"
        );
        let bad_server = with("[backend.clusters.b]\nbootstrap_servers = [\"nohost\"]\n");
        assert_eq!(
            field_of(bad_server.validate()),
            "backend.clusters.b.bootstrap_servers"
        );
        let default = with("[backend.clusters.default]\nbootstrap_servers = [\"h:2\"]\n");
        assert_eq!(field_of(default.validate()), "backend.clusters.default");
        let bad_name = with("[backend.clusters.\"a b\"]\nbootstrap_servers = [\"h:2\"]\n");
        assert_eq!(field_of(bad_name.validate()), "backend.clusters.a b");
        let half_login = with(
            "[backend.clusters.b]\nbootstrap_servers = [\"h:2\"]\n[backend.clusters.b.sasl]\n\
             mechanism = \"SCRAM-SHA-512\"\nusername = \"u\"\n",
        );
        assert_eq!(
            field_of(half_login.validate()),
            "backend.clusters.b.sasl.password_file"
        );
        let typo = Config::parse(
            "[node]\nid = 1\n[backend]\nbootstrap_servers = [\"h:1\"]\n\
             [backend.clusters.b]\nbootstrap_server = [\"h:2\"]\n",
        );
        assert!(typo.unwrap_err().contains("bootstrap_server"));
    }
}
