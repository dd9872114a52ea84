//! The fleet as this node sees it: one member per node id, with liveness.
//!
//! chitchat keys nodes by (node id, generation, gossip address), so a restarted node shows
//! up twice: its dead old incarnation and its new one, and a node started by mistake with
//! a taken id shows up next to the real one. Callers think in node ids, so each id is
//! folded to the one incarnation that speaks for it: ourselves first, then a live one over
//! a dead one; of two live ones the older (the incumbent, which a late duplicate must not
//! displace) and of two dead ones the newer (its last known state). An impostor (see
//! `vetting`) is shown dead and speaks for its id only when nothing else does: an
//! impostor cannot outrank the real node by claiming an older generation.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use chitchat::{Chitchat, ChitchatId};
use tracing::debug;

use crate::node_state::NodeState;
use crate::vetting::{impostor_of, Impostor};

/// A member list, and the impostors left out of it.
pub(crate) type Snapshot = (Vec<Member>, Vec<(ChitchatId, Impostor)>);

/// A node of the fleet as this node sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub state: NodeState,
    /// Live according to this node's failure detector (always true for ourselves).
    pub alive: bool,
    pub is_self: bool,
    /// The incarnation: start time in milliseconds since the Unix epoch.
    pub generation: u64,
    /// Where the node gossips.
    pub gossip_addr: SocketAddr,
}

/// Every member known to `chitchat`, sorted by node id, vetted against the `recorded`
/// Raft addresses.
pub(crate) fn snapshot(chitchat: &Chitchat, recorded: &BTreeMap<u64, String>) -> Snapshot {
    let self_id = chitchat.self_chitchat_id();
    let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
    let mut members: BTreeMap<u64, Vetted> = BTreeMap::new();
    let mut impostors = Vec::new();
    for (id, node) in chitchat.node_states() {
        let Some(state) = decode(id, node) else {
            continue;
        };
        let mut member = Member {
            state,
            alive: live.contains(id),
            is_self: id == self_id,
            generation: id.generation_id,
            gossip_addr: id.gossip_advertise_addr,
        };
        let impostor = impostor_of(&member, recorded);
        let genuine = impostor.is_none();
        if let Some(impostor) = impostor {
            member.alive = false;
            impostors.push((id.clone(), impostor));
        }
        let vetted = Vetted { member, genuine };
        match members.entry(vetted.member.state.node_id) {
            Entry::Vacant(slot) => {
                slot.insert(vetted);
            }
            Entry::Occupied(mut slot) => {
                if speaks_before(&vetted, slot.get()) {
                    slot.insert(vetted);
                }
            }
        }
    }
    let members = members.into_values().map(|v| v.member).collect();
    (members, impostors)
}

/// A member, and whether its Raft address is the recorded one (or none is recorded).
struct Vetted {
    member: Member,
    genuine: bool,
}

/// The typed state of a chitchat node, or `None` (logged) if it is partial or garbled.
pub(crate) fn decode(id: &ChitchatId, node: &chitchat::NodeState) -> Option<NodeState> {
    let state = match NodeState::from_lookup(|key| node.get(key)) {
        Ok(state) => state,
        Err(error) => {
            debug!(node = ?id, %error, "ignoring a peer whose gossip state does not decode");
            return None;
        }
    };
    if id.node_id.as_ref() != state.node_id.to_string() {
        debug!(node = ?id, published = state.node_id, "ignoring a peer whose node_id key disagrees with its chitchat id");
        return None;
    }
    Some(state)
}

/// Whether incarnation `a` should stand for its node id rather than `b`.
fn speaks_before(a: &Vetted, b: &Vetted) -> bool {
    let rank = |v: &Vetted| (v.member.is_self, v.genuine, v.member.alive);
    let (a, b) = match rank(a).cmp(&rank(b)) {
        std::cmp::Ordering::Equal => (&a.member, &b.member),
        order => return order.is_gt(),
    };
    if a.alive {
        a.generation < b.generation
    } else {
        a.generation > b.generation
    }
}

