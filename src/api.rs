//! The admin API's JSON types: what `/api/v1/` answers, what `proxyctl`, the integration
//! tests and the chaos harness read, and what nodes read of each other before joining.
//!
//! This module depends on nothing else in the node, so every reader links the same
//! definitions and the server and its clients cannot drift apart. A fleet is upgraded
//! node by node, and nodes read each other's `/api/v1/cluster` while they start, so the
//! JSON stays compatible both ways: enums serialize to the strings earlier releases wrote,
//! and fields added later carry `#[serde(default)]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod monitoring;
pub use monitoring::{
    sort_busiest, ClientConnection, ClientTraffic, ClientsReport, TopicTraffic, TrafficReport,
};

/// `GET /api/v1/cluster`: the fleet as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub answered_by: u64,
    pub mode: Mode,
    pub leader: Option<u64>,
    pub term: u64,
    pub assignment_epoch: u64,
    /// The Raft group has no quorum; owners of dead nodes are fallbacks, not committed.
    pub degraded: bool,
    /// The fleet feature level committed in the control state: which commands every
    /// member understands (0 on a fleet that never raised it, and when standalone).
    #[serde(default)]
    pub feature_level: u16,
    /// The Raft group's members as the answering node knows them; empty when standalone.
    #[serde(default)]
    pub raft_members: Vec<RaftMemberSummary>,
    pub nodes: Vec<NodeSummary>,
    pub identities: Vec<IdentitySummary>,
}

impl ClusterStatus {
    pub fn node(&self, id: u64) -> Option<&NodeSummary> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn identity(&self, id: i32) -> Option<&IdentitySummary> {
        self.identities.iter().find(|i| i.id == id)
    }

    /// Why the fleet is not settled, if it is not. Settled: a Raft leader with quorum,
    /// every node alive and serving, every identity owned by a live node, and owners'
    /// identity counts at most one apart (the controller's balance goal). A rolling
    /// restart waits for this before it stops the next node.
    pub fn unsettled(&self) -> Option<String> {
        if self.mode == Mode::Standalone {
            return None;
        }
        if self.degraded || self.leader.is_none() {
            return Some("the Raft group has no leader with a quorum".into());
        }
        if let Some(n) = self.nodes.iter().find(|n| !n.alive) {
            return Some(format!("node {} is down", n.id));
        }
        if let Some(n) = self.nodes.iter().find(|n| n.state != NodeState::Serving) {
            return Some(format!("node {} is {}", n.id, n.state));
        }
        if !self.all_owned_by_live_nodes() {
            return Some("an identity has no live owner".into());
        }
        let owned = self.nodes.iter().map(|n| n.identities.len());
        let (least, most) = (owned.clone().min()?, owned.max()?);
        (most > least + 1)
            .then(|| format!("identities not balanced yet ({least} to {most} per node)"))
    }

    /// Whether every identity has an owner that this status reports alive.
    pub fn all_owned_by_live_nodes(&self) -> bool {
        !self.identities.is_empty()
            && self.identities.iter().all(|i| {
                i.owner
                    .and_then(|o| self.node(o))
                    .is_some_and(|owner| owner.alive)
            })
    }
}

/// Whether the answering node runs alone or as a member of a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One node owns every identity; there is no Raft group.
    Standalone,
    Fleet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub id: u64,
    pub address: String,
    pub zone: Option<String>,
    pub state: NodeState,
    pub alive: bool,
    pub raft_role: RaftRole,
    pub identities: Vec<i32>,
    pub connections: u64,
    /// The highest fleet feature level this node's build understands.
    #[serde(default)]
    pub feature_level: u16,
}

/// Where a node is in its life, as it publishes it in gossip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    Joining,
    Serving,
    /// Giving its identities away: drained by an operator, or stopping.
    Draining,
    /// Alive but reaching no broker; its identities are served by others.
    BackendUnreachable,
}

