//! The identity controller's decisions, as pure functions of what the Raft leader sees:
//! the committed control state, the gossip view, how long dead nodes have been dead, and
//! the brokers the backend reports. The fleet task runs them on the leader only and
//! proposes what they return; keeping them pure keeps them testable and deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use flotilla_gossip::{Lifecycle, Member};
use flotilla_raft::routes::{self, DEFAULT_CLUSTER};
use flotilla_raft::{BrokerAddr, Command, ControlState};

use super::assignment::{assign, Candidate, Slot};
use crate::directory::Broker;

/// What the leader knows when it decides.
pub struct View<'a> {
    pub state: &'a ControlState,
    pub members: &'a [Member],
    /// Every member of the Raft group, voters and learners: all of them must decode what
    /// is committed.
    pub raft_members: &'a BTreeSet<u64>,
    /// How long each dead node has been dead, as this leader has watched it.
    pub dead_for: &'a HashMap<u64, Duration>,
    pub takeover_after: Duration,
    /// The cluster `default`'s brokers as last seen; empty when unknown.
    pub backend: &'a [Broker],
    /// Every other configured backend cluster's brokers as last seen (empty when unknown).
    pub other_backends: &'a BTreeMap<String, Vec<Broker>>,
}

/// The one command the controller wants committed next, if any. Broker changes come
/// first: owners can only be assigned to identities that exist.
pub fn next_command(view: &View) -> Option<Command> {
    sync_brokers(view)
        .or_else(|| register_clusters(view))
        .or_else(|| sync_other_clusters(view))
        .or_else(|| reassign(view))
        .or_else(|| reassign_zones(view))
        .or_else(|| raise_feature_level(view))
}

/// The highest feature level every Raft member's build understands, if it is above the
/// committed one. A member gossip does not show (down, or not yet seen) holds the level
/// where it is: it may run an older release and must still decode the log when it returns.
fn raise_feature_level(view: &View) -> Option<Command> {
    let level_of = |id: &u64| {
        view.members
            .iter()
            .find(|m| m.state.node_id == *id)
            .map_or(0, |m| m.state.feature_level)
    };
    let fleet_level = view
        .raft_members
        .iter()
        .map(level_of)
        .min()?
        .min(flotilla_raft::FEATURE_LEVEL);
    (fleet_level > view.state.feature_level)
        .then_some(Command::SetFeatureLevel { level: fleet_level })
}

fn sync_brokers(view: &View) -> Option<Command> {
    let brokers = syncable(view.state, DEFAULT_CLUSTER, view.backend);
    (!in_sync(view.state, DEFAULT_CLUSTER, &brokers)).then_some(Command::SyncBrokers { brokers })
}

/// The first configured backend cluster the fleet has not registered, once it can.
fn register_clusters(view: &View) -> Option<Command> {
    if view.state.feature_level < routes::LEVEL {
        return None;
    }
    let name = view
        .other_backends
        .keys()
        .find(|name| !view.state.knows_cluster(name))?;
    Some(Command::RegisterCluster { name: name.clone() })
}

/// The first registered cluster whose brokers differ from what the state holds.
fn sync_other_clusters(view: &View) -> Option<Command> {
    view.other_backends
        .iter()
        .filter(|(name, _)| view.state.backend_clusters.contains_key(*name))
        .find_map(|(name, seen)| {
            let brokers = syncable(view.state, name, seen);
            (!in_sync(view.state, name, &brokers)).then(|| Command::SyncClusterBrokers {
                cluster: name.clone(),
                brokers,
            })
        })
}

/// The brokers of `cluster` that can be identities: the state would leave out one whose
/// virtual id is out of range or taken, and proposing it again every tick changes nothing.
fn syncable(state: &ControlState, cluster: &str, seen: &[Broker]) -> Vec<(i32, BrokerAddr)> {
    seen.iter()
        .filter(|b| {
            state.virtual_id(cluster, b.id).is_some_and(|id| {
                !state.identities.contains_key(&id) || state.broker_of(id) == (cluster, b.id)
            })
        })
        .map(|b| {
            let addr = BrokerAddr {
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
            };
            (b.id, addr)
        })
        .collect()
}

