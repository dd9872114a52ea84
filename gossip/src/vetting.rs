//! Gossip members that are not who they say they are.
//!
//! Gossip is unauthenticated UDP: anyone who reaches a node's gossip port can publish a
//! state with any node id. The fleet takes liveness and ownership from gossip, so a
//! forged "node 2, alive" would keep a dead node 2's identities where no one serves them,
//! and a forged "node 2" could take them. What gossip cannot vouch for, Raft can: the
//! committed membership records the Raft address of every member, and it only changes
//! through the Raft leader (over mutual TLS where `[cluster.tls]` is set). A gossip
//! incarnation of a Raft member that publishes another Raft address is an impostor: it is
//! shown dead and never speaks for its node id, logged once and counted.
//!
//! A node that is not (yet) a Raft member cannot be vetted this way; it joins as a
//! learner through the leader, which records the address it gossips. And a node whose
//! Raft address really changed looks like an impostor of itself until an operator
//! removes its old membership (`proxyctl node remove`), as for a replaced disk.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use chitchat::ChitchatId;

use crate::member::Member;

/// A gossip incarnation ignored because its Raft address is not the recorded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impostor {
    pub node_id: u64,
    /// Where the impostor gossips from.
    pub gossip_addr: SocketAddr,
    /// The Raft address it publishes.
    pub published: String,
    /// The Raft address the Raft membership records for `node_id`.
    pub recorded: String,
}

/// The recorded Raft addresses, and what was found against them.
#[derive(Debug, Default)]
pub(crate) struct Vetting {
    recorded: BTreeMap<u64, String>,
    current: Vec<Impostor>,
    warned: HashSet<ChitchatId>,
    detected: u64,
}

/// The impostor `member` is, if the membership records another Raft address for its id.
/// Ourselves and nodes the membership does not hold are never impostors.
pub fn impostor_of(member: &Member, recorded: &BTreeMap<u64, String>) -> Option<Impostor> {
    if member.is_self {
        return None;
    }
    let expected = recorded.get(&member.state.node_id)?;
    (*expected != member.state.raft_addr).then(|| Impostor {
        node_id: member.state.node_id,
        gossip_addr: member.gossip_addr,
        published: member.state.raft_addr.clone(),
        recorded: expected.clone(),
    })
}

impl Vetting {
    pub(crate) fn recorded(&self) -> &BTreeMap<u64, String> {
        &self.recorded
    }

    /// Replaces the recorded addresses; true if they changed.
    pub(crate) fn set_recorded(&mut self, recorded: BTreeMap<u64, String>) -> bool {
        let changed = self.recorded != recorded;
        self.recorded = recorded;
        changed
    }

    /// Takes the impostors of a fresh snapshot, warning once per incarnation.
    pub(crate) fn found(&mut self, impostors: Vec<(ChitchatId, Impostor)>) {
        for (id, impostor) in &impostors {
            if self.warned.insert(id.clone()) {
                self.detected += 1;
                tracing::warn!(
                    node = impostor.node_id,
                    gossip = %impostor.gossip_addr,
                    "ignoring a gossip member claiming node {}: it publishes Raft address {}, \
                     but the Raft membership records {} for that node",
                    impostor.node_id,
                    impostor.published,
                    impostor.recorded
                );
            }
        }
        self.current = impostors.into_iter().map(|(_, i)| i).collect();
    }

    pub(crate) fn current(&self) -> Vec<Impostor> {
        self.current.clone()
    }

    pub(crate) fn detected(&self) -> u64 {
        self.detected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(node_id: u64, raft_addr: &str) -> Member {
        crate::member::test_member(node_id, raft_addr)
    }

    fn recorded() -> BTreeMap<u64, String> {
        BTreeMap::from([(2, "10.0.0.2:7947".to_string())])
    }

    #[test]
    fn a_member_at_its_recorded_address_is_genuine() {
        assert_eq!(impostor_of(&member(2, "10.0.0.2:7947"), &recorded()), None);
    }

    #[test]
    fn a_member_elsewhere_is_an_impostor_naming_both_addresses() {
        let found = impostor_of(&member(2, "10.6.6.6:7947"), &recorded()).unwrap();
        assert_eq!(found.published, "10.6.6.6:7947");
        assert_eq!(found.recorded, "10.0.0.2:7947");
    }

    #[test]
    fn unknown_nodes_and_ourselves_are_not_vetted() {
        assert_eq!(impostor_of(&member(3, "10.6.6.6:7947"), &recorded()), None);
        let me = Member {
            is_self: true,
            ..member(2, "10.6.6.6:7947")
        };
        assert_eq!(impostor_of(&me, &recorded()), None);
    }

    #[test]
    fn each_incarnation_is_counted_once() {
        let mut vetting = Vetting::default();
        let id = ChitchatId::new("2", 1, "127.0.0.9:7946".parse().unwrap());
        let impostor = impostor_of(&member(2, "x:1"), &recorded()).unwrap();
        vetting.found(vec![(id.clone(), impostor.clone())]);
        vetting.found(vec![(id, impostor)]);
        assert_eq!(vetting.detected(), 1);
        assert_eq!(vetting.current().len(), 1);
        vetting.found(vec![]);
        assert!(vetting.current().is_empty());
    }
}
