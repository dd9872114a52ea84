//! The fleet's replicated control state: which node serves which broker identity, at
//! which assignment epoch, which nodes are draining, and the fleet's security (SCRAM
//! users, ACLs, admin tokens), traffic governance (breakers, quotas), offset resets,
//! zones, and the backend clusters and routes.
//!
//! One typed [`Command`] enum applied by one deterministic state machine is the only way
//! to change that state, so every node that has applied the same log index holds the
//! same state, and later capabilities extend the enum instead of adding side channels.
//! Raft (openraft 0.9, storage v2) orders the commands; the log is durable in redb and
//! the state itself is kept in memory and persisted through snapshots.
//!
//! The node uses [`ControlPlane`] only; the other modules are public for tests and tools.

pub mod codec;
pub mod control_plane;
pub mod error;
pub mod governance;
pub mod incarnation;
pub mod log_store;
pub mod migrations;
pub mod network;
pub mod offset_resets;
pub mod routes;
pub mod rpc_server;
pub mod security;
pub mod state;
pub mod state_machine;
pub mod status;
pub mod tls;
pub mod types;
pub mod zones;

pub use control_plane::{ControlPlane, RaftConfig};
pub use error::{ProposeError, RaftError};
pub use governance::{
    Breaker, BreakerMode, BreakerOrigin, BreakerRule, QuotaEntity, QuotaKey, QuotaKind,
    QuotaLimits, ResolvedQuota, RuleMetric, TopicPattern,
};
pub use incarnation::data_incarnation;
pub use rpc_server::RefusalCounts;
pub use security::{
    AclBinding, AclFilter, AclOperation, AclPermission, AdminToken, Decision, PatternType,
    ResourceType, ScramCredential, ScramMechanism, TokenScope,
};
pub use state::{BrokerAddr, Command, CommandResult, ControlState, Identity, FEATURE_LEVEL};
pub use status::{RaftStatus, Role};
pub use tls::RaftTls;
pub use types::{Member, NodeId, TypeConfig};
