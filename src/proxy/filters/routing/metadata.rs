//! Metadata across clusters: each cluster is asked for the topics routed to it (all of
//! its topics for an "all topics" request, none but its brokers otherwise), and the
//! answers are merged: every cluster's brokers as virtual identities, each topic as its
//! routed cluster describes it (a topic that exists on two clusters, as during a
//! migration, shows once), and the cluster id and controller of the cluster `default`.
//!
//! A cluster other than `default` that does not answer costs only its own topics: named
//! ones get LEADER_NOT_AVAILABLE (clients retry), and its brokers are listed from the
//! control state. An "all topics" request fails instead (the connection closes and the
//! client retries): leaving a cluster's topics out would read as their deletion to a
//! consumer subscribed by pattern.

use std::collections::BTreeMap;

use flotilla_raft::routes::{RouteResource, DEFAULT_CLUSTER};
use futures::future::join_all;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{call, exchanged, Routed};
use crate::proxy::filter::Verdict;

/// What one cluster is asked, and what of its answer is kept.
pub(super) struct Ask {
    pub(super) cluster: String,
    pub(super) request: MetadataRequest,
    /// Topic names asked of it (empty for "all topics" and ids).
    names: Vec<String>,
}

pub(super) fn exchange(routed: Routed, body: MetadataRequest, version: i16) -> Verdict {
    let all = match &body.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let asks = plan(&routed, &body, all);
    exchanged(async move {
        let answers = join_all(asks.iter().map(|ask| async {
            match routed.cluster(&ask.cluster) {
                Ok(cluster) => call(&cluster, version, &ask.request).await,
                Err(e) => Err(e),
            }
        }))
        .await;
        merge(&routed, &asks, answers, all).map(ResponseKind::Metadata)
    })
}

/// One request per registered cluster: its routed topics (or all), or none but its brokers.
pub(super) fn plan(routed: &Routed, body: &MetadataRequest, all: bool) -> Vec<Ask> {
    let mut named: BTreeMap<&str, Vec<MetadataRequestTopic>> = BTreeMap::new();
    let mut by_id = Vec::new();
    for topic in body.topics.iter().flatten() {
        match &topic.name {
            Some(name) => named
                .entry(routed.state.cluster_for(RouteResource::Topic, name))
                .or_default()
                .push(topic.clone()),
            None => by_id.push(topic.clone()),
        }
    }
    routed
        .state
        .cluster_names()
        .into_iter()
        .map(|cluster| {
            let mine = named.get(cluster.as_str()).cloned().unwrap_or_default();
            let names = mine
                .iter()
                .filter_map(|t| Some(t.name.as_ref()?.to_string()))
                .collect();
            let topics = match all {
                true => body.topics.clone(),
                false => Some(mine.into_iter().chain(by_id.iter().cloned()).collect()),
            };
            Ask {
                cluster,
                request: body.clone().with_topics(topics),
                names,
            }
        })
        .collect()
}

pub(super) fn merge(
    routed: &Routed,
    asks: &[Ask],
    answers: Vec<Result<MetadataResponse, String>>,
    all: bool,
) -> Result<MetadataResponse, String> {
    let mut merged: Option<MetadataResponse> = None;
    let mut brokers = Vec::new();
    let mut topics = Vec::new();
    for (ask, answer) in asks.iter().zip(answers) {
        let cluster = ask.cluster.as_str();
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) if cluster == DEFAULT_CLUSTER || all => return Err(e),
            Err(e) => {
                tracing::warn!("Metadata of {} named topics: {e}", ask.names.len());
                brokers.extend(known_brokers(routed, cluster));
                topics.extend(ask.names.iter().map(|name| unavailable(name)));
                continue;
            }
        };
        for mut broker in answer.brokers.iter().cloned() {
            broker.node_id = routed.virtual_id(cluster, broker.node_id);
            if broker.node_id.0 >= 0 {
                brokers.push(broker);
            }
        }
        topics.extend(
            answer
                .topics
                .iter()
                .filter(|t| keeps(routed, ask, t, all))
                .map(|t| renumbered(routed, cluster, t.clone())),
        );
        if cluster == DEFAULT_CLUSTER {
            merged = Some(answer);
        }
    }
    let mut merged = merged.ok_or("the cluster default gave no Metadata")?;
    dedup_ids(&mut topics);
    merged.brokers = brokers;
    merged.topics = topics;
    Ok(merged)
}

/// Whether a topic of one cluster's answer belongs in the merged one.
fn keeps(routed: &Routed, ask: &Ask, topic: &MetadataResponseTopic, all: bool) -> bool {
    let Some(name) = &topic.name else {
        return false;
    };
    let routed_here = routed.state.cluster_for(RouteResource::Topic, name) == ask.cluster;
    if all {
        return routed_here;
    }
    if ask.names.iter().any(|n| n == name.as_str()) {
        return true;
    }
    // Asked by id: every cluster was asked; keep the one that knows it and routes it.
    topic.error_code == 0 && routed_here
}

/// A topic asked by id that no cluster knows is answered once, by the first error entry.
fn dedup_ids(topics: &mut Vec<MetadataResponseTopic>) {
    let mut seen = std::collections::HashSet::new();
    topics.retain(|t| t.name.is_some() || seen.insert(t.topic_id));
}

fn renumbered(
    routed: &Routed,
    cluster: &str,
    mut topic: MetadataResponseTopic,
) -> MetadataResponseTopic {
    if cluster == DEFAULT_CLUSTER {
        return topic;
    }
    let renumber = |ids: &mut Vec<BrokerId>| {
        for id in ids.iter_mut() {
            *id = routed.virtual_id(cluster, *id);
        }
    };
    for partition in &mut topic.partitions {
        partition.leader_id = routed.virtual_id(cluster, partition.leader_id);
        renumber(&mut partition.replica_nodes);
        renumber(&mut partition.isr_nodes);
        renumber(&mut partition.offline_replicas);
    }
    topic
}

/// The brokers of `cluster` as the control state knows them.
fn known_brokers(routed: &Routed, cluster: &str) -> Vec<MetadataResponseBroker> {
    let state = &routed.state;
    state
        .identities
        .values()
        .filter(|i| i.present && state.broker_of(i.id).0 == cluster)
        .map(|i| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(i.id))
                .with_host(StrBytes::from_string(i.broker.host.clone()))
                .with_port(i32::from(i.broker.port))
                .with_rack(i.broker.rack.clone().map(StrBytes::from_string))
        })
        .collect()
}

fn unavailable(name: &str) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(kafka_protocol::messages::TopicName(
            StrBytes::from_string(name.to_string()),
        )))
        .with_error_code(ResponseError::LeaderNotAvailable.code())
}