/// Whether the state's present identities of `cluster` are exactly `brokers` (nothing
/// known of the cluster counts as in sync).
fn in_sync(state: &ControlState, cluster: &str, brokers: &[(i32, BrokerAddr)]) -> bool {
    if brokers.is_empty() {
        return true;
    }
    let present = state
        .identities
        .values()
        .filter(|i| i.present && state.broker_of(i.id).0 == cluster)
        .count();
    present == brokers.len()
        && brokers.iter().all(|(broker_id, addr)| {
            state
                .virtual_id(cluster, *broker_id)
                .and_then(|id| state.identities.get(&id))
                .is_some_and(|i| i.present && &i.broker == addr)
        })
}

impl View<'_> {
    /// A node dead for less than the takeover deadline keeps its identities: it may be a
    /// blip, and moving identities costs every client a reconnect.
    fn in_grace(&self, node: u64) -> bool {
        self.dead_for
            .get(&node)
            .is_some_and(|d| *d < self.takeover_after)
    }

    /// Nodes that may own identities: alive, serving and not drained.
    fn candidates(&self) -> Vec<Candidate> {
        self.members
            .iter()
            .filter(|m| m.alive && m.state.lifecycle == Lifecycle::Serving)
            .filter(|m| !self.state.drained.contains(&m.state.node_id))
            .map(|m| Candidate {
                node: m.state.node_id,
                zone: m.state.zone.clone(),
            })
            .collect()
    }
}

fn reassign(view: &View) -> Option<Command> {
    if view
        .state
        .identities
        .values()
        .any(|i| i.owner.is_some_and(|o| view.in_grace(o)))
    {
        return None;
    }
    let candidates = view.candidates();
    let zone_of = |node: u64| {
        view.members
            .iter()
            .find(|m| m.state.node_id == node)
            .and_then(|m| m.state.zone.clone())
    };
    let slots: Vec<Slot> = view
        .state
        .identities
        .values()
        .map(|i| Slot {
            identity: i.id,
            owner: i.owner,
            preferred_zone: i.owner.and_then(zone_of).or_else(|| i.broker.rack.clone()),
        })
        .collect();
    let wanted: BTreeMap<i32, u64> = assign(&slots, &candidates);
    let owners: Vec<(i32, u64)> = wanted
        .into_iter()
        .filter(|(id, owner)| view.state.identities[id].owner != Some(*owner))
        .collect();
    (!owners.is_empty()).then_some(Command::Assign {
        expected_epoch: view.state.assignment_epoch,
        owners,
    })
}

