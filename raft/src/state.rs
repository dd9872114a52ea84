//! The product's authoritative control state and the only way to change it: the broker
//! identities the fleet impersonates and who serves them, drained nodes, the fleet
//! feature level, (level 2) the fleet's security: SCRAM users, ACLs and admin tokens
//! (see [`crate::security`]), and (level 3) traffic governance: topic circuit breakers,
//! their automatic rules and client quotas (see [`crate::governance`]), (level 4) online
//! consumer offset resets (see [`crate::offset_resets`]), (level 5) zones: the CIDR ->
//! zone map and per-zone identity owners (see [`crate::zones`]) and (level 6) backend
//! clusters and routes: which cluster serves each topic, group and transactional id, the
//! identities of every cluster's brokers (see [`crate::routes`]) and live topic migrations
//! between clusters (see [`crate::migrations`]).
//!
//! Every replica applies the same committed commands in the same order, so `apply` must
//! be a pure function of (state, command): no clocks, no randomness, no iteration over
//! hash maps, no dependence on the order of items inside a command where the order is
//! not meaningful. New capabilities (routes, breakers, quotas, ...) are added as new
//! `Command` variants and new fields here, never as side channels.
//!
//! A fleet is upgraded node by node, so for a while it runs two releases. A node of the
//! older one cannot decode a command variant it has never heard of, and its Raft would
//! stop on it. So every variant names the fleet feature level that introduced it, the
//! state holds the level the fleet has committed, and a command is proposed only once the
//! committed level reaches its own ([`ControlState::accepts`]). The leader raises the level
//! only when every Raft member publishes in gossip that its build understands it, as
//! Kafka's `metadata.version` is raised only when every broker supports it. Variants are
//! only ever appended: bincode numbers them by position. `apply` refuses a command above
//! the committed level too, so a proposer that skipped the check cannot put data in the
//! state that a snapshot for older members would have to leave out.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::governance::{Breaker, BreakerRule, QuotaKey, QuotaLimits, TopicPattern};
use crate::migrations::{Findings, Migration, MigrationPhase};
use crate::offset_resets::{OffsetReset, ResetPhase};
use crate::routes::{BackendClusterEntry, ClusterBroker, RouteKey};
use crate::security::{AclBinding, AdminToken, ScramCredential, ScramMechanism};

/// Address of a backend broker as seen in the backend cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// A broker identity the fleet impersonates towards clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Identity id; equal to the real broker id in single-cluster mode.
    pub id: i32,
    /// Dense, never reused index, e.g. for deriving a listener port.
    pub slot: u16,
    pub broker: BrokerAddr,
    /// Node currently serving this identity.
    pub owner: Option<u64>,
    /// Whether the broker is still in the backend cluster.
    pub present: bool,
}

