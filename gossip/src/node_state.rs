//! What a node publishes about itself, and its encoding as chitchat key-values.
//!
//! One key per field rather than one JSON document: the field that changes most (`load`)
//! then travels alone in a gossip delta instead of dragging the whole state with it, and
//! the keys stay readable in chitchat's own debug output. The price is that a peer can hold
//! a partial state (a delta cut short, or a node of another version), so decoding is strict
//! and a state that does not decode is skipped by the caller, never guessed at.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const NODE_ID: &str = "node_id";
const ADVERTISED_HOST: &str = "advertised_host";
const BOOTSTRAP_PORT: &str = "bootstrap_port";
const IDENTITY_PORT_BASE: &str = "identity_port_base";
const ZONE: &str = "zone";
const RAFT_ADDR: &str = "raft_addr";
const ADMIN_ADDR: &str = "admin_addr";
const INCARNATION: &str = "incarnation";
pub(crate) const LIFECYCLE: &str = "lifecycle";
pub(crate) const LOAD: &str = "load";
const FEATURE_LEVEL: &str = "feature_level";
const TLS_IDENTITY_PORT_BASE: &str = "tls_identity_port_base";

/// What every node publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub node_id: u64,
    pub advertised_host: String,
    pub bootstrap_port: u16,
    pub identity_port_base: u16,
    /// `Some("")` is published as no zone: an empty zone names no failure domain.
    pub zone: Option<String>,
    /// `host:port` of the node's Raft RPC listener.
    pub raft_addr: String,
    /// `host:port` of the node's admin HTTP listener.
    pub admin_addr: String,
    /// Names the node's data directory; a wiped directory gets a new one, so the fleet can
    /// tell a restart from a replacement.
    pub incarnation: String,
    pub lifecycle: Lifecycle,
    /// Open client connections.
    pub load: u64,
    /// The highest fleet feature level this node's build understands (see the control
    /// state's `feature_level`). Nodes of releases before feature levels publish no key
    /// and read as 0.
    pub feature_level: u16,
    /// Where the node serves identities over TLS, if it has TLS listeners. Published as an
    /// empty value when it has none; nodes of earlier releases publish no key.
    pub tls_identity_port_base: Option<u16>,
}

/// Where a node is in its life in the fleet; only `Serving` nodes should be given identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    Joining,
    Serving,
    Draining,
    /// Alive, but has reached no broker of the backend for longer than the takeover
    /// deadline (a network partition between this node and the brokers): the fleet moves
    /// its identities away as if it were dead, and gives them back once it reaches a broker.
    BackendUnreachable,
}

/// Why a peer's key-values are not a [`NodeState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("key `{0}` is missing")]
    Missing(&'static str),
    #[error("key `{key}` has invalid value {value:?}")]
    Invalid { key: &'static str, value: String },
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Joining => "joining",
            Lifecycle::Serving => "serving",
            Lifecycle::Draining => "draining",
            Lifecycle::BackendUnreachable => "backend-unreachable",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lifecycle {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "joining" => Ok(Lifecycle::Joining),
            "serving" => Ok(Lifecycle::Serving),
            "draining" => Ok(Lifecycle::Draining),
            "backend-unreachable" => Ok(Lifecycle::BackendUnreachable),
            _ => Err(()),
        }
    }
}

