//! Topic names by topic id, for the per-topic metrics of Produce v13+ and Fetch v13+,
//! which name topics by id only.
//!
//! A client learns a topic's id from a Metadata response, but not necessarily one this
//! node forwarded (clients ask any broker, and so any node, for Metadata). So the node
//! asks the backend itself: the first time a connection meets an id it does not know, a
//! background task fetches the cluster's topic list (at most once per
//! [`LOOKUP_PAUSE`]) and the connection counts that id's traffic aside until the name is
//! known.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::BytesMut;
use futures::StreamExt;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::sync::Notify;
use tokio_util::codec::FramedRead;

use crate::backend::{Link, Purpose};
use crate::directory::Directory;
use crate::protocol::frame::{write_frame, FrameCodec};

/// Shortest pause between two lookups of the topic list.
pub const LOOKUP_PAUSE: Duration = Duration::from_secs(1);

/// Metadata v12: every Kafka release since 2.8 answers it, with topic ids.
const METADATA_VERSION: i16 = 12;

pub type TopicId = [u8; 16];

#[derive(Default)]
pub struct TopicIds {
    names: ArcSwap<HashMap<TopicId, Arc<str>>>,
    wanted: Mutex<HashSet<TopicId>>,
    asked: Notify,
}

impl TopicIds {
    /// The topic's name if known; otherwise the id is looked up in the background.
    pub fn name(&self, id: &TopicId) -> Option<Arc<str>> {
        if let Some(name) = self.names.load().get(id) {
            return Some(name.clone());
        }
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        if wanted.insert(*id) {
            self.asked.notify_one();
        }
        None
    }

    /// Records ids and names; copies the map only if one is new.
    pub fn learn(&self, topics: impl IntoIterator<Item = (TopicId, Arc<str>)>) {
        let current = self.names.load();
        let new: Vec<_> = topics
            .into_iter()
            .filter(|(id, name)| *id != [0; 16] && current.get(id) != Some(name))
            .collect();
        if new.is_empty() {
            return;
        }
        self.names.rcu(|names| {
            let mut names = HashMap::clone(names);
            names.extend(new.iter().cloned());
            Arc::new(names)
        });
    }

    /// Looks up wanted ids for the life of the node.
    pub async fn resolve_forever(&self, link: Arc<Link>, directory: Arc<Directory>) {
        loop {
            self.asked.notified().await;
            match self.lookup(&link, &directory).await {
                Ok(()) => {}
                Err(e) => tracing::debug!("looking up topic ids: {e:#}"),
            }
            let wanted =
                std::mem::take(&mut *self.wanted.lock().unwrap_or_else(|e| e.into_inner()));
            let names = self.names.load();
            let unknown = wanted.iter().filter(|id| !names.contains_key(*id)).count();
            if unknown > 0 {
                tracing::debug!(
                    unknown,
                    "topic ids the backend does not know (deleted topics?)"
                );
            }
            tokio::time::sleep(LOOKUP_PAUSE).await;
        }
    }

    async fn lookup(&self, link: &Link, directory: &Directory) -> anyhow::Result<()> {
        let mut last = anyhow::anyhow!("no broker known");
        for address in directory.upstreams() {
            match tokio::time::timeout(link.timeout(), all_topics(link, &address)).await {
                Ok(Ok(response)) => {
                    self.learn(response.topics.iter().filter_map(|t| {
                        let name = t.name.as_ref()?;
                        Some((*t.topic_id.as_bytes(), Arc::from(name.as_str())))
                    }));
                    return Ok(());
                }
                Ok(Err(e)) => last = e.context(format!("asking {address}")),
                Err(_) => last = anyhow::anyhow!("{address}: no answer in time"),
            }
        }
        Err(last)
    }
}

/// Every topic of the cluster, from one broker.
async fn all_topics(link: &Link, address: &str) -> anyhow::Result<MetadataResponse> {
    let (stream, _) = link.connect(address, Purpose::Own).await?;
    let (read, mut write) = stream.split();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("flotilla-monitoring")));
    let mut request = BytesMut::new();
    header.encode(
        &mut request,
        ApiKey::Metadata.request_header_version(METADATA_VERSION),
    )?;
    MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false)
        .encode(&mut request, METADATA_VERSION)?;
    write_frame(&mut write, request.freeze()).await?;
    let mut frames = FramedRead::new(read, FrameCodec::new(256 * 1024 * 1024));
    let mut frame = frames
        .next()
        .await
        .ok_or_else(|| anyhow::anyhow!("broker closed the connection"))??;
    ResponseHeader::decode(
        &mut frame,
        ApiKey::Metadata.response_header_version(METADATA_VERSION),
    )?;
    MetadataResponse::decode(&mut frame, METADATA_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_id_is_wanted_once_and_named_once_learned() {
        let ids = TopicIds::default();
        let id = [7; 16];
        assert_eq!(ids.name(&id), None);
        assert_eq!(ids.name(&id), None);
        assert_eq!(ids.wanted.lock().unwrap().len(), 1);
        ids.learn([(id, Arc::from("orders")), ([0; 16], Arc::from("nil"))]);
        assert_eq!(ids.name(&id).as_deref(), Some("orders"));
        assert_eq!(ids.name(&[0; 16]), None, "the nil id names nothing");
    }
}