/// The highest fleet feature level this build understands. Level 1 introduced the level
/// itself ([`Command::SetFeatureLevel`]) and the snapshot format that records it; level 2
/// the security state (users, ACLs, admin tokens) and the snapshot format that holds it;
/// level 3 the governance state (breakers, breaker rules, quotas) and its snapshot format;
/// level 4 online consumer offset resets and their snapshot format; level 5 zones (the
/// zone map, per-zone owners) and their snapshot format; level 6 backend clusters and
/// routes and their snapshot format.
pub const FEATURE_LEVEL: u16 = 6;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ControlState {
    /// Key: identity id.
    pub identities: BTreeMap<i32, Identity>,
    /// Bumped by every accepted `Assign`.
    pub assignment_epoch: u64,
    /// Node ids an operator asked to drain.
    pub drained: BTreeSet<u64>,
    /// The fleet feature level: every member understands the commands of this level. 0 in
    /// a fleet that has never raised it.
    pub feature_level: u16,
    /// SCRAM credentials by user name, then mechanism. Empty below level 2.
    pub users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Every ACL. Empty below level 2.
    pub acls: BTreeSet<AclBinding>,
    /// Admin API tokens by name. Empty below level 2.
    pub tokens: BTreeMap<String, AdminToken>,
    /// Open circuit breakers by topic pattern. Empty below level 3.
    pub breakers: BTreeMap<TopicPattern, Breaker>,
    /// Automatic breaker rules by name. Empty below level 3.
    pub breaker_rules: BTreeMap<String, BreakerRule>,
    /// Client quotas by entity. Empty below level 3.
    pub quotas: BTreeMap<QuotaKey, QuotaLimits>,
    /// Consumer offset resets by id, active and recently finished. Empty below level 4.
    pub offset_resets: BTreeMap<String, OffsetReset>,
    /// Client address blocks and their zones; blocks never overlap. Empty below level 5.
    pub zone_map: BTreeMap<IpNet, String>,
    /// Per zone, the node of that zone that serves each identity to the zone's clients.
    /// Empty below level 5.
    pub zone_owners: BTreeMap<String, BTreeMap<i32, u64>>,
    /// Backend clusters other than `default`, by name. Empty below level 6.
    pub backend_clusters: BTreeMap<String, BackendClusterEntry>,
    /// Routes to backend clusters; prefixes of one resource never overlap. Empty below
    /// level 6.
    pub routes: BTreeMap<RouteKey, String>,
    /// The cluster of what no route names, when not `default`. `None` below level 6.
    pub default_cluster: Option<String>,
    /// The cluster and broker behind each identity not of `default`. Empty below level 6.
    pub cluster_identities: BTreeMap<i32, ClusterBroker>,
    /// Topic migrations by topic, active and recently finished. Empty below level 6.
    pub migrations: BTreeMap<String, Migration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Brokers seen in the backend cluster: new ids get the next free slot (dense, never
    /// reused), known ids update their address, absent ones get `present = false`.
    SyncBrokers {
        brokers: Vec<(i32, BrokerAddr)>,
    },
    /// New owners for some identities, computed by the leader's controller. Applied only
    /// if `expected_epoch` equals the current epoch (optimistic concurrency); then the
    /// epoch is bumped once. Unknown identity ids are ignored.
    Assign {
        expected_epoch: u64,
        owners: Vec<(i32, u64)>,
    },
    SetDrained {
        node: u64,
        drained: bool,
    },
    /// Raises the fleet feature level; a lower or equal level changes nothing, so the level
    /// never goes back and applying it twice is harmless. (Level 1.)
    SetFeatureLevel {
        level: u16,
    },
    /// Adds or replaces `user`'s credential for `mechanism`. (Level 2.)
    PutScramCredential {
        user: String,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    },
    /// Removes `user`'s credential for `mechanism`, or every one when `None`; a user left
    /// without credentials is removed. Unknown users and mechanisms are ignored. (Level 2.)
    DeleteScramCredential {
        user: String,
        mechanism: Option<ScramMechanism>,
    },
    /// Adds bindings; ones already present are kept once. (Level 2.)
    AddAcls {
        bindings: Vec<AclBinding>,
    },
    /// Removes exactly these bindings; absent ones are ignored. A filter (`kafka-acls
    /// --remove`) is resolved by the proposer with [`ControlState::acls_matching`], so the
    /// log says what was removed. (Level 2.)
    RemoveAcls {
        bindings: Vec<AclBinding>,
    },
    /// Adds or replaces the admin token `name`. (Level 2.)
    PutToken {
        name: String,
        token: AdminToken,
    },
    /// Removes the admin token `name`, if any. (Level 2.)
    DeleteToken {
        name: String,
    },
    /// Opens a breaker, replacing any open one on the same pattern. (Level 3.)
    OpenBreaker {
        breaker: Breaker,
    },
    /// Closes the breaker on `pattern`; with `opened_at_ms`, only if it is still that
    /// opening. Absent breakers are ignored. (Level 3.)
    CloseBreaker {
        pattern: TopicPattern,
        opened_at_ms: Option<u64>,
    },
    /// Adds or replaces the automatic breaker rule of the same name. (Level 3.)
    PutBreakerRule {
        rule: BreakerRule,
    },
    /// Removes the rule `name`, if any; breakers it opened stay until their cool-down
    /// ends. (Level 3.)
    DeleteBreakerRule {
        name: String,
    },
    /// Sets the limits of a quota entity; empty limits remove it. (Level 3.)
    SetQuota {
        key: QuotaKey,
        limits: QuotaLimits,
    },
    /// Records a new offset reset, pending. A known id changes nothing; a group with an
    /// active reset refuses a second one. (Level 4.)
    CreateOffsetReset {
        reset: OffsetReset,
    },
    /// Moves reset `id` from phase `from` to `to` (at wall-clock `at_ms`, given by the
    /// proposer); ignored unless the reset is in `from` and the change is allowed.
    /// (Level 4.)
    AdvanceOffsetReset {
        id: String,
        from: ResetPhase,
        to: ResetPhase,
        at_ms: u64,
    },
    /// Maps client addresses in `cidr` to `zone`, replacing that block's zone; refused
    /// (`Conflict`) when it overlaps another block. (Level 5.)
    SetZoneMapping {
        cidr: IpNet,
        zone: String,
    },
    /// Removes the block `cidr` from the zone map, if present. (Level 5.)
    RemoveZoneMapping {
        cidr: IpNet,
    },
    /// Replaces zone `zone`'s identity owners (an empty list removes the zone), computed
    /// by the leader's controller; applied only at `expected_epoch`, which it bumps, as
    /// `Assign` does. (Level 5.)
    AssignZone {
        expected_epoch: u64,
        zone: String,
        owners: Vec<(i32, u64)>,
    },
    /// Registers backend cluster `name` under the next number; a known name (and
    /// `default`) changes nothing. Proposed by the leader for the clusters of its
    /// configuration. (Level 6.)
    RegisterCluster {
        name: String,
    },
    /// `SyncBrokers` for one backend cluster: its brokers become identities with virtual
    /// ids. (Level 6.)
    SyncClusterBrokers {
        cluster: String,
        brokers: Vec<(i32, BrokerAddr)>,
    },
    /// Routes `key` to `cluster`, replacing the key's cluster; refused (`Conflict`) for an
    /// unknown cluster or a prefix that overlaps another. (Level 6.)
    SetRoute {
        key: RouteKey,
        cluster: String,
    },
    /// Removes the route `key`, if present. (Level 6.)
    DeleteRoute {
        key: RouteKey,
    },
    /// Sends what no route names to `cluster`. (Level 6.)
    SetDefaultCluster {
        cluster: String,
    },
    /// Starts a topic migration, in `copying-config`; refused (`Conflict`) for a topic
    /// already migrating, a source that does not serve it, or an unknown target.
    /// (Level 6.)
    StartMigration {
        migration: Migration,
    },
    /// Moves `topic`'s migration from phase `from` to `to` (at wall-clock `at_ms`, given
    /// by the proposer) with what the driver found; refused unless it is in `from` and the
    /// step is allowed. (Level 6.)
    AdvanceMigration {
        topic: String,
        from: MigrationPhase,
        to: MigrationPhase,
        at_ms: u64,
        findings: Findings,
    },
    /// Records what the driver found of an active migration (its groups' progress).
    /// (Level 6.)
    UpdateMigration {
        topic: String,
        findings: Findings,
    },
    /// Forgets migrations finished a day before `now_ms`. (Level 6.)
    ForgetMigrations {
        now_ms: u64,
    },
}

impl Command {
    /// The fleet feature level at which this command may be proposed.
    pub fn feature_level(&self) -> u16 {
        match self {
            Command::SyncBrokers { .. } | Command::Assign { .. } | Command::SetDrained { .. } => 0,
            // The leader proposes it only when every member understands the new level,
            // which includes this command.
            Command::SetFeatureLevel { .. } => 0,
            Command::PutScramCredential { .. }
            | Command::DeleteScramCredential { .. }
            | Command::AddAcls { .. }
            | Command::RemoveAcls { .. }
            | Command::PutToken { .. }
            | Command::DeleteToken { .. } => 2,
            Command::OpenBreaker { .. }
            | Command::CloseBreaker { .. }
            | Command::PutBreakerRule { .. }
            | Command::DeleteBreakerRule { .. }
            | Command::SetQuota { .. } => crate::governance::LEVEL,
            Command::CreateOffsetReset { .. } | Command::AdvanceOffsetReset { .. } => {
                crate::offset_resets::LEVEL
            }
            Command::SetZoneMapping { .. }
            | Command::RemoveZoneMapping { .. }
            | Command::AssignZone { .. } => crate::zones::LEVEL,
            Command::RegisterCluster { .. }
            | Command::SyncClusterBrokers { .. }
            | Command::SetRoute { .. }
            | Command::DeleteRoute { .. }
            | Command::SetDefaultCluster { .. }
            | Command::StartMigration { .. }
            | Command::AdvanceMigration { .. }
            | Command::UpdateMigration { .. }
            | Command::ForgetMigrations { .. } => crate::routes::LEVEL,
        }
    }
}

/// What applying a command did; returned to the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    Ok,
    StaleEpoch {
        current: u64,
    },
    /// The command needs a higher feature level than the fleet had committed when it was
    /// applied; nothing changed. Only a proposer that skipped [`ControlState::accepts`]
    /// sees this.
    Refused {
        needed: u16,
        committed: u16,
    },
    /// The command contradicts the state (a second active reset of one group); nothing
    /// changed.
    Conflict {
        reason: String,
    },
}

