//! Holds the control state in memory and makes it durable through snapshots only.
//!
//! The control state is small and changes rarely, so rewriting it whole on each
//! snapshot is cheaper and simpler than a persistent state machine. After a restart the
//! state is the latest snapshot plus a replay of the committed log, which openraft does
//! on its own because the log store persists the committed log id.
//!
//! A snapshot file is replaced atomically (temp file, fsync, rename, fsync of the dir)
//! so a crash leaves either the old or the new snapshot, never a torn one. Every applied
//! batch and every installed snapshot is published on a watch channel; readers (the data
//! path, the identity controller, the admin API) use the last applied state.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};

use crate::codec;
use crate::governance::{Breaker, BreakerRule, QuotaKey, QuotaLimits, TopicPattern};
use crate::log_store::StoreError;
use crate::offset_resets::OffsetReset;
use crate::security::{AclBinding, AdminToken, ScramCredential, ScramMechanism};
use crate::state::{CommandResult, ControlState, Identity};
use crate::types::{
    Entry, LogId, Member, NodeId, Snapshot, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};

/// File name of the latest snapshot inside the data dir.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";

/// What is written to the snapshot file: openraft's metadata plus the opaque bytes that
/// are also sent to lagging followers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl StoredSnapshot {
    fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(self.data.clone())),
        }
    }
}

/// The snapshot payload (also what is sent to lagging followers). bincode is not
/// self-describing, so the payload is tagged: a release that changes `ControlState` adds
/// a variant holding the new shape and migrates the old ones when decoding.
///
/// A snapshot may be sent to a node of the previous release during a rolling upgrade,
/// so the newest shape is written only once the fleet's feature level says every member
/// reads it; until then the state is written in the shape the previous release knows.
/// Variants are only ever appended, and a variant's shape is frozen once released.
#[derive(Serialize, Deserialize)]
enum SnapshotPayload {
    /// Feature level 0: releases before feature levels.
    V1(StateV1),
    /// Feature level 1.
    V2(StateV2),
    /// Feature level 2: the security state.
    V3(StateV3),
    /// Feature level 3: the governance state.
    V4(StateV4),
    /// Feature level 4: offset resets.
    V5(StateV5),
    /// Feature level 5: zones.
    V6(StateV6),
    /// Feature level 6 and later: backend clusters and routes.
    V7(ControlState),
}

/// The control state as releases before feature levels knew it.
#[derive(Serialize, Deserialize)]
struct StateV1 {
    identities: BTreeMap<i32, Identity>,
    assignment_epoch: u64,
    drained: BTreeSet<u64>,
}

/// The control state as the release of feature level 1 knew it.
#[derive(Serialize, Deserialize)]
struct StateV2 {
    identities: BTreeMap<i32, Identity>,
    assignment_epoch: u64,
    drained: BTreeSet<u64>,
    feature_level: u16,
}

/// The control state as the release of feature level 2 knew it.
#[derive(Serialize, Deserialize)]
struct StateV3 {
    identities: BTreeMap<i32, Identity>,
    assignment_epoch: u64,
    drained: BTreeSet<u64>,
    feature_level: u16,
    users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    acls: BTreeSet<AclBinding>,
    tokens: BTreeMap<String, AdminToken>,
}

/// The control state as the release of feature level 3 knew it.
#[derive(Serialize, Deserialize)]
struct StateV4 {
    identities: BTreeMap<i32, Identity>,
    assignment_epoch: u64,
    drained: BTreeSet<u64>,
    feature_level: u16,
    users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    acls: BTreeSet<AclBinding>,
    tokens: BTreeMap<String, AdminToken>,
    breakers: BTreeMap<TopicPattern, Breaker>,
    breaker_rules: BTreeMap<String, BreakerRule>,
    quotas: BTreeMap<QuotaKey, QuotaLimits>,
}

