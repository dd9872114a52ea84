//! Fenced members waiting to be removed from their group.
//!
//! A member the `offset_reset` filter refuses has, by that answer, dropped its positions;
//! it is then safe to remove it from the group at the coordinator, which is what lets the
//! group empty in a heartbeat interval instead of a session timeout. The filter may not do
//! I/O, so it hands the member over here, and the node's evictor task removes it. Members
//! are handed over once per reset, however often they are refused.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::mpsc;

/// Which group protocol a member speaks, and so how it is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupProtocol {
    /// JoinGroup/SyncGroup/Heartbeat: removed with LeaveGroup.
    Classic,
    /// KIP-848 ConsumerGroupHeartbeat: removed with a heartbeat of epoch -1.
    Consumer,
}

/// A fenced member to remove from its group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Eviction {
    pub reset_id: String,
    pub group: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol: GroupProtocol,
}

/// The filter's side: hands fenced members to the evictor, each once per reset.
pub struct Evictions {
    sender: mpsc::UnboundedSender<Eviction>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Eviction>>>,
    handed_over: Mutex<HashSet<(String, String)>>,
}

impl Default for Evictions {
    fn default() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Evictions {
            sender,
            receiver: Mutex::new(Some(receiver)),
            handed_over: Mutex::default(),
        }
    }
}

impl Evictions {
    /// Hands `eviction` over unless this member was already handed over for this reset.
    /// Never blocks.
    pub fn request(&self, eviction: Eviction) {
        let key = (eviction.reset_id.clone(), eviction.member_id.clone());
        let fresh = self
            .handed_over
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if fresh {
            // The evictor lives as long as the node; a send fails only at shutdown.
            let _ = self.sender.send(eviction);
        }
    }

    /// Forgets the members of resets that are no longer being applied, so the set stays
    /// as small as the resets in progress.
    pub fn forget_all_but(&self, applying: &HashSet<&str>) {
        self.handed_over
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(reset, _)| applying.contains(reset.as_str()));
    }

    /// The evictor's end of the channel; there is one evictor per node.
    pub fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Eviction>> {
        self.receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eviction(reset: &str, member: &str) -> Eviction {
        Eviction {
            reset_id: reset.into(),
            group: "g".into(),
            member_id: member.into(),
            group_instance_id: None,
            protocol: GroupProtocol::Classic,
        }
    }

    #[test]
    fn each_member_is_handed_over_once_per_reset() {
        let evictions = Evictions::default();
        let mut receiver = evictions.take_receiver().unwrap();
        evictions.request(eviction("r1", "m1"));
        evictions.request(eviction("r1", "m1"));
        evictions.request(eviction("r2", "m1"));
        assert_eq!(receiver.try_recv().unwrap().reset_id, "r1");
        assert_eq!(receiver.try_recv().unwrap().reset_id, "r2");
        assert!(receiver.try_recv().is_err());
        evictions.forget_all_but(&HashSet::from(["r2"]));
        evictions.request(eviction("r1", "m1"));
        assert_eq!(receiver.try_recv().unwrap().reset_id, "r1");
        assert!(evictions.take_receiver().is_none());
    }
}
