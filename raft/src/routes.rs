//! Backend clusters and routes in the control state: which Kafka cluster behind the fleet
//! serves a topic, a consumer group or a transactional id, and the identities of the
//! brokers of every cluster but `default`.
//!
//! Routes must be the same on every node, or two nodes would send one topic's records
//! to two clusters; so they are committed here and read by the data path from the
//! applied state. A route names a registered cluster; the leader registers the clusters
//! of its configuration, so a route cannot point at a cluster no node has heard of.
//!
//! Identities of the cluster `default` keep the real broker ids (single-cluster fleets
//! see no change). A broker of another cluster gets the virtual id
//! `number * 1_000_000 + broker id`, where `number` is the cluster's registration number
//! (1, 2, ...), so an operator can read a virtual id and both stay stable for as long
//! as the state lives.
//!
//! Every enum here is encoded by bincode through its variant's position: variants are only
//! ever appended.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use flotilla_config::{valid_cluster_name, DEFAULT_CLUSTER};

use crate::governance::TopicPattern;
use crate::state::{BrokerAddr, CommandResult, ControlState};

/// The fleet feature level that introduced backend clusters and routes (see
/// [`crate::state`]).
pub const LEVEL: u16 = 6;

/// Virtual ids of one cluster's brokers lie in `number * STRIDE ..`.
pub const STRIDE: i32 = 1_000_000;

/// What a route decides the cluster of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RouteResource {
    Topic,
    Group,
    TransactionalId,
}

impl RouteResource {
    pub const ALL: [RouteResource; 3] = [
        RouteResource::Topic,
        RouteResource::Group,
        RouteResource::TransactionalId,
    ];

    /// The name operators use (`topic`, `group`, `transactional-id`).
    pub fn as_str(self) -> &'static str {
        match self {
            RouteResource::Topic => "topic",
            RouteResource::Group => "group",
            RouteResource::TransactionalId => "transactional-id",
        }
    }

    pub fn parse(text: &str) -> Option<RouteResource> {
        RouteResource::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for RouteResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route's key: a resource kind and a name or name prefix (`TopicPattern` is the
/// name-or-prefix of any resource here).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    pub resource: RouteResource,
    pub pattern: TopicPattern,
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.pattern.prefix { " prefix" } else { "" };
        write!(f, "{}{kind} `{}`", self.resource, self.pattern.name)
    }
}

/// A backend cluster the fleet has registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendClusterEntry {
    /// 0 for `default`; the others 1, 2, ... in order of registration, never reused.
    pub number: u16,
}

/// The broker of another cluster than `default` behind a virtual identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterBroker {
    pub cluster: String,
    pub broker_id: i32,
}

/// Why a route was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("cluster: `{0}` is not a backend cluster of the fleet (known: {1})")]
    UnknownCluster(String, String),
    #[error(
        "{new} overlaps the {existing} (routed to {cluster}); a name may match at most one prefix"
    )]
    Overlap {
        new: RouteKey,
        existing: RouteKey,
        cluster: String,
    },
    #[error("name: a route needs a non-empty name or prefix")]
    EmptyName,
}

impl ControlState {
    /// Whether the state holds anything only level 6 can record.
    pub fn has_route_data(&self) -> bool {
        !self.backend_clusters.is_empty()
            || !self.routes.is_empty()
            || self.default_cluster.is_some()
            || !self.cluster_identities.is_empty()
            || self.has_migration_data()
    }

    /// Whether `name` is a backend cluster routes may name; `default` always is.
    pub fn knows_cluster(&self, name: &str) -> bool {
        name == DEFAULT_CLUSTER || self.backend_clusters.contains_key(name)
    }

    /// The cluster of whatever a route does not name.
    pub fn default_route(&self) -> &str {
        self.default_cluster.as_deref().unwrap_or(DEFAULT_CLUSTER)
    }

    /// The cluster that serves `name`: its exact route, else the route of the one prefix
    /// that matches it, else the default.
    pub fn cluster_for(&self, resource: RouteResource, name: &str) -> &str {
        let exact = RouteKey {
            resource,
            pattern: TopicPattern {
                name: name.to_string(),
                prefix: false,
            },
        };
        if let Some(cluster) = self.routes.get(&exact) {
            return cluster;
        }
        self.routes
            .iter()
            .find(|(key, _)| {
                key.resource == resource
                    && key.pattern.prefix
                    && name.starts_with(&key.pattern.name)
            })
            .map(|(_, cluster)| cluster.as_str())
            .unwrap_or_else(|| self.default_route())
    }

