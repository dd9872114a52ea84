//! What this node advertises for each identity, from the committed control state and its
//! own gossip view.
//!
//! The committed owner is advertised while gossip shows it alive. When it is dead, this
//! node advertises the rendezvous fallback among live members instead, without waiting for
//! Raft: with quorum the controller commits a new owner within `takeover_after` anyway, and
//! without quorum (degraded mode) the fallback is the only way clients reach a live node.
//! Nodes with the same gossip view compute the same fallback, and every node serves every
//! identity port, so a client holding any advertised address keeps working.
//!
//! Each zone with live nodes gets its own answer the same way: the committed owner of the
//! zone's table while it is alive, else the rendezvous fallback among the zone's live
//! nodes. A zone with no live node has no answer of its own, so its clients are told the
//! fleet-wide owners: the fleet never strands a client to keep it local.

use std::collections::BTreeMap;

use flotilla_gossip::{Lifecycle, Member};
use flotilla_raft::{ControlState, Identity};

use super::fallback::fallback_owner;
use crate::directory::{Broker, Route, ZoneRoute};

pub fn routes(state: &ControlState, members: &[Member]) -> Vec<Route> {
    let live = live_nodes(members);
    let zones = live_by_zone(members, &live);
    let mut routes: Vec<Route> = state
        .identities
        .values()
        .map(|identity| {
            let committed = identity.owner.filter(|o| live.contains(o));
            let owner = committed.or_else(|| fallback_owner(identity.id, &live));
            let (advertised, advertised_tls) = addresses(identity, owner, members);
            let zones = zones
                .iter()
                .map(|(zone, live)| {
                    let committed = state
                        .zone_owners
                        .get(*zone)
                        .and_then(|owners| owners.get(&identity.id))
                        .filter(|o| live.contains(o));
                    let owner = committed
                        .copied()
                        .or_else(|| fallback_owner(identity.id, live));
                    let (advertised, advertised_tls) = addresses(identity, owner, members);
                    ZoneRoute {
                        zone: zone.to_string(),
                        owner,
                        advertised,
                        advertised_tls,
                    }
                })
                .collect();
            Route {
                identity: identity.id,
                slot: identity.slot,
                cluster: state.broker_of(identity.id).0.into(),
                broker: Broker {
                    id: identity.id,
                    host: identity.broker.host.clone(),
                    port: identity.broker.port,
                    rack: identity.broker.rack.clone(),
                },
                owner,
                advertised,
                advertised_tls,
                zones,
            }
        })
        .collect();
    routes.sort_by_key(|r| r.slot);
    routes
}

type Address = Option<(String, u16)>;

/// Where `owner` serves `identity`, in plaintext and over TLS.
fn addresses(identity: &Identity, owner: Option<u64>, members: &[Member]) -> (Address, Address) {
    let owner_state = owner
        .and_then(|o| members.iter().find(|m| m.state.node_id == o))
        .map(|m| &m.state);
    let at = |base: Option<u16>| {
        let state = owner_state?;
        Some((
            state.advertised_host.clone(),
            base?.saturating_add(identity.slot),
        ))
    };
    (
        at(owner_state.map(|s| s.identity_port_base)),
        at(owner_state.and_then(|s| s.tls_identity_port_base)),
    )
}

/// The nodes of `live` by zone, for the zones that have any.
fn live_by_zone<'a>(members: &'a [Member], live: &[u64]) -> BTreeMap<&'a str, Vec<u64>> {
    let mut zones: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for member in members.iter().filter(|m| live.contains(&m.state.node_id)) {
        if let Some(zone) = &member.state.zone {
            zones.entry(zone).or_default().push(member.state.node_id);
        }
    }
    zones
}