impl NodeState {
    /// The key-values published for this state; every key is always present.
    pub fn to_key_values(&self) -> Vec<(String, String)> {
        let zone = self.zone.clone().unwrap_or_default();
        [
            (NODE_ID, self.node_id.to_string()),
            (ADVERTISED_HOST, self.advertised_host.clone()),
            (BOOTSTRAP_PORT, self.bootstrap_port.to_string()),
            (IDENTITY_PORT_BASE, self.identity_port_base.to_string()),
            (ZONE, zone),
            (RAFT_ADDR, self.raft_addr.clone()),
            (ADMIN_ADDR, self.admin_addr.clone()),
            (INCARNATION, self.incarnation.clone()),
            (LIFECYCLE, self.lifecycle.to_string()),
            (LOAD, self.load.to_string()),
            (FEATURE_LEVEL, self.feature_level.to_string()),
            (
                TLS_IDENTITY_PORT_BASE,
                self.tls_identity_port_base
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect()
    }

    /// Rebuilds a state from key-values, given a lookup by key.
    pub fn from_lookup<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, DecodeError> {
        let text = |key: &'static str| get(key).ok_or(DecodeError::Missing(key));
        Ok(NodeState {
            node_id: parsed(NODE_ID, text(NODE_ID)?)?,
            advertised_host: non_empty(ADVERTISED_HOST, text(ADVERTISED_HOST)?)?,
            bootstrap_port: parsed(BOOTSTRAP_PORT, text(BOOTSTRAP_PORT)?)?,
            identity_port_base: parsed(IDENTITY_PORT_BASE, text(IDENTITY_PORT_BASE)?)?,
            zone: Some(text(ZONE)?)
                .filter(|zone| !zone.is_empty())
                .map(str::to_string),
            raft_addr: non_empty(RAFT_ADDR, text(RAFT_ADDR)?)?,
            admin_addr: non_empty(ADMIN_ADDR, text(ADMIN_ADDR)?)?,
            incarnation: non_empty(INCARNATION, text(INCARNATION)?)?,
            lifecycle: parsed(LIFECYCLE, text(LIFECYCLE)?)?,
            load: parsed(LOAD, text(LOAD)?)?,
            feature_level: get(FEATURE_LEVEL).map_or(Ok(0), |v| parsed(FEATURE_LEVEL, v))?,
            tls_identity_port_base: match get(TLS_IDENTITY_PORT_BASE) {
                None | Some("") => None,
                Some(port) => Some(parsed(TLS_IDENTITY_PORT_BASE, port)?),
            },
        })
    }

    /// Rebuilds a state from a list of key-values (later duplicates win).
    pub fn from_key_values<'a>(
        key_values: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, DecodeError> {
        let map: std::collections::HashMap<&str, &str> = key_values.into_iter().collect();
        Self::from_lookup(|key| map.get(key).copied())
    }
}

fn parsed<T: FromStr>(key: &'static str, value: &str) -> Result<T, DecodeError> {
    value.parse().map_err(|_| invalid(key, value))
}

fn non_empty(key: &'static str, value: &str) -> Result<String, DecodeError> {
    if value.is_empty() {
        return Err(invalid(key, value));
    }
    Ok(value.to_string())
}

fn invalid(key: &'static str, value: &str) -> DecodeError {
    DecodeError::Invalid {
        key,
        value: value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeState {
        NodeState {
            node_id: 7,
            advertised_host: "127.0.0.7".to_string(),
            bootstrap_port: 9192,
            identity_port_base: 9200,
            zone: Some("eu-west-1a".to_string()),
            raft_addr: "127.0.0.7:9700".to_string(),
            admin_addr: "127.0.0.7:9644".to_string(),
            incarnation: "a1b2".to_string(),
            lifecycle: Lifecycle::Draining,
            load: 42,
            feature_level: 3,
            tls_identity_port_base: Some(9300),
        }
    }

    fn decode(kvs: &[(String, String)]) -> Result<NodeState, DecodeError> {
        NodeState::from_key_values(kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    fn with(key: &str, value: &str) -> Vec<(String, String)> {
        let mut kvs = sample().to_key_values();
        kvs.iter_mut().find(|(k, _)| k == key).unwrap().1 = value.to_string();
        kvs
    }

    #[test]
    fn round_trips_through_key_values() {
        assert_eq!(decode(&sample().to_key_values()), Ok(sample()));
        let no_zone = NodeState {
            zone: None,
            lifecycle: Lifecycle::Joining,
            ..sample()
        };
        assert_eq!(decode(&no_zone.to_key_values()), Ok(no_zone));
    }

    #[test]
    fn every_lifecycle_round_trips() {
        for lifecycle in [
            Lifecycle::Joining,
            Lifecycle::Serving,
            Lifecycle::Draining,
            Lifecycle::BackendUnreachable,
        ] {
            assert_eq!(lifecycle.as_str().parse(), Ok(lifecycle));
        }
    }

    #[test]
    fn missing_key_is_refused() {
        let mut kvs = sample().to_key_values();
        kvs.retain(|(k, _)| k != LOAD);
        assert_eq!(decode(&kvs), Err(DecodeError::Missing(LOAD)));
        assert_eq!(
            NodeState::from_key_values([]),
            Err(DecodeError::Missing(NODE_ID))
        );
    }

    #[test]
    fn garbled_values_are_refused() {
        let cases = [
            (NODE_ID, "seven"),
            (NODE_ID, "-1"),
            (BOOTSTRAP_PORT, "70000"),
            (IDENTITY_PORT_BASE, ""),
            (LIFECYCLE, "Serving"),
            (LIFECYCLE, "dead"),
            (LOAD, "1.5"),
            (ADVERTISED_HOST, ""),
            (RAFT_ADDR, ""),
            (ADMIN_ADDR, ""),
        ];
        for (key, value) in cases {
            let err = decode(&with(key, value)).unwrap_err();
            assert!(
                matches!(&err, DecodeError::Invalid { key: k, .. } if *k == key),
                "{key}={value:?} gave {err}"
            );
        }
    }

    #[test]
    fn a_node_of_a_release_before_feature_levels_reads_as_level_0() {
        let mut kvs = sample().to_key_values();
        kvs.retain(|(k, _)| k != FEATURE_LEVEL);
        assert_eq!(decode(&kvs).unwrap().feature_level, 0);
        let err = decode(&with(FEATURE_LEVEL, "x")).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Invalid {
                key: FEATURE_LEVEL,
                ..
            }
        ));
    }

    #[test]
    fn tls_ports_are_optional() {
        let mut kvs = sample().to_key_values();
        kvs.retain(|(k, _)| k != TLS_IDENTITY_PORT_BASE);
        assert_eq!(decode(&kvs).unwrap().tls_identity_port_base, None);
        let none = decode(&with(TLS_IDENTITY_PORT_BASE, "")).unwrap();
        assert_eq!(none.tls_identity_port_base, None);
        assert!(decode(&with(TLS_IDENTITY_PORT_BASE, "70000")).is_err());
    }

    #[test]
    fn extra_keys_are_ignored() {
        let mut kvs = sample().to_key_values();
        kvs.push(("future_field".to_string(), "x".to_string()));
        assert_eq!(decode(&kvs), Ok(sample()));
    }

    #[test]
    fn error_names_the_key() {
        let err = decode(&with(LOAD, "lots")).unwrap_err();
        assert_eq!(err.to_string(), "key `load` has invalid value \"lots\"");
    }
}