/// The control state as the release of feature level 4 knew it.
#[derive(Serialize, Deserialize)]
struct StateV5 {
    identities: BTreeMap<i32, Identity>,
    assignment_epoch: u64,
    drained: BTreeSet<u64>,
    feature_level: u16,
    users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    acls: BTreeSet<AclBinding>,
    tokens: BTreeMap<String, AdminToken>,
    breakers: BTreeMap<TopicPattern, Breaker>,
    breaker_rules: BTreeMap<String, BreakerRule>,
    quotas: BTreeMap<QuotaKey, QuotaLimits>,
    offset_resets: BTreeMap<String, OffsetReset>,
}

/// The control state as the release of feature level 5 knew it.
#[derive(Serialize, Deserialize)]
struct StateV6 {
    identities: BTreeMap<i32, Identity>,
    assignment_epoch: u64,
    drained: BTreeSet<u64>,
    feature_level: u16,
    users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    acls: BTreeSet<AclBinding>,
    tokens: BTreeMap<String, AdminToken>,
    breakers: BTreeMap<TopicPattern, Breaker>,
    breaker_rules: BTreeMap<String, BreakerRule>,
    quotas: BTreeMap<QuotaKey, QuotaLimits>,
    offset_resets: BTreeMap<String, OffsetReset>,
    zone_map: BTreeMap<IpNet, String>,
    zone_owners: BTreeMap<String, BTreeMap<i32, u64>>,
}

/// Why a state was not written.
#[derive(Debug, thiserror::Error)]
enum EncodeStateError {
    /// Security data exists only from level 2 on (`apply` refuses its commands below),
    /// and the older shapes have no room for it. Writing the newest shape instead would
    /// break members that cannot read it, and leaving the data out would lose it on every
    /// node restored from the snapshot, so the snapshot fails loudly: this is a bug.
    #[error("the control state holds security data at feature level {0}, which cannot record it")]
    SecurityBelowLevel(u16),
    /// Likewise for governance data below level 3.
    #[error(
        "the control state holds governance data at feature level {0}, which cannot record it"
    )]
    GovernanceBelowLevel(u16),
    /// Likewise for offset resets below level 4.
    #[error(
        "the control state holds offset resets at feature level {0}, which cannot record them"
    )]
    ResetsBelowLevel(u16),
    /// Likewise for the zone map and per-zone owners below level 5.
    #[error("the control state holds zones at feature level {0}, which cannot record them")]
    ZonesBelowLevel(u16),
    /// Likewise for backend clusters and routes below level 6.
    #[error("the control state holds routes at feature level {0}, which cannot record them")]
    RoutesBelowLevel(u16),
    #[error(transparent)]
    Encode(#[from] codec::EncodeError),
}

fn encode_state(state: &ControlState) -> Result<Vec<u8>, EncodeStateError> {
    if state.feature_level < 2 && state.has_security_data() {
        return Err(EncodeStateError::SecurityBelowLevel(state.feature_level));
    }
    if state.feature_level < 3 && state.has_governance_data() {
        return Err(EncodeStateError::GovernanceBelowLevel(state.feature_level));
    }
    if state.feature_level < 4 && !state.offset_resets.is_empty() {
        return Err(EncodeStateError::ResetsBelowLevel(state.feature_level));
    }
    if state.feature_level < 5 && state.has_zone_data() {
        return Err(EncodeStateError::ZonesBelowLevel(state.feature_level));
    }
    if state.feature_level < 6 && state.has_route_data() {
        return Err(EncodeStateError::RoutesBelowLevel(state.feature_level));
    }
    let payload = match state.feature_level {
        0 => SnapshotPayload::V1(StateV1 {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
        }),
        1 => SnapshotPayload::V2(StateV2 {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
        }),
        2 => SnapshotPayload::V3(StateV3 {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
            users: state.users.clone(),
            acls: state.acls.clone(),
            tokens: state.tokens.clone(),
        }),
        3 => SnapshotPayload::V4(StateV4 {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
            users: state.users.clone(),
            acls: state.acls.clone(),
            tokens: state.tokens.clone(),
            breakers: state.breakers.clone(),
            breaker_rules: state.breaker_rules.clone(),
            quotas: state.quotas.clone(),
        }),
        4 => SnapshotPayload::V5(StateV5 {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
            users: state.users.clone(),
            acls: state.acls.clone(),
            tokens: state.tokens.clone(),
            breakers: state.breakers.clone(),
            breaker_rules: state.breaker_rules.clone(),
            quotas: state.quotas.clone(),
            offset_resets: state.offset_resets.clone(),
        }),
        5 => SnapshotPayload::V6(StateV6 {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
            users: state.users.clone(),
            acls: state.acls.clone(),
            tokens: state.tokens.clone(),
            breakers: state.breakers.clone(),
            breaker_rules: state.breaker_rules.clone(),
            quotas: state.quotas.clone(),
            offset_resets: state.offset_resets.clone(),
            zone_map: state.zone_map.clone(),
            zone_owners: state.zone_owners.clone(),
        }),
        _ => SnapshotPayload::V7(state.clone()),
    };
    Ok(codec::encode(&payload)?)
}