impl ControlState {
    /// Applies one committed command.
    pub fn apply(&mut self, command: &Command) -> CommandResult {
        if !self.accepts(command) {
            return CommandResult::Refused {
                needed: command.feature_level(),
                committed: self.feature_level,
            };
        }
        match command {
            Command::SyncBrokers { brokers } => self.sync_brokers(brokers),
            Command::Assign {
                expected_epoch,
                owners,
            } => self.assign(*expected_epoch, owners),
            Command::SetDrained { node, drained } => self.set_drained(*node, *drained),
            Command::SetFeatureLevel { level } => {
                self.feature_level = self.feature_level.max(*level);
                CommandResult::Ok
            }
            Command::PutScramCredential {
                user,
                mechanism,
                credential,
            } => self.put_scram_credential(user, *mechanism, credential),
            Command::DeleteScramCredential { user, mechanism } => {
                self.delete_scram_credential(user, *mechanism)
            }
            Command::AddAcls { bindings } => self.add_acls(bindings),
            Command::RemoveAcls { bindings } => self.remove_acls(bindings),
            Command::PutToken { name, token } => self.put_token(name, token),
            Command::DeleteToken { name } => self.delete_token(name),
            Command::OpenBreaker { breaker } => self.open_breaker(breaker),
            Command::CloseBreaker {
                pattern,
                opened_at_ms,
            } => self.close_breaker(pattern, *opened_at_ms),
            Command::PutBreakerRule { rule } => self.put_breaker_rule(rule),
            Command::DeleteBreakerRule { name } => self.delete_breaker_rule(name),
            Command::SetQuota { key, limits } => self.set_quota(key, limits),
            Command::CreateOffsetReset { reset } => self.create_offset_reset(reset),
            Command::AdvanceOffsetReset {
                id,
                from,
                to,
                at_ms,
            } => self.advance_offset_reset(id, *from, *to, *at_ms),
            Command::SetZoneMapping { cidr, zone } => self.set_zone_mapping(cidr, zone),
            Command::RemoveZoneMapping { cidr } => self.remove_zone_mapping(cidr),
            Command::AssignZone {
                expected_epoch,
                zone,
                owners,
            } => self.assign_zone(*expected_epoch, zone, owners),
            Command::RegisterCluster { name } => self.register_cluster(name),
            Command::SyncClusterBrokers { cluster, brokers } => {
                self.sync_cluster_brokers(cluster, brokers)
            }
            Command::SetRoute { key, cluster } => self.set_route(key, cluster),
            Command::DeleteRoute { key } => self.delete_route(key),
            Command::SetDefaultCluster { cluster } => self.set_default_cluster(cluster),
            Command::StartMigration { migration } => self.start_migration(migration),
            Command::AdvanceMigration {
                topic,
                from,
                to,
                at_ms,
                findings,
            } => self.advance_migration(topic, (*from, *to), *at_ms, findings),
            Command::UpdateMigration { topic, findings } => self.update_migration(topic, findings),
            Command::ForgetMigrations { now_ms } => self.forget_migrations(*now_ms),
        }
    }