/// A live member of node `node_id` at Raft address `raft_addr`, for tests.
#[cfg(test)]
pub(crate) fn test_member(node_id: u64, raft_addr: &str) -> Member {
    use crate::node_state::{Lifecycle, NodeState};
    Member {
        state: NodeState {
            node_id,
            advertised_host: "h".into(),
            bootstrap_port: 1,
            identity_port_base: 2,
            zone: None,
            raft_addr: raft_addr.into(),
            admin_addr: "h:4".into(),
            incarnation: "i".into(),
            lifecycle: Lifecycle::Serving,
            load: 0,
            feature_level: 0,
            tls_identity_port_base: None,
        },
        alive: true,
        is_self: false,
        generation: 1,
        gossip_addr: "127.0.0.9:7946".parse().unwrap(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(generation: u64, alive: bool) -> Vetted {
        Vetted {
            member: raw_member(generation, alive),
            genuine: true,
        }
    }

    fn raw_member(generation: u64, alive: bool) -> Member {
        Member {
            alive,
            generation,
            ..test_member(1, "h:3")
        }
    }

    #[test]
    fn live_incarnation_beats_dead_one() {
        assert!(speaks_before(&member(1, true), &member(2, false)));
        assert!(!speaks_before(&member(2, false), &member(1, true)));
    }

    #[test]
    fn incumbent_beats_a_later_live_duplicate() {
        assert!(speaks_before(&member(1, true), &member(2, true)));
        assert!(!speaks_before(&member(2, true), &member(1, true)));
    }

    #[test]
    fn newest_dead_incarnation_is_kept() {
        assert!(speaks_before(&member(2, false), &member(1, false)));
    }

    fn chitchat_with_self(state: &NodeState) -> Chitchat {
        let id = ChitchatId::new("1", 1, "127.0.0.1:7001".parse().unwrap());
        let config = crate::GossipConfig::new("c", id.gossip_advertise_addr, vec![]);
        let chitchat_config = chitchat::ChitchatConfig {
            chitchat_id: id,
            cluster_id: "c".into(),
            gossip_interval: config.interval,
            listen_addr: config.listen_addr,
            seed_nodes: vec![],
            failure_detector_config: config.failure_detector(),
            marked_for_deletion_grace_period: config.dead_node_grace_period,
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: chitchat::ProtocolVersion::V0,
        };
        let seeds = tokio::sync::watch::channel(Default::default()).1;
        Chitchat::with_chitchat_id_and_seeds(chitchat_config, seeds, state.to_key_values())
    }

    fn add_peer(chitchat: &mut Chitchat, node_id: &str, port: u16, kvs: Vec<(String, String)>) {
        let id = ChitchatId::new(node_id, 1, ([127, 0, 0, 1], port).into());
        let versioned = kvs.into_iter().enumerate().map(|(i, (key, value))| {
            let value = chitchat::VersionedValue {
                value,
                version: i as u64 + 1,
                status: chitchat::DeletionStatus::Set,
            };
            (key, value)
        });
        chitchat.reset_node_state_if_update(&id, versioned, 100, 0);
    }

    fn state_of(node_id: u64) -> NodeState {
        NodeState {
            node_id,
            ..raw_member(1, true).state
        }
    }

    #[test]
    fn garbled_and_partial_peers_are_left_out() {
        let mut chitchat = chitchat_with_self(&state_of(1));
        add_peer(&mut chitchat, "2", 7002, state_of(2).to_key_values());
        let mut partial = state_of(3).to_key_values();
        partial.truncate(4);
        add_peer(&mut chitchat, "3", 7003, partial);
        let mut garbled = state_of(4).to_key_values();
        garbled
            .iter_mut()
            .for_each(|kv| kv.1 = "\u{0}garbage".into());
        add_peer(&mut chitchat, "4", 7004, garbled);
        add_peer(
            &mut chitchat,
            "not-a-number",
            7005,
            state_of(5).to_key_values(),
        );
        add_peer(&mut chitchat, "6", 7006, state_of(7).to_key_values());

        let (members, _) = snapshot(&chitchat, &BTreeMap::new());
        let ids: Vec<(u64, bool, bool)> = members
            .iter()
            .map(|m| (m.state.node_id, m.alive, m.is_self))
            .collect();
        assert_eq!(ids, vec![(1, true, true), (2, false, false)]);
    }

    #[test]
    fn self_beats_everything() {
        let me = Vetted {
            member: Member {
                is_self: true,
                ..raw_member(5, true)
            },
            genuine: true,
        };
        assert!(speaks_before(&me, &member(1, true)));
        assert!(!speaks_before(&member(1, true), &me));
    }

    #[test]
    fn an_impostor_never_outranks_the_real_node() {
        let impostor = Vetted {
            genuine: false,
            ..member(1, true)
        };
        assert!(speaks_before(&member(2, false), &impostor));
        assert!(!speaks_before(&impostor, &member(9, false)));
    }

    #[test]
    fn an_impostor_is_shown_dead_and_the_real_node_speaks() {
        let mut chitchat = chitchat_with_self(&state_of(1));
        let real = NodeState {
            raft_addr: "127.0.0.2:7947".into(),
            ..state_of(2)
        };
        let forged = NodeState {
            raft_addr: "127.0.0.66:7947".into(),
            ..state_of(2)
        };
        add_peer(&mut chitchat, "2", 7002, real.to_key_values());
        add_peer(&mut chitchat, "2", 7066, forged.to_key_values());
        let recorded = BTreeMap::from([(2, "127.0.0.2:7947".to_string())]);
        let (members, impostors) = snapshot(&chitchat, &recorded);
        assert_eq!(members[1].state.raft_addr, "127.0.0.2:7947");
        assert_eq!(impostors.len(), 1);
        assert_eq!(impostors[0].1.published, "127.0.0.66:7947");

        let mut alone = chitchat_with_self(&state_of(1));
        add_peer(&mut alone, "2", 7066, forged.to_key_values());
        let (members, impostors) = snapshot(&alone, &recorded);
        assert!(
            !members[1].alive,
            "an impostor never makes its node look alive"
        );
        assert_eq!(impostors.len(), 1);
    }
}