fn decode_state(data: &[u8]) -> Result<ControlState, codec::DecodeError> {
    match codec::decode(data)? {
        SnapshotPayload::V1(v1) => Ok(ControlState {
            identities: v1.identities,
            assignment_epoch: v1.assignment_epoch,
            drained: v1.drained,
            ..ControlState::default()
        }),
        SnapshotPayload::V2(v2) => Ok(ControlState {
            identities: v2.identities,
            assignment_epoch: v2.assignment_epoch,
            drained: v2.drained,
            feature_level: v2.feature_level,
            ..ControlState::default()
        }),
        SnapshotPayload::V3(v3) => Ok(ControlState {
            identities: v3.identities,
            assignment_epoch: v3.assignment_epoch,
            drained: v3.drained,
            feature_level: v3.feature_level,
            users: v3.users,
            acls: v3.acls,
            tokens: v3.tokens,
            ..ControlState::default()
        }),
        SnapshotPayload::V4(v4) => Ok(ControlState {
            identities: v4.identities,
            assignment_epoch: v4.assignment_epoch,
            drained: v4.drained,
            feature_level: v4.feature_level,
            users: v4.users,
            acls: v4.acls,
            tokens: v4.tokens,
            breakers: v4.breakers,
            breaker_rules: v4.breaker_rules,
            quotas: v4.quotas,
            ..ControlState::default()
        }),
        SnapshotPayload::V5(v5) => Ok(ControlState {
            identities: v5.identities,
            assignment_epoch: v5.assignment_epoch,
            drained: v5.drained,
            feature_level: v5.feature_level,
            users: v5.users,
            acls: v5.acls,
            tokens: v5.tokens,
            breakers: v5.breakers,
            breaker_rules: v5.breaker_rules,
            quotas: v5.quotas,
            offset_resets: v5.offset_resets,
            ..ControlState::default()
        }),
        SnapshotPayload::V6(v6) => Ok(ControlState {
            identities: v6.identities,
            assignment_epoch: v6.assignment_epoch,
            drained: v6.drained,
            feature_level: v6.feature_level,
            users: v6.users,
            acls: v6.acls,
            tokens: v6.tokens,
            breakers: v6.breakers,
            breaker_rules: v6.breaker_rules,
            quotas: v6.quotas,
            offset_resets: v6.offset_resets,
            zone_map: v6.zone_map,
            zone_owners: v6.zone_owners,
            ..ControlState::default()
        }),
        SnapshotPayload::V7(state) => Ok(state),
    }
}

/// The latest snapshot, on disk and in memory; shared with snapshot builders.
struct SnapshotStore {
    path: PathBuf,
    current: Mutex<Option<StoredSnapshot>>,
}