    /// Whether `command` may be proposed: every member understands it.
    pub fn accepts(&self, command: &Command) -> bool {
        command.feature_level() <= self.feature_level
    }

    /// The brokers of the cluster `default`; another cluster's identities are left alone.
    pub(crate) fn sync_brokers(&mut self, brokers: &[(i32, BrokerAddr)]) -> CommandResult {
        // Sorted by id (last duplicate wins) so slots do not depend on input order.
        let seen: BTreeMap<i32, &BrokerAddr> = brokers.iter().map(|(id, a)| (*id, a)).collect();
        let (taken, free): (Vec<_>, Vec<_>) = seen
            .iter()
            .partition(|(id, _)| self.cluster_identities.contains_key(id));
        for (id, addr) in free {
            self.upsert_identity(*id, addr);
        }
        for identity in self.identities.values_mut() {
            if !self.cluster_identities.contains_key(&identity.id) {
                identity.present = seen.contains_key(&identity.id);
            }
        }
        if taken.is_empty() {
            return CommandResult::Ok;
        }
        let ids: Vec<String> = taken.iter().map(|(id, _)| id.to_string()).collect();
        CommandResult::Conflict {
            reason: format!(
                "cluster `default`: left out brokers {}: their ids are another cluster's virtual ids",
                ids.join(", ")
            ),
        }
    }

