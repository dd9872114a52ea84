//! Who owns which identity: a pure function from the current owners and the nodes that
//! may own identities to the new owners.
//!
//! Three goals, in order:
//! 1. every identity has a live owner (an identity without one strands its partitions);
//! 2. balance: owners' identity counts differ by at most one;
//! 3. minimal movement: an identity keeps its owner unless goal 1 or 2 forces a move,
//!    because every move makes clients re-resolve addresses.
//!
//! Where an identity must move, a node in its preferred zone (the zone of its previous
//! owner, else its broker's rack) is chosen first, so clients that were zone-local stay so.
//! Ties break by node id, so the leader's result is deterministic.

use std::collections::BTreeMap;

/// A node that may own identities: alive, serving and not drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node: u64,
    pub zone: Option<String>,
}

/// One identity as the assignment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub identity: i32,
    pub owner: Option<u64>,
    pub preferred_zone: Option<String>,
}

/// The owner of every identity after balancing; empty when there is no candidate.
pub fn assign(slots: &[Slot], candidates: &[Candidate]) -> BTreeMap<i32, u64> {
    if candidates.is_empty() {
        return BTreeMap::new();
    }
    let mut nodes: Vec<&Candidate> = candidates.iter().collect();
    nodes.sort_by_key(|c| c.node);
    nodes.dedup_by_key(|c| c.node);
    let floor = slots.len() / nodes.len();
    let mut at_ceiling_allowed = slots.len() % nodes.len();

    let mut kept: BTreeMap<u64, Vec<&Slot>> = nodes.iter().map(|c| (c.node, Vec::new())).collect();
    let mut homeless: Vec<&Slot> = Vec::new();
    for slot in slots {
        match slot.owner.and_then(|o| kept.get_mut(&o)) {
            Some(list) => list.push(slot),
            None => homeless.push(slot),
        }
    }
    // Trim every node to its fair share, giving up the identities that fit it least.
    for node in &nodes {
        let list = kept
            .get_mut(&node.node)
            .expect("every candidate has a list");
        list.sort_by_key(|s| (zone_mismatch(s, node), std::cmp::Reverse(s.identity)));
        let cap = if list.len() > floor && at_ceiling_allowed > 0 {
            at_ceiling_allowed -= 1;
            floor + 1
        } else {
            floor
        };
        while list.len() > cap {
            homeless.push(list.pop().expect("longer than cap"));
        }
    }
    place_homeless(homeless, &nodes, &mut kept, floor, at_ceiling_allowed);
    kept.into_iter()
        .flat_map(|(node, list)| list.into_iter().map(move |s| (s.identity, node)))
        .collect()
}

/// Gives each homeless identity to the least-loaded node that still has room, preferring
/// its zone.
fn place_homeless<'a>(
    mut homeless: Vec<&'a Slot>,
    nodes: &[&Candidate],
    kept: &mut BTreeMap<u64, Vec<&'a Slot>>,
    floor: usize,
    mut at_ceiling_allowed: usize,
) {
    homeless.sort_by_key(|s| s.identity);
    for slot in homeless {
        let room = |c: &&&Candidate, kept: &BTreeMap<u64, Vec<&Slot>>| {
            let load = kept[&c.node].len();
            load < floor || (load == floor && at_ceiling_allowed > 0)
        };
        let best = nodes
            .iter()
            .filter(|c| room(c, kept))
            .min_by_key(|c| (zone_mismatch(slot, c), kept[&c.node].len(), c.node))
            .expect("total capacity equals the number of identities");
        let list = kept.get_mut(&best.node).expect("candidate list");
        if list.len() == floor {
            at_ceiling_allowed -= 1;
        }
        list.push(slot);
    }
}