impl SnapshotStore {
    /// Persists `snapshot` unless a snapshot at least as recent is already stored.
    /// The lock is held across the write so builders and installs never interleave.
    async fn save(&self, snapshot: StoredSnapshot) -> Result<(), StoreError> {
        let mut current = self.current.lock().await;
        if let Some(existing) = current.as_ref() {
            if existing.meta.last_log_id > snapshot.meta.last_log_id {
                return Ok(());
            }
        }
        let bytes = codec::encode(&snapshot)?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await??;
        *current = Some(snapshot);
        Ok(())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn load_snapshot(path: &Path) -> Result<Option<StoredSnapshot>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(codec::decode(&bytes)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub struct StateMachine {
    applied: Option<LogId>,
    membership: StoredMembership,
    state: ControlState,
    published: watch::Sender<Arc<ControlState>>,
    /// The members of the last applied (so committed) membership.
    members: watch::Sender<BTreeMap<NodeId, Member>>,
    snapshots: Arc<SnapshotStore>,
}

fn members_of(membership: &StoredMembership) -> BTreeMap<NodeId, Member> {
    let nodes = membership.membership().nodes();
    nodes.map(|(id, m)| (*id, m.clone())).collect()
}

impl StateMachine {
    /// Restores the state from the latest snapshot in `dir`, if any.
    pub fn open(dir: &Path) -> Result<StateMachine, StoreError> {
        let path = dir.join(SNAPSHOT_FILE);
        let stored = load_snapshot(&path)?;
        let (applied, membership, state) = match &stored {
            Some(s) => (
                s.meta.last_log_id,
                s.meta.last_membership.clone(),
                decode_state(&s.data)?,
            ),
            None => (None, StoredMembership::default(), ControlState::default()),
        };
        let (published, _) = watch::channel(Arc::new(state.clone()));
        let (members, _) = watch::channel(members_of(&membership));
        let snapshots = Arc::new(SnapshotStore {
            path,
            current: Mutex::new(stored),
        });
        Ok(StateMachine {
            applied,
            membership,
            state,
            published,
            members,
            snapshots,
        })
    }

    /// Subscribes to the members of the last committed membership.
    pub fn subscribe_members(&self) -> watch::Receiver<BTreeMap<NodeId, Member>> {
        self.members.subscribe()
    }

    fn set_membership(&mut self, membership: StoredMembership) {
        let fresh = members_of(&membership);
        self.membership = membership;
        self.members.send_if_modified(|current| {
            let changed = *current != fresh;
            if changed {
                *current = fresh;
            }
            changed
        });
    }

    /// Subscribes to the last applied state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ControlState>> {
        self.published.subscribe()
    }

    fn apply_entry(&mut self, entry: Entry) -> CommandResult {
        self.applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => CommandResult::Ok,
            EntryPayload::Normal(command) => self.state.apply(&command),
            EntryPayload::Membership(m) => {
                self.set_membership(StoredMembership::new(Some(entry.log_id), m));
                CommandResult::Ok
            }
        }
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(self.state.clone()));
    }
}

/// A consistent copy of the state taken when openraft asked for a snapshot; encoding and
/// writing happen off the state machine task.
pub struct SnapshotBuilder {
    applied: Option<LogId>,
    membership: StoredMembership,
    state: ControlState,
    snapshots: Arc<SnapshotStore>,
}