/// A node's part in the Raft group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RaftRole {
    Leader,
    Voter,
    Learner,
    /// Not a member of the Raft group (yet), or the node runs standalone.
    #[serde(rename = "-")]
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftMemberSummary {
    pub id: u64,
    /// A voter, or else a learner.
    pub voter: bool,
    pub raft_address: String,
    /// The member's data directory (see `flotilla_raft::incarnation`).
    pub incarnation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitySummary {
    pub id: i32,
    pub slot: u16,
    /// The backend cluster of the broker behind it.
    #[serde(default = "default_cluster_name")]
    pub cluster: String,
    pub owner: Option<u64>,
    /// `host:port` clients are told; empty while the identity has no live owner.
    pub address: String,
    /// `host:port` of the real broker behind it.
    pub broker: String,
    /// The broker's rack, if the backend is rack-aware.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Per zone with live nodes, the node that serves the identity to that zone's clients.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub zone_owners: BTreeMap<String, u64>,
}

/// One entry of the CIDR -> zone map (`GET`/`POST /api/v1/zone-map`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneMapping {
    pub cidr: String,
    pub zone: String,
}

/// `DELETE /api/v1/zone-map/CIDR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneMappingRemoved {
    pub removed: String,
}

/// One route (`GET`/`POST /api/v1/routes`): a topic, consumer group or transactional id,
/// or a prefix of their names, and the backend cluster that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// `topic`, `group` or `transactional-id`.
    pub resource: String,
    pub name: String,
    #[serde(default)]
    pub prefix: bool,
    pub cluster: String,
}

/// `GET /api/v1/routes`: every route, and the cluster of whatever none names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub default_cluster: String,
    pub routes: Vec<RouteEntry>,
}

/// `PUT /api/v1/routes/default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRoute {
    pub cluster: String,
}

/// One backend cluster (`GET /api/v1/backend-clusters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendClusterView {
    pub name: String,
    /// Its identities' virtual ids are `number * 1000000 + broker id` (0: the real ids).
    pub number: u16,
    /// Whether the answering node reached one of the cluster's brokers just now; `None`
    /// when this node has no configuration for the cluster.
    pub reachable: Option<bool>,
    /// Whether this node's configuration names the cluster.
    pub configured: bool,
    pub brokers: Vec<BackendBrokerView>,
    /// Routes that name it, and whether it is the default.
    pub routes: usize,
    pub is_default: bool,
}

/// One broker of a backend cluster and the identity that stands for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendBrokerView {
    pub broker_id: i32,
    pub identity: i32,
    pub address: String,
    /// Whether the cluster's own Metadata still lists it.
    pub present: bool,
    pub owner: Option<u64>,
}

/// `POST /api/v1/nodes/ID/drain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drained {
    pub drained: u64,
}

/// `DELETE /api/v1/nodes/ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub removed: u64,
}

/// `GET /api/v1/users`: a SASL/SCRAM user and the mechanisms it has credentials for (the
/// keys themselves are never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub name: String,
    pub credentials: Vec<CredentialSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSummary {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub iterations: u32,
}

/// `POST /api/v1/users`: a user's password for one mechanism (added, or replaced). The
/// node derives the SCRAM verifiers; the password is neither stored nor logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub mechanism: String,
    pub password: String,
    /// PBKDF2 iterations, 4096 (the default) to 16384.
    #[serde(default)]
    pub iterations: Option<u32>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The answer to `POST /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSaved {
    pub name: String,
    pub mechanism: String,
    pub iterations: u32,
}

/// The answer to `DELETE /api/v1/users/NAME[?mechanism=M]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDeleted {
    pub name: String,
    /// The mechanism whose credential was removed; `None`: the whole user.
    pub mechanism: Option<String>,
}

/// One Kafka ACL, with Kafka's names (`TOPIC`, `LITERAL`, `READ`, `ALLOW`, as
/// `kafka-acls --list` prints them; any case and `-`/`_` are accepted in requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub resource_type: String,
    pub name: String,
    pub pattern_type: String,
    /// `User:alice`, or `User:*` for every principal.
    pub principal: String,
    /// A client IP address, or `*`.
    pub host: String,
    pub operation: String,
    pub permission: String,
}

/// The query of `GET` and `DELETE /api/v1/acls`: each field given narrows the selection
/// to bindings with exactly that value (as `kafka-acls --list`/`--remove` filters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
}

/// `POST /api/v1/acls`: bindings to add (ones already present stay once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAcls {
    pub bindings: Vec<Acl>,
}

/// The answer to `POST /api/v1/acls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclsAdded {
    pub added: Vec<Acl>,
}

/// The answer to `DELETE /api/v1/acls?...`: what the filter matched and was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclsRemoved {
    pub removed: Vec<Acl>,
}

/// `GET /api/v1/tokens`: an admin API token, by name (its text is never shown again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    pub name: String,
    /// `read` (GET only) or `admin` (everything).
    pub scope: String,
    pub source: TokenSource,
}

