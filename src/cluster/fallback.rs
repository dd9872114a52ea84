//! Degraded mode: when the Raft group has lost quorum, no new owner can be committed, yet
//! clients must not be stranded on a dead node's addresses. Every node then advertises,
//! for each identity whose committed owner is dead in its gossip view, an owner chosen by
//! rendezvous (highest random weight) hashing over the live members. Nodes that share a
//! gossip view compute the same owner without talking to each other, and a change of
//! membership moves only the identities of the node that came or went.

use std::hash::{Hash, Hasher};

/// The live node that rendezvous hashing picks for `identity`, if any node is live.
pub fn fallback_owner(identity: i32, live_nodes: &[u64]) -> Option<u64> {
    live_nodes
        .iter()
        .copied()
        .max_by_key(|&node| (weight(identity, node), node))
}

fn weight(identity: i32, node: u64) -> u64 {
    // SipHash with fixed keys: stable across processes and releases of this binary.
    let mut hasher = siphasher::sip::SipHasher13::new_with_keys(0x666c_6f74, 0x696c_6c61);
    (identity, node).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_live_node_no_owner() {
        assert_eq!(fallback_owner(1, &[]), None);
    }

    #[test]
    fn same_view_same_answer_whatever_the_order() {
        for identity in 0..50 {
            assert_eq!(
                fallback_owner(identity, &[1, 2, 3]),
                fallback_owner(identity, &[3, 1, 2])
            );
        }
    }

    #[test]
    fn losing_a_node_moves_only_its_identities() {
        let before: Vec<_> = (0..200)
            .map(|i| fallback_owner(i, &[1, 2, 3, 4]).unwrap())
            .collect();
        let after: Vec<_> = (0..200)
            .map(|i| fallback_owner(i, &[1, 2, 4]).unwrap())
            .collect();
        for (b, a) in before.iter().zip(&after) {
            if *b != 3 {
                assert_eq!(a, b);
            }
        }
        assert!(
            before.contains(&3),
            "200 identities over 4 nodes use every node"
        );
    }
}