fn zone_mismatch(slot: &Slot, node: &Candidate) -> bool {
    match (&slot.preferred_zone, &node.zone) {
        (Some(want), Some(have)) => want != have,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(node: u64, zone: &str) -> Candidate {
        Candidate {
            node,
            zone: Some(zone.to_string()),
        }
    }

    fn slot(identity: i32, owner: Option<u64>, zone: Option<&str>) -> Slot {
        Slot {
            identity,
            owner,
            preferred_zone: zone.map(str::to_string),
        }
    }

    fn loads(result: &BTreeMap<i32, u64>, candidates: &[Candidate]) -> Vec<usize> {
        candidates
            .iter()
            .map(|c| result.values().filter(|&&o| o == c.node).count())
            .collect()
    }

    #[test]
    fn dead_owner_identities_go_to_the_same_zone_first() {
        let nodes = [candidate(1, "a"), candidate(2, "b"), candidate(4, "b")];
        // Node 3 (zone b) died owning identity 30; 10 and 20 are balanced already.
        let slots = [
            slot(10, Some(1), Some("a")),
            slot(20, Some(2), Some("b")),
            slot(30, Some(3), Some("b")),
        ];
        let result = assign(&slots, &nodes);
        assert_eq!(result[&10], 1);
        assert_eq!(result[&20], 2);
        assert_eq!(result[&30], 4, "the idle node in zone b takes it");
    }

    #[test]
    fn a_joining_node_takes_only_its_share() {
        let nodes = [candidate(1, "a"), candidate(2, "a"), candidate(3, "a")];
        let slots: Vec<Slot> = (0..6)
            .map(|i| slot(i, Some(1 + (i as u64 % 2)), None))
            .collect();
        let result = assign(&slots, &nodes);
        assert_eq!(loads(&result, &nodes), vec![2, 2, 2]);
        let moved = slots
            .iter()
            .filter(|s| Some(result[&s.identity]) != s.owner)
            .count();
        assert_eq!(moved, 2);
    }

    #[test]
    fn no_candidates_means_no_owners() {
        assert!(assign(&[slot(1, Some(1), None)], &[]).is_empty());
    }

    fn arb_case() -> impl Strategy<Value = (Vec<Slot>, Vec<Candidate>)> {
        let zones = prop_oneof![
            Just(None),
            Just(Some("a")),
            Just(Some("b")),
            Just(Some("c"))
        ];
        let slots =
            proptest::collection::vec((proptest::option::of(1u64..8), zones.clone()), 0..40)
                .prop_map(|v| {
                    v.into_iter()
                        .enumerate()
                        .map(|(i, (owner, zone))| slot(i as i32 * 10, owner, zone))
                        .collect::<Vec<_>>()
                });
        let nodes = proptest::collection::btree_map(1u64..8, zones, 0..6).prop_map(|m| {
            m.into_iter()
                .map(|(node, zone)| Candidate {
                    node,
                    zone: zone.map(str::to_string),
                })
                .collect::<Vec<_>>()
        });
        (slots, nodes)
    }

    proptest! {
        #[test]
        fn every_identity_gets_a_candidate_and_loads_are_balanced((slots, nodes) in arb_case()) {
            let result = assign(&slots, &nodes);
            if nodes.is_empty() {
                prop_assert!(result.is_empty());
                return Ok(());
            }
            prop_assert_eq!(result.len(), slots.len());
            prop_assert!(result.values().all(|o| nodes.iter().any(|c| c.node == *o)));
            let loads = loads(&result, &nodes);
            prop_assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1, "{:?}", loads);
        }

        #[test]
        fn moves_only_what_balance_requires((slots, nodes) in arb_case()) {
            let result = assign(&slots, &nodes);
            if nodes.is_empty() { return Ok(()); }
            let ceil = slots.len().div_ceil(nodes.len());
            let floor = slots.len() / nodes.len();
            // Identities a live owner must give up: beyond the ceiling, plus those that
            // make more nodes sit at the ceiling than the remainder allows.
            let owned: Vec<usize> = nodes.iter()
                .map(|c| slots.iter().filter(|s| s.owner == Some(c.node)).count())
                .collect();
            let over_ceiling: usize = owned.iter().map(|&n| n.saturating_sub(ceil)).sum();
            let at_ceiling = owned.iter().filter(|&&n| n >= ceil && ceil > floor).count();
            let allowed = slots.len() % nodes.len();
            let forced = over_ceiling + at_ceiling.saturating_sub(allowed);
            let moved_from_live = slots.iter()
                .filter(|s| s.owner.is_some_and(|o| nodes.iter().any(|c| c.node == o)))
                .filter(|s| Some(result[&s.identity]) != s.owner)
                .count();
            prop_assert!(moved_from_live <= forced, "moved {} > forced {}", moved_from_live, forced);
        }

        #[test]
        fn a_balanced_assignment_is_left_alone((slots, nodes) in arb_case()) {
            let first = assign(&slots, &nodes);
            let again: Vec<Slot> = slots.iter()
                .map(|s| Slot { owner: first.get(&s.identity).copied(), ..s.clone() })
                .collect();
            prop_assert_eq!(assign(&again, &nodes), first);
        }
    }
}