/// Where a token is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    /// Created through the API and replicated by Raft: every node accepts it.
    Fleet,
    /// In the answering node's `[admin]` configuration: that node accepts it.
    Config,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub name: String,
    pub scope: String,
}

/// The answer to `POST /api/v1/tokens`: the only time the token's text is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub name: String,
    pub scope: String,
    pub token: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The answer to `DELETE /api/v1/tokens/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDeleted {
    pub deleted: String,
}

/// A client quota entity, as Kafka's `/config/users/<user>/clients/<client-id>` names it:
/// the query of `DELETE /api/v1/quotas` and part of every quota. At least one side is
/// given; a side is a name or the default (`--user-default`), not both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaEntityQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_id_default: bool,
}

/// One quota: its entity and limits, with Kafka's names. `GET /api/v1/quotas` lists them;
/// `POST /api/v1/quotas` sets the limits given and keeps the entity's others (as
/// `kafka-configs --alter --add-config` does), and answers with the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    #[serde(flatten)]
    pub entity: QuotaEntityQuery,
    /// Produce bytes per second, fleet-wide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_byte_rate: Option<u64>,
    /// Fetch bytes per second, fleet-wide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_byte_rate: Option<u64>,
    /// Requests per second of any API, fleet-wide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<u64>,
}

/// The answer to `DELETE /api/v1/quotas?...`: the quota removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaDeleted {
    pub deleted: Quota,
}

/// `GET /api/v1/breakers`: a topic circuit breaker, as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSummary {
    /// A topic, or a prefix followed by `*`.
    pub pattern: String,
    pub produce: bool,
    pub fetch: bool,
    /// `hold` or `reject`.
    pub mode: String,
    pub reason: String,
    /// `manual`, or `rule:NAME` for an automatic trip.
    pub origin: String,
    /// Unix milliseconds, by the clock of the leader that opened it.
    pub opened_at_ms: u64,
    /// Unix milliseconds from which it no longer applies; none for "until closed".
    pub until_ms: Option<u64>,
    /// Whether the answering node enforces it now (false once `until_ms` has passed,
    /// before the leader tidies it away).
    pub in_force: bool,
}

/// `POST /api/v1/breakers`: open (or replace) the breaker on a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBreaker {
    pub pattern: String,
    /// Neither `produce` nor `fetch` means both.
    #[serde(default)]
    pub produce: bool,
    #[serde(default)]
    pub fetch: bool,
    /// `hold` (the default) or `reject`.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// How long it applies, in milliseconds; none for "until closed".
    #[serde(default)]
    pub for_ms: Option<u64>,
}

/// The answer to `DELETE /api/v1/breakers/PATTERN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerClosed {
    pub closed: String,
}

/// `GET` and `POST /api/v1/breaker-rules`: an automatic breaker rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerRuleSummary {
    pub name: String,
    /// The topics watched (a topic, or a prefix followed by `*`); each trips on its own.
    pub topic: String,
    /// `produce-bytes-per-sec` or `error-per-mille`.
    pub metric: String,
    pub threshold: u64,
    /// How long the metric must stay above the threshold, fleet-wide.
    pub sustain_secs: u32,
    /// How long the breaker it opens stays open.
    pub cool_down_secs: u32,
    #[serde(default)]
    pub mode: Option<String>,
    /// Neither `produce` nor `fetch` means both.
    #[serde(default)]
    pub produce: bool,
    #[serde(default)]
    pub fetch: bool,
}

/// The answer to `DELETE /api/v1/breaker-rules/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerRuleDeleted {
    pub deleted: String,
}

/// `POST /api/v1/offset-resets`: reset a consumer group's committed offsets while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOffsetReset {
    pub group: String,
    /// `TOPIC` (every partition) or `TOPIC:P,P,...`, as Kafka's tool takes them.
    pub topics: Vec<String>,
    pub target: ResetTargetSpec,
    /// Only plan: answer the current and target offsets, change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// How long the fleet tries before it gives the reset up (expired); default 120 s,
    /// counted from the start.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Start no sooner than this many seconds from now (a scheduled reset, which can be
    /// cancelled until it starts); default now.
    #[serde(default)]
    pub start_in_secs: Option<u64>,
}

/// Where a reset moves each partition, as Kafka's `--reset-offsets` options say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetTargetSpec {
    ToEarliest,
    ToLatest,
    ToOffset(i64),
    /// ISO 8601, as `--to-datetime` takes it (`2026-12-01T10:00:00.000`, optionally
    /// with a zone offset or `Z`; none means UTC).
    ToDatetime(String),
    ShiftBy(i64),
}

