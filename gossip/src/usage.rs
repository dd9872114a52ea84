//! Usage reports: what each node counts locally and the fleet needs summed (the bytes of a
//! quota's client, the produce rate of a topic a breaker rule watches).
//!
//! They ride in chitchat under their own keys, outside [`crate::NodeState`], so a report
//! that changes every second leaves member snapshots, and everyone watching them, alone.
//! Only live, genuine members' reports are read: an impostor's numbers, or a dead node's
//! last ones, would hold clients to usage nobody has.

use chitchat::Chitchat;

use crate::member::Member;

/// The chitchat key of a report kind.
fn key(kind: &str) -> String {
    format!("usage.{kind}")
}

pub(crate) fn publish(chitchat: &mut Chitchat, kind: &str, report: &str) {
    chitchat.self_node_state().set(key(kind), report);
}

/// The latest report of `kind` of every live member in `members` but this node, by node id.
pub(crate) fn reports(chitchat: &Chitchat, members: &[Member], kind: &str) -> Vec<(u64, String)> {
    let key = key(kind);
    let wanted = |node_id: &str, generation: u64| {
        members.iter().find(|m| {
            m.alive
                && !m.is_self
                && m.generation == generation
                && m.state.node_id.to_string() == node_id
        })
    };
    chitchat
        .node_states()
        .iter()
        .filter_map(|(id, state)| {
            let member = wanted(&id.node_id, id.generation_id)?;
            Some((member.state.node_id, state.get(&key)?.to_string()))
        })
        .collect()
}
