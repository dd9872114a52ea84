//! Topic administration across clusters: CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs name topics (or config
//! resources), and an admin client sends them to whichever broker it likes. Each entry
//! goes to the cluster its topic is routed to (other resources, such as a broker's
//! configs, stay with the connection's cluster): the request is split per cluster, each
//! part asked of its cluster, and the answers merged back in request order. A request
//! whose every entry belongs to the connection's cluster goes on as it is.
//!
//! A cluster that does not answer has its entries answered with REQUEST_TIMED_OUT, shaped
//! as a broker would shape it, so the admin client retries those and keeps the rest.

use std::collections::{BTreeMap, HashMap};

use flotilla_raft::routes::RouteResource;
use futures::future::join_all;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{
    alter_configs_request, alter_configs_response, incremental_alter_configs_request,
    incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse, BrokerId,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::Request as KafkaRequest;
use kafka_protocol::ResponseError;

use super::{call, exchanged, Routed};
use crate::protocol::error_response::error_response;
use crate::proxy::filter::Verdict;

/// Config resource type of a topic (the others are brokers, loggers, client metrics and
/// groups).
const TOPIC_RESOURCE: i8 = 2;

/// An admin request whose entries can be sent to different clusters.
trait Split: KafkaRequest + Clone + Send + Sync + 'static
where
    Self::Response: Send,
{
    type Entry: Clone + Send + Sync;
    type Answer: Send;

    fn entries(&self, version: i16) -> Vec<Self::Entry>;
    fn with_entries(&self, version: i16, entries: Vec<Self::Entry>) -> Self;
    /// The topic an entry is routed by; `None` keeps it on the connection's cluster.
    fn topic(entry: &Self::Entry) -> Option<&str>;
    /// What matches an entry to its answer.
    fn key(entry: &Self::Entry) -> String;
    /// Whether the request names brokers (by virtual id).
    fn names_brokers(&self) -> bool {
        false
    }
    /// Broker ids in the request are virtual; the cluster wants its own.
    fn localize(&mut self, _routed: &Routed) {}
    fn request_kind(self) -> RequestKind;
    fn answers(answer: ResponseKind) -> Option<(i32, Vec<Self::Answer>)>;
    fn answer_key(answer: &Self::Answer) -> String;
    fn merged(throttle_time_ms: i32, answers: Vec<Self::Answer>) -> ResponseKind;
}

/// Splits an admin request by its entries' clusters (see the module doc).
fn split<Q: Split>(routed: Routed, own: &str, body: Q, version: i16) -> Verdict
where
    Q::Response: Send,
    ResponseKind: From<Q::Response>,
{
    let entries = body.entries(version);
    let mut by_cluster: BTreeMap<String, Vec<Q::Entry>> = BTreeMap::new();
    for entry in &entries {
        let cluster = match Q::topic(entry) {
            Some(topic) => routed.state.cluster_for(RouteResource::Topic, topic),
            None => own,
        };
        by_cluster
            .entry(cluster.to_string())
            .or_default()
            .push(entry.clone());
    }
    let virtual_brokers = body.names_brokers() && routed.state.backend_clusters.contains_key(own);
    if by_cluster.keys().all(|c| c == own) && !virtual_brokers {
        return Verdict::Forward;
    }
    exchanged(async move {
        let parts = by_cluster.into_iter().map(|(cluster, mine)| {
            let mut part = body.with_entries(version, mine);
            part.localize(&routed);
            let routed = &routed;
            async move {
                let answer = match routed.cluster(&cluster) {
                    Ok(handle) => call(&handle, version, &part).await,
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(answer) => Ok(ResponseKind::from(answer)),
                    Err(e) => {
                        tracing::warn!("split admin request: {e}");
                        error_response(
                            &part.request_kind(),
                            version,
                            ResponseError::RequestTimedOut,
                            0,
                        )
                        .map_err(|e| e.to_string())
                    }
                }
            }
        });
        let mut throttle = 0;
        let mut answered: HashMap<String, Q::Answer> = HashMap::new();
        for part in join_all(parts).await {
            let (part_throttle, answers) =
                Q::answers(part?).ok_or("a cluster answered with another API")?;
            throttle = throttle.max(part_throttle);
            answered.extend(answers.into_iter().map(|a| (Q::answer_key(&a), a)));
        }
        let in_order = entries
            .iter()
            .filter_map(|e| answered.remove(&Q::key(e)))
            .collect();
        Ok(Q::merged(throttle, in_order))
    })
}

/// A virtual broker id as the broker's own cluster knows it.
fn local_id(routed: &Routed, id: BrokerId) -> BrokerId {
    BrokerId(routed.state.broker_of(id.0).1)
}

pub(super) fn route(routed: Routed, own: &str, body: RequestKind, version: i16) -> Verdict {
    match body {
        RequestKind::CreateTopics(b) => split(routed, own, b, version),
        RequestKind::DeleteTopics(b) => split(routed, own, b, version),
        RequestKind::CreatePartitions(b) => split(routed, own, b, version),
        RequestKind::DescribeConfigs(b) => split(routed, own, b, version),
        RequestKind::AlterConfigs(b) => split(routed, own, b, version),
        RequestKind::IncrementalAlterConfigs(b) => split(routed, own, b, version),
        _ => Verdict::Forward,
    }
}

impl Split for CreateTopicsRequest {
    type Entry = CreatableTopic;
    type Answer = CreatableTopicResult;

    fn entries(&self, _: i16) -> Vec<CreatableTopic> {
        self.topics.clone()
    }
    fn with_entries(&self, _: i16, entries: Vec<CreatableTopic>) -> Self {
        self.clone().with_topics(entries)
    }
    fn topic(entry: &CreatableTopic) -> Option<&str> {
        Some(&entry.name.0)
    }
    fn key(entry: &CreatableTopic) -> String {
        entry.name.0.to_string()
    }
    fn names_brokers(&self) -> bool {
        self.topics.iter().any(|t| !t.assignments.is_empty())
    }
    fn localize(&mut self, routed: &Routed) {
        for topic in &mut self.topics {
            for assignment in &mut topic.assignments {
                for id in &mut assignment.broker_ids {
                    *id = local_id(routed, *id);
                }
            }
        }
    }
    fn request_kind(self) -> RequestKind {
        RequestKind::CreateTopics(self)
    }
    fn answers(answer: ResponseKind) -> Option<(i32, Vec<CreatableTopicResult>)> {
        match answer {
            ResponseKind::CreateTopics(a) => Some((a.throttle_time_ms, a.topics)),
            _ => None,
        }
    }
    fn answer_key(answer: &CreatableTopicResult) -> String {
        answer.name.0.to_string()
    }
    fn merged(throttle_time_ms: i32, answers: Vec<CreatableTopicResult>) -> ResponseKind {
        ResponseKind::CreateTopics(
            CreateTopicsResponse::default()
                .with_throttle_time_ms(throttle_time_ms)
                .with_topics(answers),
        )
    }
}

/// Versions before 6 name topics in `topic_names`; later ones in `topics`, by name or id.
const DELETE_BY_STATE: i16 = 6;

impl Split for DeleteTopicsRequest {
    type Entry = DeleteTopicState;
    type Answer = DeletableTopicResult;

    fn entries(&self, version: i16) -> Vec<DeleteTopicState> {
        if version >= DELETE_BY_STATE {
            return self.topics.clone();
        }
        let by_name = |name: &TopicName| DeleteTopicState::default().with_name(Some(name.clone()));
        self.topic_names.iter().map(by_name).collect()
    }
    fn with_entries(&self, version: i16, entries: Vec<DeleteTopicState>) -> Self {
        if version >= DELETE_BY_STATE {
            return self.clone().with_topics(entries);
        }
        let names = entries.into_iter().filter_map(|e| e.name).collect();
        self.clone().with_topic_names(names)
    }
    fn topic(entry: &DeleteTopicState) -> Option<&str> {
        entry.name.as_ref().map(|n| n.0.as_str())
    }
    fn key(entry: &DeleteTopicState) -> String {
        match &entry.name {
            Some(name) => name.0.to_string(),
            None => entry.topic_id.to_string(),
        }
    }
    fn request_kind(self) -> RequestKind {
        RequestKind::DeleteTopics(self)
    }
    fn answers(answer: ResponseKind) -> Option<(i32, Vec<DeletableTopicResult>)> {
        match answer {
            ResponseKind::DeleteTopics(a) => Some((a.throttle_time_ms, a.responses)),
            _ => None,
        }
    }
    fn answer_key(answer: &DeletableTopicResult) -> String {
        match &answer.name {
            Some(name) => name.0.to_string(),
            None => answer.topic_id.to_string(),
        }
    }
    fn merged(throttle_time_ms: i32, answers: Vec<DeletableTopicResult>) -> ResponseKind {
        ResponseKind::DeleteTopics(
            DeleteTopicsResponse::default()
                .with_throttle_time_ms(throttle_time_ms)
                .with_responses(answers),
        )
    }
}

impl Split for CreatePartitionsRequest {
    type Entry = CreatePartitionsTopic;
    type Answer = CreatePartitionsTopicResult;

    fn entries(&self, _: i16) -> Vec<CreatePartitionsTopic> {
        self.topics.clone()
    }
    fn with_entries(&self, _: i16, entries: Vec<CreatePartitionsTopic>) -> Self {
        self.clone().with_topics(entries)
    }
    fn topic(entry: &CreatePartitionsTopic) -> Option<&str> {
        Some(&entry.name.0)
    }
    fn key(entry: &CreatePartitionsTopic) -> String {
        entry.name.0.to_string()
    }
    fn names_brokers(&self) -> bool {
        self.topics.iter().any(|t| t.assignments.is_some())
    }
    fn localize(&mut self, routed: &Routed) {
        for topic in &mut self.topics {
            for assignment in topic.assignments.iter_mut().flatten() {
                for id in &mut assignment.broker_ids {
                    *id = local_id(routed, *id);
                }
            }
        }
    }
    fn request_kind(self) -> RequestKind {
        RequestKind::CreatePartitions(self)
    }
    fn answers(answer: ResponseKind) -> Option<(i32, Vec<CreatePartitionsTopicResult>)> {
        match answer {
            ResponseKind::CreatePartitions(a) => Some((a.throttle_time_ms, a.results)),
            _ => None,
        }
    }
    fn answer_key(answer: &CreatePartitionsTopicResult) -> String {
        answer.name.0.to_string()
    }
    fn merged(throttle_time_ms: i32, answers: Vec<CreatePartitionsTopicResult>) -> ResponseKind {
        ResponseKind::CreatePartitions(
            CreatePartitionsResponse::default()
                .with_throttle_time_ms(throttle_time_ms)
                .with_results(answers),
        )
    }
}

/// A config resource's key: its type and name.
fn resource_key(resource_type: i8, name: &str) -> String {
    format!("{resource_type}/{name}")
}

fn topic_resource(resource_type: i8, name: &str) -> Option<&str> {
    (resource_type == TOPIC_RESOURCE).then_some(name)
}

/// The three config APIs name resources the same way; only their types and the field
/// that holds the answers differ.
macro_rules! split_config_resources {
    ($request:ty, $entry:ty, $answer:ty, $kind:ident, $body:ty, $answers:ident, $with_answers:ident) => {
        impl Split for $request {
            type Entry = $entry;
            type Answer = $answer;

            fn entries(&self, _: i16) -> Vec<Self::Entry> {
                self.resources.clone()
            }
            fn with_entries(&self, _: i16, entries: Vec<Self::Entry>) -> Self {
                self.clone().with_resources(entries)
            }
            fn topic(entry: &Self::Entry) -> Option<&str> {
                topic_resource(entry.resource_type, &entry.resource_name)
            }
            fn key(entry: &Self::Entry) -> String {
                resource_key(entry.resource_type, &entry.resource_name)
            }
            fn request_kind(self) -> RequestKind {
                RequestKind::$kind(self)
            }
            fn answers(answer: ResponseKind) -> Option<(i32, Vec<Self::Answer>)> {
                match answer {
                    ResponseKind::$kind(a) => Some((a.throttle_time_ms, a.$answers)),
                    _ => None,
                }
            }
            fn answer_key(answer: &Self::Answer) -> String {
                resource_key(answer.resource_type, &answer.resource_name)
            }
            fn merged(throttle_time_ms: i32, answers: Vec<Self::Answer>) -> ResponseKind {
                ResponseKind::$kind(
                    <$body>::default()
                        .with_throttle_time_ms(throttle_time_ms)
                        .$with_answers(answers),
                )
            }
        }
    };
}

split_config_resources!(
    DescribeConfigsRequest,
    DescribeConfigsResource,
    DescribeConfigsResult,
    DescribeConfigs,
    DescribeConfigsResponse,
    results,
    with_results
);
split_config_resources!(
    AlterConfigsRequest,
    alter_configs_request::AlterConfigsResource,
    alter_configs_response::AlterConfigsResourceResponse,
    AlterConfigs,
    AlterConfigsResponse,
    responses,
    with_responses
);
split_config_resources!(
    IncrementalAlterConfigsRequest,
    incremental_alter_configs_request::AlterConfigsResource,
    incremental_alter_configs_response::AlterConfigsResourceResponse,
    IncrementalAlterConfigs,
    IncrementalAlterConfigsResponse,
    responses,
    with_responses
);