/// Live nodes that accept identities; if none is serving (all draining), any live node,
/// since a draining node is still better than a dead address.
pub fn live_nodes(members: &[Member]) -> Vec<u64> {
    let live = |serving_only: bool| -> Vec<u64> {
        members
            .iter()
            .filter(|m| m.alive && (!serving_only || m.state.lifecycle == Lifecycle::Serving))
            .map(|m| m.state.node_id)
            .collect()
    };
    let serving = live(true);
    if serving.is_empty() {
        live(false)
    } else {
        serving
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flotilla_gossip::NodeState;
    use flotilla_raft::{BrokerAddr, Identity};

    pub fn member(id: u64, alive: bool, zone: &str) -> Member {
        Member {
            state: NodeState {
                node_id: id,
                advertised_host: format!("127.0.0.{id}"),
                bootstrap_port: 9192,
                identity_port_base: 9200,
                zone: Some(zone.to_string()),
                raft_addr: format!("127.0.0.{id}:7947"),
                admin_addr: format!("127.0.0.{id}:9644"),
                incarnation: format!("incarnation-{id}"),
                lifecycle: Lifecycle::Serving,
                load: 0,
                feature_level: 0,
                tls_identity_port_base: None,
            },
            alive,
            is_self: id == 1,
            generation: 1,
            gossip_addr: format!("127.0.0.{id}:7946").parse().unwrap(),
        }
    }

    pub fn state(owners: &[(i32, Option<u64>)]) -> ControlState {
        let mut state = ControlState::default();
        for (slot, &(id, owner)) in owners.iter().enumerate() {
            state.identities.insert(
                id,
                Identity {
                    id,
                    slot: slot as u16,
                    broker: BrokerAddr {
                        host: "10.9.9.9".into(),
                        port: 39092 + slot as u16,
                        rack: None,
                    },
                    owner,
                    present: true,
                },
            );
        }
        state
    }

    #[test]
    fn live_owners_are_advertised_at_their_own_host() {
        let members = [member(1, true, "a"), member(2, true, "b")];
        let routes = routes(
            &state(&[(1, Some(1)), (2, Some(2)), (3, Some(2))]),
            &members,
        );
        let advertised: Vec<_> = routes
            .iter()
            .map(|r| r.advertised.clone().unwrap())
            .collect();
        assert_eq!(
            advertised,
            vec![
                ("127.0.0.1".to_string(), 9200),
                ("127.0.0.2".to_string(), 9201),
                ("127.0.0.2".to_string(), 9202)
            ]
        );
    }

    #[test]
    fn a_dead_owner_is_replaced_by_the_same_fallback_on_every_node() {
        let view = [
            member(1, true, "a"),
            member(2, false, "a"),
            member(3, true, "a"),
        ];
        let state = state(&[(1, Some(2)), (2, Some(2))]);
        let here = routes(&state, &view);
        let mut elsewhere_view = view.clone();
        elsewhere_view.reverse();
        assert_eq!(here, routes(&state, &elsewhere_view));
        for route in &here {
            assert_ne!(route.owner, Some(2));
            assert!(route.advertised.is_some());
        }
    }

    #[test]
    fn each_zone_is_told_its_own_owner_and_a_zone_without_live_nodes_none() {
        let members = [
            member(1, true, "a"),
            member(2, true, "b"),
            member(3, false, "c"),
        ];
        let mut state = state(&[(1, Some(1))]);
        state
            .zone_owners
            .insert("b".into(), BTreeMap::from([(1, 2)]));
        let route = &routes(&state, &members)[0];
        let zones: Vec<_> = route
            .zones
            .iter()
            .map(|z| (z.zone.as_str(), z.owner, z.advertised.clone().unwrap().0))
            .collect();
        assert_eq!(
            zones,
            vec![
                ("a", Some(1), "127.0.0.1".to_string()),
                ("b", Some(2), "127.0.0.2".to_string())
            ],
            "zone a has no committed table yet: its live node by fallback; c has none"
        );
    }

    #[test]
    fn a_dead_zone_owner_is_replaced_by_a_live_node_of_the_same_zone() {
        let members = [
            member(1, true, "a"),
            member(2, false, "b"),
            member(3, true, "b"),
        ];
        let mut state = state(&[(1, Some(1)), (2, Some(1))]);
        state
            .zone_owners
            .insert("b".into(), BTreeMap::from([(1, 2), (2, 2)]));
        for route in routes(&state, &members) {
            let b = route.zones.iter().find(|z| z.zone == "b").unwrap();
            assert_eq!(b.owner, Some(3));
        }
    }

    #[test]
    fn no_live_node_means_nothing_advertised() {
        let routes = routes(&state(&[(1, Some(1))]), &[member(1, false, "a")]);
        assert_eq!(routes[0].advertised, None);
    }

    #[test]
    fn a_node_cut_off_from_the_backend_is_advertised_as_no_owner() {
        let mut cut_off = member(2, true, "a");
        cut_off.state.lifecycle = Lifecycle::BackendUnreachable;
        let routes = routes(
            &state(&[(1, Some(2)), (2, Some(2))]),
            &[member(1, true, "a"), cut_off],
        );
        for route in &routes {
            assert_eq!(route.owner, Some(1));
        }
    }

    #[test]
    fn when_every_node_is_cut_off_the_committed_owners_stay() {
        let cut_off = |id| {
            let mut m = member(id, true, "a");
            m.state.lifecycle = Lifecycle::BackendUnreachable;
            m
        };
        let routes = routes(&state(&[(1, Some(2))]), &[cut_off(1), cut_off(2)]);
        assert_eq!(routes[0].owner, Some(2), "the backend is down for everyone");
    }
}
