//! Topic names by topic id, learned from the Metadata responses the node forwards.
//!
//! Recent Fetch, Produce and OffsetCommit versions name topics by id only, and ACLs and
//! breakers name topics by name. A client always learns a topic's id from a Metadata
//! response before it uses it, and that response passes through this node's filters, so
//! the map is usually filled before it is needed. One map serves every filter. What a
//! filter does with an id this node has not seen (another node answered the client's
//! Metadata) is its own choice: ACLs refuse it with UNKNOWN_TOPIC_ID, which makes the
//! client ask for Metadata again, here or elsewhere, and retry.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

#[derive(Default)]
pub struct TopicNames {
    by_id: ArcSwap<HashMap<Uuid, StrBytes>>,
    /// A filter met an id it cannot name and wants the node to ask the backend.
    wanted: tokio::sync::Notify,
}

impl TopicNames {
    /// The topic's name: the one the request gives, else the one its id was seen with
    /// (empty if neither is known, which no ACL but a wildcard allows).
    pub fn name_of(&self, name: &str, id: Uuid) -> String {
        if !name.is_empty() || id.is_nil() {
            return name.to_string();
        }
        self.by_id
            .load()
            .get(&id)
            .map(|n| n.to_string())
            .unwrap_or_default()
    }

    /// The name a request gives a topic, or the one its id was seen with; `None` for an
    /// id this node has not seen.
    pub fn resolve(&self, name: &str, id: Uuid) -> Option<String> {
        let named = self.name_of(name, id);
        (!named.is_empty() || id.is_nil()).then_some(named)
    }

    /// Asks whoever waits in [`TopicNames::learning_wanted`] to learn ids from the backend.
    pub fn want_learning(&self) {
        self.wanted.notify_one();
    }

    /// Resolves when a filter has asked for ids to be learned.
    pub async fn learning_wanted(&self) {
        self.wanted.notified().await;
    }

    pub fn knows(&self, id: Uuid) -> bool {
        self.by_id.load().contains_key(&id)
    }

    /// Records the ids of a Metadata response; copies the map only when one is new.
    pub fn learn<'a>(&self, topics: impl Iterator<Item = (Uuid, &'a StrBytes)>) {
        let current = self.by_id.load();
        let new: Vec<(Uuid, &StrBytes)> = topics
            .filter(|(id, name)| !id.is_nil() && current.get(id) != Some(*name))
            .collect();
        if new.is_empty() {
            return;
        }
        self.by_id.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.extend(new.iter().map(|(id, name)| (*id, (*name).clone())));
            Arc::new(map)
        });
    }
}