/// The first zone whose owner table is not what balancing its own live nodes gives: each
/// zone with candidates gets an owner for every identity among them, with the same rules
/// as the fleet-wide owners (grace for a dead owner, balance, least movement); a zone left
/// with no candidate is removed, so its clients are told the fleet-wide owners.
fn reassign_zones(view: &View) -> Option<Command> {
    if view.state.feature_level < flotilla_raft::zones::LEVEL {
        return None;
    }
    let mut zones: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for candidate in view.candidates() {
        if let Some(zone) = candidate.zone.clone() {
            zones.entry(zone).or_default().push(candidate);
        }
    }
    let committed = &view.state.zone_owners;
    let empty = BTreeMap::new();
    let all_zones: BTreeSet<&str> = zones
        .keys()
        .chain(committed.keys())
        .map(String::as_str)
        .collect();
    let next = all_zones.into_iter().find_map(|zone| {
        let current = committed.get(zone).unwrap_or(&empty);
        if current.values().any(|o| view.in_grace(*o)) {
            return None;
        }
        let slots: Vec<Slot> = view
            .state
            .identities
            .values()
            .map(|i| Slot {
                identity: i.id,
                owner: current.get(&i.id).copied(),
                preferred_zone: None,
            })
            .collect();
        let wanted = assign(&slots, zones.get(zone).map_or(&[], Vec::as_slice));
        (&wanted != current).then(|| Command::AssignZone {
            expected_epoch: view.state.assignment_epoch,
            zone: zone.to_string(),
            owners: wanted.into_iter().collect(),
        })
    });
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::routes::tests::{member, state};

    fn broker(id: i32, port: u16) -> Broker {
        Broker {
            id,
            host: "10.9.9.9".into(),
            port,
            rack: None,
        }
    }

    fn view<'a>(
        state: &'a ControlState,
        members: &'a [Member],
        dead_for: &'a HashMap<u64, Duration>,
        backend: &'a [Broker],
    ) -> View<'a> {
        static NO_RAFT_MEMBERS: BTreeSet<u64> = BTreeSet::new();
        static NO_OTHER_BACKENDS: BTreeMap<String, Vec<Broker>> = BTreeMap::new();
        View {
            state,
            members,
            raft_members: &NO_RAFT_MEMBERS,
            dead_for,
            takeover_after: Duration::from_secs(2),
            backend,
            other_backends: &NO_OTHER_BACKENDS,
        }
    }

    #[test]
    fn new_brokers_are_synced_before_anything_is_assigned() {
        let state = ControlState::default();
        let members = [member(1, true, "a")];
        let backend = [broker(1, 39092)];
        let dead = HashMap::new();
        assert!(matches!(
            next_command(&view(&state, &members, &dead, &backend)),
            Some(Command::SyncBrokers { .. })
        ));
    }

    #[test]
    fn a_dead_owner_keeps_its_identities_until_the_deadline() {
        let state = state(&[(1, Some(1)), (2, Some(2))]);
        let backend = [broker(1, 39092), broker(2, 39093)];
        let members = [member(1, true, "a"), member(2, false, "a")];
        let mut dead = HashMap::from([(2, Duration::from_millis(500))]);
        assert_eq!(next_command(&view(&state, &members, &dead, &backend)), None);
        dead.insert(2, Duration::from_secs(3));
        assert_eq!(
            next_command(&view(&state, &members, &dead, &backend)),
            Some(Command::Assign {
                expected_epoch: 0,
                owners: vec![(2, 1)]
            })
        );
    }

    #[test]
    fn a_balanced_fleet_proposes_nothing() {
        let state = state(&[(1, Some(1)), (2, Some(2)), (3, Some(3))]);
        let backend = [broker(1, 39092), broker(2, 39093), broker(3, 39094)];
        let members = [
            member(1, true, "a"),
            member(2, true, "b"),
            member(3, true, "c"),
        ];
        assert_eq!(
            next_command(&view(&state, &members, &HashMap::new(), &backend)),
            None
        );
    }

    #[test]
    fn the_feature_level_rises_once_every_raft_member_understands_it() {
        let state = state(&[(1, Some(1))]);
        let backend = [broker(1, 39092)];
        let mut old = member(2, true, "a");
        old.state.feature_level = 0;
        let mut new = member(1, true, "a");
        new.state.feature_level = flotilla_raft::FEATURE_LEVEL;
        let dead = HashMap::new();
        let raft_members = BTreeSet::from([1, 2]);
        let members = [new.clone(), old.clone()];
        let mut v = view(&state, &members, &dead, &backend);
        v.raft_members = &raft_members;
        assert_eq!(next_command(&v), None, "node 2 runs the previous release");

        let upgraded = [new.clone(), member_at_level(2)];
        v.members = &upgraded;
        assert_eq!(
            next_command(&v),
            Some(Command::SetFeatureLevel {
                level: flotilla_raft::FEATURE_LEVEL
            })
        );

        let unseen = [new];
        v.members = &unseen;
        assert_eq!(
            next_command(&v),
            None,
            "a member gossip does not show holds it"
        );
    }

    fn member_at_level(id: u64) -> Member {
        let mut m = member(id, true, "a");
        m.state.feature_level = flotilla_raft::FEATURE_LEVEL;
        m
    }

    #[test]
    fn a_drained_node_gives_up_its_identities() {
        let mut state = state(&[(1, Some(1)), (2, Some(2))]);
        state.drained.insert(2);
        let backend = [broker(1, 39092), broker(2, 39093)];
        let members = [member(1, true, "a"), member(2, true, "a")];
        assert_eq!(
            next_command(&view(&state, &members, &HashMap::new(), &backend)),
            Some(Command::Assign {
                expected_epoch: 0,
                owners: vec![(2, 1)]
            })
        );
    }

    fn at_level_5(owners: &[(i32, Option<u64>)]) -> ControlState {
        let mut state = state(owners);
        state.feature_level = flotilla_raft::zones::LEVEL;
        state
    }

    fn two_zones() -> [Member; 4] {
        [
            member(1, true, "a"),
            member(2, true, "a"),
            member(3, true, "b"),
            member(4, true, "b"),
        ]
    }

    /// Applies what the controller proposes until it proposes nothing more.
    fn settle(state: &mut ControlState, members: &[Member], dead: &HashMap<u64, Duration>) {
        let backend = [broker(1, 39092), broker(2, 39093), broker(3, 39094)];
        for _ in 0..10 {
            match next_command(&view(state, members, dead, &backend)) {
                Some(command) => {
                    state.apply(&command);
                }
                None => return,
            }
        }
        panic!("the controller did not settle");
    }

    #[test]
    fn every_zone_gets_a_balanced_owner_for_every_identity_among_its_own_nodes() {
        let mut state = at_level_5(&[(1, Some(1)), (2, Some(2)), (3, Some(3))]);
        settle(&mut state, &two_zones(), &HashMap::new());
        let a = &state.zone_owners["a"];
        let b = &state.zone_owners["b"];
        assert_eq!(a.len(), 3);
        assert!(a.values().all(|n| [1, 2].contains(n)), "{a:?}");
        assert!(b.values().all(|n| [3, 4].contains(n)), "{b:?}");
        let on = |table: &BTreeMap<i32, u64>, node| table.values().filter(|n| **n == node).count();
        assert!(on(a, 1).abs_diff(on(a, 2)) <= 1, "{a:?}");
    }

    #[test]
    fn a_dead_node_moves_within_its_zone_after_the_deadline_and_a_dead_zone_is_dropped() {
        let mut state = at_level_5(&[(1, Some(1)), (2, Some(2)), (3, Some(3))]);
        settle(&mut state, &two_zones(), &HashMap::new());
        let mut members = two_zones();
        members[2].alive = false; // node 3, zone b
        let mut dead = HashMap::from([(3, Duration::from_millis(500))]);
        let before = state.zone_owners["b"].clone();
        settle(&mut state, &members, &dead);
        assert_eq!(
            state.zone_owners["b"], before,
            "in grace: nothing moves in b"
        );
        dead.insert(3, Duration::from_secs(3));
        settle(&mut state, &members, &dead);
        assert!(state.zone_owners["b"].values().all(|n| *n == 4));
        let a_before = state.zone_owners["a"].clone();

        members[3].alive = false; // node 4: zone b has no live node
        dead.insert(4, Duration::from_secs(3));
        settle(&mut state, &members, &dead);
        assert!(
            !state.zone_owners.contains_key("b"),
            "{:?}",
            state.zone_owners
        );
        assert_eq!(state.zone_owners["a"], a_before, "zone a untouched");
    }

    #[test]
    fn no_zone_owners_below_level_5() {
        let mut state = state(&[(1, Some(1)), (2, Some(2)), (3, Some(3))]);
        state.feature_level = 4;
        settle(&mut state, &two_zones(), &HashMap::new());
        assert!(state.zone_owners.is_empty());
    }

    #[test]
    fn a_node_cut_off_from_the_backend_gives_up_its_identities() {
        let state = state(&[(1, Some(1)), (2, Some(2))]);
        let backend = [broker(1, 39092), broker(2, 39093)];
        let mut cut_off = member(2, true, "a");
        cut_off.state.lifecycle = flotilla_gossip::Lifecycle::BackendUnreachable;
        let members = [member(1, true, "a"), cut_off];
        assert_eq!(
            next_command(&view(&state, &members, &HashMap::new(), &backend)),
            Some(Command::Assign {
                expected_epoch: 0,
                owners: vec![(2, 1)]
            })
        );
    }
}