    pub(crate) fn upsert_identity(&mut self, id: i32, addr: &BrokerAddr) {
        if let Some(identity) = self.identities.get_mut(&id) {
            identity.broker = addr.clone();
            return;
        }
        let slot = self.next_slot();
        self.identities.insert(
            id,
            Identity {
                id,
                slot,
                broker: addr.clone(),
                owner: None,
                present: true,
            },
        );
    }

    /// Identities are never removed, so one past the highest slot is never reused.
    fn next_slot(&self) -> u16 {
        self.identities
            .values()
            .map(|i| i.slot.saturating_add(1))
            .max()
            .unwrap_or(0)
    }

    fn assign(&mut self, expected_epoch: u64, owners: &[(i32, u64)]) -> CommandResult {
        if expected_epoch != self.assignment_epoch {
            return CommandResult::StaleEpoch {
                current: self.assignment_epoch,
            };
        }
        for (id, owner) in owners {
            if let Some(identity) = self.identities.get_mut(id) {
                identity.owner = Some(*owner);
            }
        }
        self.assignment_epoch += 1;
        CommandResult::Ok
    }

    fn set_drained(&mut self, node: u64, drained: bool) -> CommandResult {
        if drained {
            self.drained.insert(node);
        } else {
            self.drained.remove(&node);
        }
        CommandResult::Ok
    }