/// `GET /api/v1/offset-resets`: one reset, and the answer to creating one (with state
/// `dry-run` and no id when only planned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetResetSummary {
    pub id: String,
    pub group: String,
    /// `pending`, `applying`, `done`, `expired`, `cancelled`, or `dry-run`.
    pub state: String,
    /// How the targets were asked for (`to-earliest`, `shift-by -5`, ...).
    pub spec: String,
    pub requested_by: String,
    /// Unix milliseconds, by the clock of the node that planned it.
    pub created_at_ms: u64,
    pub start_at_ms: u64,
    pub deadline_ms: u64,
    pub finished_at_ms: Option<u64>,
    pub partitions: Vec<PartitionResetSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionResetSummary {
    pub topic: String,
    pub partition: i32,
    /// The committed offset when the reset was planned; none if there was none.
    pub current: Option<i64>,
    pub target: i64,
    pub applied: bool,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Standalone => "standalone",
            Mode::Fleet => "fleet",
        })
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeState::Joining => "joining",
            NodeState::Serving => "serving",
            NodeState::Draining => "draining",
            NodeState::BackendUnreachable => "backend-unreachable",
        })
    }
}

impl std::fmt::Display for RaftRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RaftRole::Leader => "leader",
            RaftRole::Voter => "voter",
            RaftRole::Learner => "learner",
            RaftRole::None => "-",
        })
    }
}

fn default_cluster_name() -> String {
    flotilla_config::DEFAULT_CLUSTER.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a node of the previous release answers; nodes of both releases read each
    /// other's status during a rolling upgrade.
    const PREVIOUS_RELEASE: &str = r#"{"answered_by":1,"mode":"fleet","leader":2,"term":3,
        "assignment_epoch":4,"degraded":false,
        "raft_members":[{"id":1,"voter":true,"raft_address":"a:1","incarnation":"x"}],
        "nodes":[{"id":1,"address":"a:9192","zone":null,"state":"backend-unreachable",
                  "alive":true,"raft_role":"-","identities":[1],"connections":0}],
        "identities":[{"id":1,"slot":0,"owner":1,"address":"a:9200","broker":"b:1"}]}"#;

    #[test]
    fn reads_the_previous_release_and_writes_what_it_reads() {
        let status: ClusterStatus = serde_json::from_str(PREVIOUS_RELEASE).unwrap();
        assert_eq!(status.mode, Mode::Fleet);
        assert_eq!(status.nodes[0].state, NodeState::BackendUnreachable);
        assert_eq!(status.nodes[0].raft_role, RaftRole::None);
        assert_eq!(status.feature_level, 0);
        let written = serde_json::to_value(&status).unwrap();
        assert_eq!(written["nodes"][0]["state"], "backend-unreachable");
        assert_eq!(written["nodes"][0]["raft_role"], "-");
        assert_eq!(written["mode"], "fleet");
    }

    #[test]
    fn a_fleet_is_settled_once_balanced_with_every_node_serving() {
        let mut status: ClusterStatus = serde_json::from_str(PREVIOUS_RELEASE).unwrap();
        assert_eq!(
            status.unsettled().as_deref(),
            Some("node 1 is backend-unreachable")
        );
        status.nodes[0].state = NodeState::Serving;
        assert_eq!(status.unsettled(), None);
        let mut second = status.nodes[0].clone();
        second.id = 2;
        second.identities = vec![];
        status.nodes.push(second.clone());
        assert_eq!(status.unsettled(), None, "one identity for two nodes");
        status.identities.push(status.identities[0].clone());
        status.nodes[0].identities.push(1);
        assert!(status.unsettled().unwrap().contains("not balanced"));
        status.nodes[1].alive = false;
        assert_eq!(status.unsettled().as_deref(), Some("node 2 is down"));
    }

    #[test]
    fn display_matches_the_json_strings() {
        for state in [
            NodeState::Joining,
            NodeState::Serving,
            NodeState::Draining,
            NodeState::BackendUnreachable,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.to_string());
        }
        for role in [
            RaftRole::Leader,
            RaftRole::Voter,
            RaftRole::Learner,
            RaftRole::None,
        ] {
            assert_eq!(serde_json::to_value(role).unwrap(), role.to_string());
        }
    }
}