    /// Checks a new route against the state: a known cluster, and no prefix of the same
    /// resource that overlaps it (replacing the same key's cluster is allowed).
    pub fn check_route(&self, key: &RouteKey, cluster: &str) -> Result<(), RouteError> {
        if key.pattern.name.is_empty() {
            return Err(RouteError::EmptyName);
        }
        if !self.knows_cluster(cluster) {
            return Err(RouteError::UnknownCluster(
                cluster.to_string(),
                self.cluster_names().join(", "),
            ));
        }
        if !key.pattern.prefix {
            return Ok(());
        }
        let overlaps = |other: &RouteKey| {
            other.resource == key.resource
                && other.pattern.prefix
                && other != key
                && (other.pattern.name.starts_with(&key.pattern.name)
                    || key.pattern.name.starts_with(&other.pattern.name))
        };
        match self.routes.iter().find(|(existing, _)| overlaps(existing)) {
            Some((existing, cluster)) => Err(RouteError::Overlap {
                new: key.clone(),
                existing: existing.clone(),
                cluster: cluster.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Every cluster name routes may use, `default` first.
    pub fn cluster_names(&self) -> Vec<String> {
        std::iter::once(DEFAULT_CLUSTER.to_string())
            .chain(self.backend_clusters.keys().cloned())
            .collect()
    }

    /// The virtual identity of `cluster`'s broker `broker_id`, if the cluster is known
    /// and the id fits its range.
    pub fn virtual_id(&self, cluster: &str, broker_id: i32) -> Option<i32> {
        if cluster == DEFAULT_CLUSTER {
            return Some(broker_id);
        }
        let number = i32::from(self.backend_clusters.get(cluster)?.number);
        if !(0..STRIDE).contains(&broker_id) {
            return None;
        }
        number.checked_mul(STRIDE)?.checked_add(broker_id)
    }

    /// The cluster and real broker id behind identity `id`.
    pub fn broker_of(&self, id: i32) -> (&str, i32) {
        match self.cluster_identities.get(&id) {
            Some(b) => (b.cluster.as_str(), b.broker_id),
            None => (DEFAULT_CLUSTER, id),
        }
    }

    pub(crate) fn register_cluster(&mut self, name: &str) -> CommandResult {
        if name == DEFAULT_CLUSTER || self.backend_clusters.contains_key(name) {
            return CommandResult::Ok;
        }
        if !valid_cluster_name(name) {
            return CommandResult::Conflict {
                reason: format!(
                    "`{name}` is not a cluster name (1 to 64 letters, digits, `-` or `_`)"
                ),
            };
        }
        let number = self
            .backend_clusters
            .values()
            .map(|c| c.number)
            .max()
            .unwrap_or(0)
            + 1;
        self.backend_clusters
            .insert(name.to_string(), BackendClusterEntry { number });
        CommandResult::Ok
    }

    /// As `SyncBrokers` for a cluster other than `default`: new brokers become identities
    /// with their virtual id and the next slot, known ones update their address, the
    /// cluster's others are marked absent. A broker whose virtual id is out of range or
    /// taken by another cluster's broker is left out, and the result says so.
    pub(crate) fn sync_cluster_brokers(
        &mut self,
        cluster: &str,
        brokers: &[(i32, BrokerAddr)],
    ) -> CommandResult {
        if cluster == DEFAULT_CLUSTER {
            return self.sync_brokers(brokers);
        }
        if !self.backend_clusters.contains_key(cluster) {
            return CommandResult::Conflict {
                reason: format!("cluster `{cluster}` is not registered"),
            };
        }
        let seen: BTreeMap<i32, &BrokerAddr> = brokers.iter().map(|(id, a)| (*id, a)).collect();
        let mut left_out = Vec::new();
        let mut present = Vec::new();
        for (broker_id, addr) in &seen {
            let Some(id) = self.virtual_id(cluster, *broker_id) else {
                left_out.push(format!("broker {broker_id}: id out of range"));
                continue;
            };
            if self.identities.contains_key(&id) && self.broker_of(id) != (cluster, *broker_id) {
                left_out.push(format!("broker {broker_id}: virtual id {id} is taken"));
                continue;
            }
            self.upsert_identity(id, addr);
            self.cluster_identities.insert(
                id,
                ClusterBroker {
                    cluster: cluster.to_string(),
                    broker_id: *broker_id,
                },
            );
            present.push(id);
        }
        for (id, broker) in &self.cluster_identities {
            if broker.cluster == cluster {
                if let Some(identity) = self.identities.get_mut(id) {
                    identity.present = present.contains(id);
                }
            }
        }
        if left_out.is_empty() {
            CommandResult::Ok
        } else {
            CommandResult::Conflict {
                reason: format!("cluster `{cluster}`: left out {}", left_out.join("; ")),
            }
        }
    }

    pub(crate) fn set_route(&mut self, key: &RouteKey, cluster: &str) -> CommandResult {
        if let Err(e) = self.check_route(key, cluster) {
            return CommandResult::Conflict {
                reason: e.to_string(),
            };
        }
        self.routes.insert(key.clone(), cluster.to_string());
        CommandResult::Ok
    }

    pub(crate) fn delete_route(&mut self, key: &RouteKey) -> CommandResult {
        self.routes.remove(key);
        CommandResult::Ok
    }

    pub(crate) fn set_default_cluster(&mut self, cluster: &str) -> CommandResult {
        if !self.knows_cluster(cluster) {
            let refused =
                RouteError::UnknownCluster(cluster.to_string(), self.cluster_names().join(", "));
            return CommandResult::Conflict {
                reason: refused.to_string(),
            };
        }
        self.default_cluster = (cluster != DEFAULT_CLUSTER).then(|| cluster.to_string());
        CommandResult::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Command;

    fn at_level_6() -> ControlState {
        let mut state = ControlState::default();
        state.apply(&Command::SetFeatureLevel { level: LEVEL });
        state.apply(&Command::RegisterCluster { name: "b".into() });
        state
    }

    fn key(resource: RouteResource, pattern: &str) -> RouteKey {
        RouteKey {
            resource,
            pattern: pattern.parse().unwrap(),
        }
    }

    fn route(state: &mut ControlState, k: RouteKey, cluster: &str) -> CommandResult {
        state.apply(&Command::SetRoute {
            key: k,
            cluster: cluster.into(),
        })
    }

    fn addr(port: u16) -> BrokerAddr {
        BrokerAddr {
            host: "10.0.0.1".into(),
            port,
            rack: None,
        }
    }

    #[test]
    fn exact_names_beat_prefixes_and_the_rest_goes_to_the_default() {
        let mut state = at_level_6();
        let topic = RouteResource::Topic;
        assert_eq!(
            route(&mut state, key(topic, "orders.*"), "b"),
            CommandResult::Ok
        );
        assert_eq!(
            route(&mut state, key(topic, "orders.audit"), DEFAULT_CLUSTER),
            CommandResult::Ok
        );
        assert_eq!(state.cluster_for(topic, "orders.eu"), "b");
        assert_eq!(state.cluster_for(topic, "orders.audit"), DEFAULT_CLUSTER);
        assert_eq!(state.cluster_for(topic, "payments"), DEFAULT_CLUSTER);
        // A topic route says nothing about a group of the same name.
        assert_eq!(
            state.cluster_for(RouteResource::Group, "orders.eu"),
            DEFAULT_CLUSTER
        );

        state.apply(&Command::SetDefaultCluster {
            cluster: "b".into(),
        });
        assert_eq!(state.cluster_for(topic, "payments"), "b");
        assert_eq!(state.cluster_for(topic, "orders.audit"), DEFAULT_CLUSTER);
    }

    #[test]
    fn overlapping_prefixes_are_refused_and_the_routes_are_unchanged() {
        let mut state = at_level_6();
        let group = RouteResource::Group;
        assert_eq!(
            route(&mut state, key(group, "billing-*"), "b"),
            CommandResult::Ok
        );
        let before = state.routes.clone();
        for overlapping in ["billing-eu-*", "bill*"] {
            let CommandResult::Conflict { reason } =
                route(&mut state, key(group, overlapping), DEFAULT_CLUSTER)
            else {
                panic!("{overlapping} accepted");
            };
            assert!(
                reason.contains("overlaps the group prefix `billing-`"),
                "{reason}"
            );
        }
        assert_eq!(state.routes, before);
        // The same prefix may move; another resource's prefix does not overlap.
        assert_eq!(
            route(&mut state, key(group, "billing-*"), DEFAULT_CLUSTER),
            CommandResult::Ok
        );
        assert_eq!(
            route(&mut state, key(RouteResource::Topic, "billing-eu-*"), "b"),
            CommandResult::Ok
        );
    }

    #[test]
    fn unknown_clusters_are_refused() {
        let mut state = at_level_6();
        let CommandResult::Conflict { reason } =
            route(&mut state, key(RouteResource::Topic, "orders"), "c")
        else {
            panic!("accepted");
        };
        assert_eq!(
            reason,
            "cluster: `c` is not a backend cluster of the fleet (known: default, b)"
        );
        let result = state.apply(&Command::SetDefaultCluster {
            cluster: "c".into(),
        });
        assert!(matches!(result, CommandResult::Conflict { .. }));
        assert!(state.routes.is_empty() && state.default_cluster.is_none());
    }

    #[test]
    fn another_clusters_brokers_get_stable_virtual_ids_and_their_own_slots() {
        let mut state = at_level_6();
        state.apply(&Command::SyncBrokers {
            brokers: vec![(1, addr(9092)), (2, addr(9093))],
        });
        let result = state.apply(&Command::SyncClusterBrokers {
            cluster: "b".into(),
            brokers: vec![(2, addr(19093)), (1, addr(19092))],
        });
        assert_eq!(result, CommandResult::Ok);
        let ids: Vec<(i32, u16)> = state.identities.values().map(|i| (i.id, i.slot)).collect();
        assert_eq!(ids, [(1, 0), (2, 1), (1_000_001, 2), (1_000_002, 3)]);
        assert_eq!(state.broker_of(1_000_002), ("b", 2));
        assert_eq!(state.broker_of(2), (DEFAULT_CLUSTER, 2));

        // Each cluster's sync marks only its own brokers absent.
        state.apply(&Command::SyncBrokers {
            brokers: vec![(1, addr(9092))],
        });
        state.apply(&Command::SyncClusterBrokers {
            cluster: "b".into(),
            brokers: vec![(2, addr(19093))],
        });
        let present: Vec<i32> = state
            .identities
            .values()
            .filter(|i| i.present)
            .map(|i| i.id)
            .collect();
        assert_eq!(present, [1, 1_000_002]);
    }

    #[test]
    fn brokers_without_a_virtual_id_are_left_out_and_named() {
        let mut state = at_level_6();
        let result = state.apply(&Command::SyncClusterBrokers {
            cluster: "b".into(),
            brokers: vec![(STRIDE, addr(1)), (3, addr(2))],
        });
        let CommandResult::Conflict { reason } = result else {
            panic!("{result:?}");
        };
        assert!(
            reason.contains("broker 1000000: id out of range"),
            "{reason}"
        );
        assert_eq!(
            state.identities.keys().copied().collect::<Vec<_>>(),
            [1_000_003]
        );
        let unknown = state.apply(&Command::SyncClusterBrokers {
            cluster: "c".into(),
            brokers: vec![(1, addr(1))],
        });
        assert!(matches!(unknown, CommandResult::Conflict { .. }));
    }

    #[test]
    fn clusters_keep_their_numbers() {
        let mut state = at_level_6();
        state.apply(&Command::RegisterCluster { name: "c".into() });
        state.apply(&Command::RegisterCluster { name: "b".into() });
        state.apply(&Command::RegisterCluster {
            name: DEFAULT_CLUSTER.into(),
        });
        assert_eq!(state.backend_clusters["b"].number, 1);
        assert_eq!(state.backend_clusters["c"].number, 2);
        assert_eq!(state.virtual_id("c", 7), Some(2_000_007));
        assert_eq!(state.virtual_id(DEFAULT_CLUSTER, 7), Some(7));
        let bad = state.apply(&Command::RegisterCluster { name: "a b".into() });
        assert!(matches!(bad, CommandResult::Conflict { .. }));
    }

    #[test]
    fn routes_need_their_level() {
        let mut below = ControlState::default();
        below.apply(&Command::SetFeatureLevel { level: LEVEL - 1 });
        let result = below.apply(&Command::RegisterCluster { name: "b".into() });
        assert!(matches!(
            result,
            CommandResult::Refused { needed: LEVEL, .. }
        ));
        assert!(!below.has_route_data());
    }
}
