//! How an admin write reaches the control state: only the Raft leader can propose, so a
//! node that does not lead replays the caller's request at the leader's admin API, and
//! the leader does the whole write (checks, derivations, the proposal) as if it had been
//! asked directly. Checks that depend on the state (does this user exist?) therefore
//! read the leader's state, the freshest there is.

use std::future::Future;

use flotilla_raft::{Command, CommandResult, ProposeError};
use serde::de::DeserializeOwned;

use super::error::{ClusterError, MemberLevel};
use super::fleet::Fleet;
use super::peer_api::Replay;

/// Runs `write` if this node leads the Raft group, or replays `replay` at the leader's
/// admin API and returns the leader's answer.
pub async fn on_leader<T, F, Fut>(
    fleet: &Fleet,
    replay: &Replay,
    write: F,
) -> Result<T, ClusterError>
where
    T: DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, ClusterError>>,
{
    let status = fleet.status();
    match status.leader {
        Some(leader) if leader == status.node_id => write().await,
        Some(leader) => match status.members.get(&leader) {
            Some(member) => fleet.peers.forward(&member.admin_addr, replay).await,
            None => Err(ClusterError::LeaderUnknown(leader)),
        },
        None => Err(ClusterError::NoLeader),
    }
}

/// Commits `command` from the leader. A command the fleet's feature level does not allow
/// yet is refused with the members that hold the level back.
pub async fn commit(fleet: &Fleet, command: Command) -> Result<(), ClusterError> {
    let refused = |needed, committed| ClusterError::FeatureLevel {
        needed,
        committed,
        older: members_below(fleet, needed),
    };
    match fleet.raft.propose(command).await {
        Ok(CommandResult::Ok) => Ok(()),
        Ok(CommandResult::Refused { needed, committed }) => Err(refused(needed, committed)),
        Ok(CommandResult::StaleEpoch { current }) => Err(ClusterError::Raft(format!(
            "raced another assignment (epoch now {current}); try again"
        ))),
        Ok(CommandResult::Conflict { reason }) => Err(ClusterError::Conflict(reason)),
        Err(ProposeError::FeatureLevel { needed, committed }) => Err(refused(needed, committed)),
        Err(ProposeError::NotLeader { .. }) => Err(ClusterError::NoLeader),
        Err(e) => Err(ClusterError::Raft(e.to_string())),
    }
}

/// Refuses at once, with the members that hold it back, a write the fleet's committed
/// feature level does not allow yet: checked before a write is forwarded, since a leader
/// of an older release would not even know the endpoint.
pub fn require_level(fleet: &Fleet, needed: u16) -> Result<(), ClusterError> {
    let committed = fleet.raft.state().borrow().feature_level;
    if committed >= needed {
        return Ok(());
    }
    Err(ClusterError::FeatureLevel {
        needed,
        committed,
        older: members_below(fleet, needed),
    })
}

/// The Raft members whose build, as gossip shows it, is below `level`.
fn members_below(fleet: &Fleet, level: u16) -> Vec<MemberLevel> {
    let gossip = fleet.gossip.members();
    fleet
        .status()
        .members
        .keys()
        .map(|&node| MemberLevel {
            node,
            level: gossip
                .iter()
                .find(|m| m.state.node_id == node && m.alive)
                .map(|m| m.state.feature_level),
        })
        .filter(|m| m.level.is_none_or(|l| l < level))
        .collect()
}