fn snapshot_id(applied: Option<LogId>) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    match applied {
        Some(id) => format!("{}-{}-{nanos}", id.leader_id.term, id.index),
        None => format!("none-{nanos}"),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let data =
            encode_state(&self.state).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: self.applied,
                last_membership: self.membership.clone(),
                snapshot_id: snapshot_id(self.applied),
            },
            data,
        };
        let snapshot = stored.to_snapshot();
        self.snapshots
            .save(stored)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let results = entries.into_iter().map(|e| self.apply_entry(e)).collect();
        self.publish();
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            applied: self.applied,
            membership: self.membership.clone(),
            state: self.state.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let signature = Some(meta.signature());
        let data = snapshot.into_inner();
        let state = decode_state(&data)
            .map_err(|e| StorageIOError::read_snapshot(signature.clone(), &e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.snapshots
            .save(stored)
            .await
            .map_err(|e| StorageIOError::write_snapshot(signature, &e))?;
        self.applied = meta.last_log_id;
        self.set_membership(meta.last_membership.clone());
        self.state = state;
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let current = self.snapshots.current.lock().await;
        Ok(current.as_ref().map(StoredSnapshot::to_snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::{BreakerMode, BreakerOrigin};
    use crate::security::{AclOperation, AclPermission, PatternType, ResourceType, TokenScope};
    use crate::state::{BrokerAddr, Command};

    /// The snapshot payload exactly as the release before feature levels declared it.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum PreviousPayload {
        V1(PreviousState),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct PreviousState {
        identities: BTreeMap<i32, Identity>,
        assignment_epoch: u64,
        drained: BTreeSet<u64>,
    }

    fn sample() -> ControlState {
        let mut state = ControlState::default();
        state.apply(&Command::SyncBrokers {
            brokers: vec![(
                1,
                BrokerAddr {
                    host: "b".into(),
                    port: 1,
                    rack: None,
                },
            )],
        });
        state.apply(&Command::SetDrained {
            node: 3,
            drained: true,
        });
        state
    }

    #[test]
    fn the_previous_release_reads_snapshots_until_the_level_is_raised() {
        let state = sample();
        let bytes = encode_state(&state).unwrap();
        let PreviousPayload::V1(old) = codec::decode(&bytes).unwrap();
        assert_eq!(old.identities, state.identities);
        assert_eq!(old.drained, state.drained);
        assert_eq!(decode_state(&bytes).unwrap(), state);
    }

    #[test]
    fn snapshots_of_the_previous_release_load() {
        let state = sample();
        let old = PreviousPayload::V1(PreviousState {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
        });
        let loaded = decode_state(&codec::encode(&old).unwrap()).unwrap();
        assert_eq!(loaded, state);
    }

    /// The snapshot payload exactly as the release of feature level 1 declared it.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Level1Payload {
        V1(PreviousState),
        V2(Level1State),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Level1State {
        identities: BTreeMap<i32, Identity>,
        assignment_epoch: u64,
        drained: BTreeSet<u64>,
        feature_level: u16,
    }

    fn at_level(level: u16) -> ControlState {
        let mut state = sample();
        state.apply(&Command::SetFeatureLevel { level });
        state
    }

    fn secured() -> ControlState {
        let mut state = at_level(2);
        state.apply(&Command::PutScramCredential {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512,
            credential: ScramCredential {
                salt: vec![1, 2, 3],
                iterations: 4096,
                stored_key: vec![4; 64],
                server_key: vec![5; 64],
            },
        });
        state.apply(&Command::AddAcls {
            bindings: vec![AclBinding {
                resource_type: ResourceType::Group,
                name: "app-".into(),
                pattern_type: PatternType::Prefixed,
                principal: "User:*".into(),
                host: "*".into(),
                operation: AclOperation::Read,
                permission: AclPermission::Allow,
            }],
        });
        state.apply(&Command::PutToken {
            name: "ops".into(),
            token: AdminToken {
                scope: TokenScope::Admin,
                sha256: [7; 32],
            },
        });
        state
    }

    #[test]
    fn a_level_0_state_is_written_as_the_release_before_feature_levels_wrote_it() {
        let state = at_level(0);
        let expected = PreviousPayload::V1(PreviousState {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
        });
        assert_eq!(
            encode_state(&state).unwrap(),
            codec::encode(&expected).unwrap()
        );
    }

    #[test]
    fn a_level_1_state_is_written_as_the_level_1_release_wrote_it() {
        let state = at_level(1);
        let expected = Level1Payload::V2(Level1State {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: 1,
        });
        let bytes = encode_state(&state).unwrap();
        assert_eq!(bytes, codec::encode(&expected).unwrap());
        assert_eq!(decode_state(&bytes).unwrap(), state);
    }

    #[test]
    fn snapshots_of_the_level_1_release_load() {
        let state = at_level(1);
        let old = Level1Payload::V2(Level1State {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: 1,
        });
        let loaded = decode_state(&codec::encode(&old).unwrap()).unwrap();
        assert_eq!(loaded, state);
        assert!(!loaded.has_security_data());
    }

    #[test]
    fn the_security_state_survives_a_snapshot_at_level_2() {
        let state = secured();
        assert!(state.has_security_data());
        let bytes = encode_state(&state).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), state);
        assert!(codec::decode::<Level1Payload>(&bytes).is_err());
    }

    #[test]
    fn security_data_below_level_2_is_not_written_without_it() {
        for level in [0, 1] {
            let mut state = secured();
            state.feature_level = level;
            let err = encode_state(&state).unwrap_err();
            assert!(matches!(err, EncodeStateError::SecurityBelowLevel(l) if l == level));
        }
    }

    #[test]
    fn a_raised_level_is_kept_in_the_snapshot() {
        let mut state = sample();
        state.apply(&Command::SetFeatureLevel { level: 1 });
        let bytes = encode_state(&state).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), state);
        assert!(codec::decode::<PreviousPayload>(&bytes).is_err());
    }

    /// The snapshot payload exactly as the release of feature level 2 declared it (its
    /// `V3` held that release's `ControlState`, which had these fields).
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Level2Payload {
        V1(PreviousState),
        V2(Level1State),
        V3(Level2State),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Level2State {
        identities: BTreeMap<i32, Identity>,
        assignment_epoch: u64,
        drained: BTreeSet<u64>,
        feature_level: u16,
        users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
        acls: BTreeSet<AclBinding>,
        tokens: BTreeMap<String, AdminToken>,
    }

    fn level2_view(state: &ControlState) -> Level2State {
        Level2State {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
            users: state.users.clone(),
            acls: state.acls.clone(),
            tokens: state.tokens.clone(),
        }
    }

    fn governed() -> ControlState {
        let mut state = secured();
        state.apply(&Command::SetFeatureLevel { level: 3 });
        state.apply(&Command::OpenBreaker {
            breaker: Breaker {
                pattern: "orders".parse().unwrap(),
                produce: true,
                fetch: true,
                mode: BreakerMode::Hold,
                reason: "overload".into(),
                origin: BreakerOrigin::Manual,
                opened_at_ms: 1,
                until_ms: Some(2),
            },
        });
        state.apply(&Command::SetQuota {
            key: QuotaKey {
                user: None,
                client_id: Some(crate::governance::QuotaEntity::Default),
            },
            limits: QuotaLimits {
                producer_byte_rate: Some(1024),
                ..QuotaLimits::default()
            },
        });
        state
    }

    #[test]
    fn a_level_2_state_is_written_as_the_level_2_release_wrote_it() {
        let state = secured();
        let bytes = encode_state(&state).unwrap();
        let expected = Level2Payload::V3(level2_view(&state));
        assert_eq!(bytes, codec::encode(&expected).unwrap());
        assert_eq!(decode_state(&bytes).unwrap(), state);
    }

    #[test]
    fn the_governance_state_survives_a_snapshot_at_level_3() {
        let state = governed();
        assert!(state.has_governance_data());
        let bytes = encode_state(&state).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), state);
        assert!(codec::decode::<Level2Payload>(&bytes).is_err());
    }

    /// The snapshot payload exactly as the release of feature level 3 declared it (its
    /// `V4` held that release's `ControlState`, which had these fields).
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Level3Payload {
        V1(PreviousState),
        V2(Level1State),
        V3(Level2State),
        V4(Level3State),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Level3State {
        identities: BTreeMap<i32, Identity>,
        assignment_epoch: u64,
        drained: BTreeSet<u64>,
        feature_level: u16,
        users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
        acls: BTreeSet<AclBinding>,
        tokens: BTreeMap<String, AdminToken>,
        breakers: BTreeMap<TopicPattern, Breaker>,
        breaker_rules: BTreeMap<String, BreakerRule>,
        quotas: BTreeMap<QuotaKey, QuotaLimits>,
    }

    #[test]
    fn a_level_3_state_is_written_as_the_level_3_release_wrote_it() {
        let state = governed();
        let bytes = encode_state(&state).unwrap();
        let expected = Level3Payload::V4(Level3State {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
            users: state.users.clone(),
            acls: state.acls.clone(),
            tokens: state.tokens.clone(),
            breakers: state.breakers.clone(),
            breaker_rules: state.breaker_rules.clone(),
            quotas: state.quotas.clone(),
        });
        assert_eq!(bytes, codec::encode(&expected).unwrap());
        assert_eq!(decode_state(&bytes).unwrap(), state);
    }

    fn with_reset() -> ControlState {
        let mut state = governed();
        state.apply(&Command::SetFeatureLevel { level: 4 });
        state.apply(&Command::CreateOffsetReset {
            reset: crate::offset_resets::OffsetReset {
                id: "r1".into(),
                group: "g".into(),
                partitions: vec![crate::offset_resets::PartitionReset {
                    topic: "t".into(),
                    partition: 0,
                    previous: Some(7),
                    target: 0,
                    applied: false,
                }],
                phase: crate::offset_resets::ResetPhase::Pending,
                spec: "to-earliest".into(),
                requested_by: "anonymous".into(),
                created_at_ms: 1,
                start_at_ms: 1,
                deadline_ms: 2,
                finished_at_ms: None,
            },
        });
        state
    }

    #[test]
    fn offset_resets_survive_a_snapshot_at_level_4() {
        let state = with_reset();
        assert_eq!(state.offset_resets.len(), 1);
        let bytes = encode_state(&state).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), state);
        assert!(codec::decode::<Level3Payload>(&bytes).is_err());
    }

    /// The snapshot payload exactly as the release of feature level 4 declared it.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Level4Payload {
        V1(PreviousState),
        V2(Level1State),
        V3(Level2State),
        V4(Level3State),
        V5(Level4State),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Level4State {
        identities: BTreeMap<i32, Identity>,
        assignment_epoch: u64,
        drained: BTreeSet<u64>,
        feature_level: u16,
        users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
        acls: BTreeSet<AclBinding>,
        tokens: BTreeMap<String, AdminToken>,
        breakers: BTreeMap<TopicPattern, Breaker>,
        breaker_rules: BTreeMap<String, BreakerRule>,
        quotas: BTreeMap<QuotaKey, QuotaLimits>,
        offset_resets: BTreeMap<String, crate::offset_resets::OffsetReset>,
    }

    #[test]
    fn a_level_4_state_is_written_as_the_level_4_release_wrote_it() {
        let state = with_reset();
        let bytes = encode_state(&state).unwrap();
        let expected = Level4Payload::V5(Level4State {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
            users: state.users.clone(),
            acls: state.acls.clone(),
            tokens: state.tokens.clone(),
            breakers: state.breakers.clone(),
            breaker_rules: state.breaker_rules.clone(),
            quotas: state.quotas.clone(),
            offset_resets: state.offset_resets.clone(),
        });
        assert_eq!(bytes, codec::encode(&expected).unwrap());
        assert_eq!(decode_state(&bytes).unwrap(), state);
    }

    fn zoned() -> ControlState {
        let mut state = with_reset();
        state.apply(&Command::SetFeatureLevel { level: 5 });
        state.apply(&Command::SetZoneMapping {
            cidr: "10.1.0.0/16".parse().unwrap(),
            zone: "eu-1".into(),
        });
        state.apply(&Command::AssignZone {
            expected_epoch: state.assignment_epoch,
            zone: "eu-1".into(),
            owners: state.identities.keys().map(|id| (*id, 4)).collect(),
        });
        state
    }

    #[test]
    fn zones_survive_a_snapshot_at_level_5() {
        let state = zoned();
        assert!(state.has_zone_data());
        let bytes = encode_state(&state).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), state);
        assert!(codec::decode::<Level4Payload>(&bytes).is_err());
    }

    #[test]
    fn zones_below_level_5_are_not_written_without_them() {
        let mut state = zoned();
        state.feature_level = 4;
        let err = encode_state(&state).unwrap_err();
        assert!(matches!(err, EncodeStateError::ZonesBelowLevel(4)));
    }

    #[test]
    fn offset_resets_below_level_4_are_not_written_without_them() {
        let mut state = with_reset();
        state.feature_level = 3;
        let err = encode_state(&state).unwrap_err();
        assert!(matches!(err, EncodeStateError::ResetsBelowLevel(3)));
    }

    #[test]
    fn governance_data_below_level_3_is_not_written_without_it() {
        let mut state = governed();
        state.feature_level = 2;
        let err = encode_state(&state).unwrap_err();
        assert!(matches!(err, EncodeStateError::GovernanceBelowLevel(2)));
    }

    /// The snapshot payload exactly as the release of feature level 5 declared it.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Level5Payload {
        V1(PreviousState),
        V2(Level1State),
        V3(Level2State),
        V4(Level3State),
        V5(Level4State),
        V6(Level5State),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Level5State {
        identities: BTreeMap<i32, Identity>,
        assignment_epoch: u64,
        drained: BTreeSet<u64>,
        feature_level: u16,
        users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
        acls: BTreeSet<AclBinding>,
        tokens: BTreeMap<String, AdminToken>,
        breakers: BTreeMap<TopicPattern, Breaker>,
        breaker_rules: BTreeMap<String, BreakerRule>,
        quotas: BTreeMap<QuotaKey, QuotaLimits>,
        offset_resets: BTreeMap<String, crate::offset_resets::OffsetReset>,
        zone_map: BTreeMap<IpNet, String>,
        zone_owners: BTreeMap<String, BTreeMap<i32, u64>>,
    }

    #[test]
    fn a_level_5_state_is_written_as_the_level_5_release_wrote_it() {
        let state = zoned();
        let bytes = encode_state(&state).unwrap();
        let expected = Level5Payload::V6(Level5State {
            identities: state.identities.clone(),
            assignment_epoch: state.assignment_epoch,
            drained: state.drained.clone(),
            feature_level: state.feature_level,
            users: state.users.clone(),
            acls: state.acls.clone(),
            tokens: state.tokens.clone(),
            breakers: state.breakers.clone(),
            breaker_rules: state.breaker_rules.clone(),
            quotas: state.quotas.clone(),
            offset_resets: state.offset_resets.clone(),
            zone_map: state.zone_map.clone(),
            zone_owners: state.zone_owners.clone(),
        });
        assert_eq!(bytes, codec::encode(&expected).unwrap());
        assert_eq!(decode_state(&bytes).unwrap(), state);
    }

    fn routed() -> ControlState {
        use crate::routes::{RouteKey, RouteResource};
        let mut state = zoned();
        state.apply(&Command::SetFeatureLevel { level: 6 });
        state.apply(&Command::RegisterCluster { name: "b".into() });
        state.apply(&Command::SyncClusterBrokers {
            cluster: "b".into(),
            brokers: vec![(
                1,
                BrokerAddr {
                    host: "10.0.0.9".into(),
                    port: 9092,
                    rack: None,
                },
            )],
        });
        state.apply(&Command::SetRoute {
            key: RouteKey {
                resource: RouteResource::Topic,
                pattern: "orders.*".parse().unwrap(),
            },
            cluster: "b".into(),
        });
        state
    }

    #[test]
    fn routes_survive_a_snapshot_at_level_6() {
        let state = routed();
        assert!(state.has_route_data() && state.routes.len() == 1);
        let bytes = encode_state(&state).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), state);
        assert!(codec::decode::<Level5Payload>(&bytes).is_err());
    }

    #[test]
    fn routes_below_level_6_are_not_written_without_them() {
        let mut state = routed();
        state.feature_level = 5;
        let err = encode_state(&state).unwrap_err();
        assert!(matches!(err, EncodeStateError::RoutesBelowLevel(5)));
    }
}