    /// Identities owned by `node`, in id order.
    pub fn owned_by(&self, node: u64) -> impl Iterator<Item = &Identity> {
        self.identities
            .values()
            .filter(move |i| i.owner == Some(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{AclOperation, AclPermission, PatternType, ResourceType, TokenScope};

    fn addr(host: &str, port: u16) -> BrokerAddr {
        BrokerAddr {
            host: host.into(),
            port,
            rack: None,
        }
    }

    fn sync(ids: &[i32]) -> Command {
        Command::SyncBrokers {
            brokers: ids
                .iter()
                .map(|&i| (i, addr("b", 9000 + i as u16)))
                .collect(),
        }
    }

    #[test]
    fn slots_are_dense_and_never_reused() {
        let mut s = ControlState::default();
        s.apply(&sync(&[3, 1]));
        s.apply(&sync(&[1]));
        s.apply(&sync(&[1, 7]));
        let slots: Vec<(i32, u16, bool)> = s
            .identities
            .values()
            .map(|i| (i.id, i.slot, i.present))
            .collect();
        assert_eq!(slots, vec![(1, 0, true), (3, 1, false), (7, 2, true)]);
    }

    #[test]
    fn known_ids_update_their_address() {
        let mut s = ControlState::default();
        s.apply(&sync(&[1]));
        let moved = Command::SyncBrokers {
            brokers: vec![(1, addr("elsewhere", 1))],
        };
        s.apply(&moved);
        assert_eq!(s.identities[&1].broker.host, "elsewhere");
        assert_eq!(s.identities[&1].slot, 0);
    }

    #[test]
    fn stale_epoch_changes_nothing() {
        let mut s = ControlState::default();
        s.apply(&sync(&[1, 2]));
        let before = s.clone();
        let r = s.apply(&Command::Assign {
            expected_epoch: 5,
            owners: vec![(1, 9)],
        });
        assert_eq!(r, CommandResult::StaleEpoch { current: 0 });
        assert_eq!(s, before);
    }

    #[test]
    fn assign_bumps_epoch_once() {
        let mut s = ControlState::default();
        s.apply(&sync(&[1, 2]));
        let r = s.apply(&Command::Assign {
            expected_epoch: 0,
            owners: vec![(1, 9), (2, 8), (42, 7)],
        });
        assert_eq!(r, CommandResult::Ok);
        assert_eq!(s.assignment_epoch, 1);
        assert_eq!(s.identities[&1].owner, Some(9));
        assert_eq!(s.owned_by(8).map(|i| i.id).collect::<Vec<_>>(), vec![2]);
        assert!(!s.identities.contains_key(&42));
    }

    #[test]
    fn the_feature_level_only_rises() {
        let mut s = ControlState::default();
        s.apply(&Command::SetFeatureLevel { level: 1 });
        s.apply(&Command::SetFeatureLevel { level: 1 });
        assert_eq!(s.feature_level, 1);
        s.apply(&Command::SetFeatureLevel { level: 0 });
        assert_eq!(s.feature_level, 1);
    }

    fn security_commands() -> Vec<Command> {
        let credential = ScramCredential {
            salt: vec![7; 16],
            iterations: 8192,
            stored_key: vec![1; 32],
            server_key: vec![2; 32],
        };
        let binding = AclBinding {
            resource_type: ResourceType::Topic,
            name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        let token = AdminToken {
            scope: TokenScope::Admin,
            sha256: [9; 32],
        };
        vec![
            Command::PutScramCredential {
                user: "alice".into(),
                mechanism: ScramMechanism::Sha256,
                credential,
            },
            Command::DeleteScramCredential {
                user: "alice".into(),
                mechanism: None,
            },
            Command::AddAcls {
                bindings: vec![binding.clone(), binding.clone()],
            },
            Command::RemoveAcls {
                bindings: vec![binding],
            },
            Command::PutToken {
                name: "ops".into(),
                token,
            },
            Command::DeleteToken { name: "ops".into() },
        ]
    }

    fn level(level: u16) -> ControlState {
        let mut s = ControlState::default();
        s.apply(&Command::SetFeatureLevel { level });
        s
    }

    #[test]
    fn security_commands_need_level_2() {
        for command in security_commands() {
            assert_eq!(command.feature_level(), 2, "{command:?}");
            for below in [0, 1] {
                let mut s = level(below);
                assert!(!s.accepts(&command));
                let before = s.clone();
                let refused = CommandResult::Refused {
                    needed: 2,
                    committed: below,
                };
                assert_eq!(s.apply(&command), refused);
                assert_eq!(s, before);
            }
            assert!(level(2).accepts(&command));
        }
    }

    #[test]
    fn security_commands_are_idempotent() {
        let commands = security_commands();
        // Each command on the empty state and on the state the ones before it built.
        for i in 0..commands.len() {
            for start in [level(2), commands[..i].iter().fold(level(2), applied)] {
                let once = applied(start, &commands[i]);
                let twice = applied(once.clone(), &commands[i]);
                assert_eq!(once, twice, "{:?}", commands[i]);
            }
        }
    }

    fn applied(mut s: ControlState, command: &Command) -> ControlState {
        assert_eq!(s.apply(command), CommandResult::Ok);
        s
    }

    #[test]
    fn security_commands_change_the_state() {
        let commands = security_commands();
        let put = applied(level(2), &commands[0]);
        assert_eq!(put.users["alice"].len(), 1);
        let added = applied(level(2), &commands[2]);
        assert_eq!(added.acls.len(), 1);
        assert!(applied(added, &commands[3]).acls.is_empty());
        let token = applied(level(2), &commands[4]);
        assert_eq!(token.tokens["ops"].scope, TokenScope::Admin);
        assert!(applied(token, &commands[5]).tokens.is_empty());
    }

    #[test]
    fn drain_toggles() {
        let mut s = ControlState::default();
        s.apply(&Command::SetDrained {
            node: 4,
            drained: true,
        });
        assert!(s.drained.contains(&4));
        s.apply(&Command::SetDrained {
            node: 4,
            drained: false,
        });
        assert!(s.drained.is_empty());
    }
}
