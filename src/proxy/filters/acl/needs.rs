//! What each request needs to be allowed: Kafka's authorization of its APIs, request by
//! request (as `KafkaApis` checks them), as resource, name and operation.
//!
//! Produce and Fetch are checked topic by topic: a denied topic is taken out of the
//! request and answered in the response, so a producer writing to an allowed and a denied
//! topic in one request still gets its allowed records written, as from Kafka itself.
//! Every other API is checked as a whole: one denied resource refuses the request with
//! the authorization error of that resource's kind (a simplification where Kafka would
//! answer some entries of a batch admin request and refuse others).
//!
//! APIs not named here need ALTER on the cluster: deny by default, as an operator of a
//! locked-down cluster expects of any API this list has not met yet.

use flotilla_raft::security::{AclOperation, ResourceType, CLUSTER_NAME};
use kafka_protocol::messages::RequestKind;
use kafka_protocol::ResponseError;

use crate::proxy::filters::topic_names::TopicNames;

/// One permission a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub resource_type: ResourceType,
    pub name: String,
    pub operation: AclOperation,
}

impl Check {
    fn new(resource_type: ResourceType, name: impl ToString, operation: AclOperation) -> Check {
        Check {
            resource_type,
            name: name.to_string(),
            operation,
        }
    }

    fn cluster(operation: AclOperation) -> Check {
        Check::new(ResourceType::Cluster, CLUSTER_NAME, operation)
    }

    /// The error a refused request gets for this check.
    pub fn error(&self) -> ResponseError {
        match self.resource_type {
            ResourceType::Topic => ResponseError::TopicAuthorizationFailed,
            ResourceType::Group => ResponseError::GroupAuthorizationFailed,
            ResourceType::TransactionalId => ResponseError::TransactionalIdAuthorizationFailed,
            ResourceType::Cluster => ResponseError::ClusterAuthorizationFailed,
        }
    }
}

/// How a request is authorized.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to check (ApiVersions, SASL, DescribeCluster).
    Free,
    /// Every check must pass, in order; the first that fails refuses the request.
    All(Vec<Check>),
    /// The request-level checks, then `operation` on each topic (Produce, Fetch).
    PerTopic(Vec<Check>, AclOperation),
    /// An idempotent producer's InitProducerId: IDEMPOTENT_WRITE on the cluster, or WRITE
    /// on any topic (Kafka's rule since 2.8).
    IdempotentProducer,
}

/// The plan of one decoded request.
pub fn plan(request: &RequestKind, names: &TopicNames) -> Plan {
    use AclOperation::*;
    use ResourceType::*;
    let topic = |name: &str, operation| Check::new(Topic, name, operation);
    let group = |name: &str, operation| Check::new(Group, name, operation);
    let txn = |name: &str| Check::new(TransactionalId, name, Write);
    match request {
        RequestKind::ApiVersions(_)
        | RequestKind::SaslHandshake(_)
        | RequestKind::SaslAuthenticate(_)
        | RequestKind::DescribeCluster(_)
        | RequestKind::Metadata(_) => Plan::Free,
        RequestKind::Produce(r) => {
            let checks = r.transactional_id.iter().map(|t| txn(&t.0)).collect();
            Plan::PerTopic(checks, Write)
        }
        RequestKind::Fetch(r) if r.replica_id.0 >= 0 => {
            Plan::All(vec![Check::cluster(ClusterAction)])
        }
        RequestKind::Fetch(_) => Plan::PerTopic(Vec::new(), Read),
        RequestKind::ListOffsets(r) => Plan::All(
            r.topics
                .iter()
                .map(|t| topic(&t.name.0, Describe))
                .collect(),
        ),
        RequestKind::FindCoordinator(r) => {
            let resource = if r.key_type == 1 {
                TransactionalId
            } else {
                Group
            };
            let mut keys: Vec<&str> = r.coordinator_keys.iter().map(|k| k.as_str()).collect();
            if keys.is_empty() {
                keys.push(r.key.as_str());
            }
            Plan::All(
                keys.into_iter()
                    .map(|k| Check::new(resource, k, Describe))
                    .collect(),
            )
        }
        RequestKind::JoinGroup(r) => Plan::All(vec![group(&r.group_id.0, Read)]),
        RequestKind::SyncGroup(r) => Plan::All(vec![group(&r.group_id.0, Read)]),
        RequestKind::Heartbeat(r) => Plan::All(vec![group(&r.group_id.0, Read)]),
        RequestKind::LeaveGroup(r) => Plan::All(vec![group(&r.group_id.0, Read)]),
        RequestKind::ConsumerGroupHeartbeat(r) => Plan::All(vec![group(&r.group_id.0, Read)]),
        RequestKind::OffsetCommit(r) => {
            let mut checks = vec![group(&r.group_id.0, Read)];
            checks.extend(
                r.topics
                    .iter()
                    .map(|t| topic(&names.name_of(&t.name.0, t.topic_id), Read)),
            );
            Plan::All(checks)
        }
        RequestKind::OffsetFetch(r) => {
            let mut checks = Vec::new();
            if r.groups.is_empty() {
                checks.push(group(&r.group_id.0, Describe));
                let topics = r.topics.iter().flatten();
                checks.extend(topics.map(|t| topic(&t.name.0, Describe)));
            }
            for g in &r.groups {
                checks.push(group(&g.group_id.0, Describe));
                let topics = g.topics.iter().flatten();
                checks
                    .extend(topics.map(|t| topic(&names.name_of(&t.name.0, t.topic_id), Describe)));
            }
            Plan::All(checks)
        }
        RequestKind::DescribeGroups(r) => {
            Plan::All(r.groups.iter().map(|g| group(&g.0, Describe)).collect())
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            Plan::All(r.group_ids.iter().map(|g| group(&g.0, Describe)).collect())
        }
        RequestKind::DeleteGroups(r) => {
            Plan::All(r.groups_names.iter().map(|g| group(&g.0, Delete)).collect())
        }
        RequestKind::ListGroups(_) => Plan::Free, // filtered in the response
        RequestKind::InitProducerId(r) => match &r.transactional_id {
            Some(t) => Plan::All(vec![txn(&t.0)]),
            None => Plan::IdempotentProducer,
        },
        RequestKind::AddPartitionsToTxn(r) => {
            let mut checks = Vec::new();
            if !r.v3_and_below_transactional_id.0.is_empty() {
                checks.push(txn(&r.v3_and_below_transactional_id.0));
                let topics = r.v3_and_below_topics.iter();
                checks.extend(topics.map(|t| topic(&t.name.0, Write)));
            }
            for t in &r.transactions {
                checks.push(txn(&t.transactional_id.0));
                checks.extend(t.topics.iter().map(|t| topic(&t.name.0, Write)));
            }
            Plan::All(checks)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            Plan::All(vec![txn(&r.transactional_id.0), group(&r.group_id.0, Read)])
        }
        RequestKind::EndTxn(r) => Plan::All(vec![txn(&r.transactional_id.0)]),
        RequestKind::TxnOffsetCommit(r) => {
            let mut checks = vec![txn(&r.transactional_id.0), group(&r.group_id.0, Read)];
            checks.extend(r.topics.iter().map(|t| topic(&t.name.0, Read)));
            Plan::All(checks)
        }
        RequestKind::CreateTopics(r) => {
            Plan::All(r.topics.iter().map(|t| topic(&t.name.0, Create)).collect())
        }
        RequestKind::DeleteTopics(r) => {
            let named = r.topic_names.iter().map(|n| n.0.to_string());
            let by_state = r
                .topics
                .iter()
                .map(|t| names.name_of(t.name.as_ref().map_or("", |n| n.0.as_str()), t.topic_id));
            Plan::All(named.chain(by_state).map(|n| topic(&n, Delete)).collect())
        }
        RequestKind::CreatePartitions(r) => {
            Plan::All(r.topics.iter().map(|t| topic(&t.name.0, Alter)).collect())
        }
        RequestKind::DeleteRecords(r) => {
            Plan::All(r.topics.iter().map(|t| topic(&t.name.0, Delete)).collect())
        }
        RequestKind::DescribeConfigs(r) => Plan::All(
            r.resources
                .iter()
                .map(|c| config_check(c.resource_type, &c.resource_name, DescribeConfigs))
                .collect(),
        ),
        RequestKind::IncrementalAlterConfigs(r) => Plan::All(
            r.resources
                .iter()
                .map(|c| config_check(c.resource_type, &c.resource_name, AlterConfigs))
                .collect(),
        ),
        RequestKind::AlterConfigs(r) => Plan::All(
            r.resources
                .iter()
                .map(|c| config_check(c.resource_type, &c.resource_name, AlterConfigs))
                .collect(),
        ),
        _ => Plan::All(vec![Check::cluster(Alter)]),
    }
}

/// Configs of a topic are the topic's; those of a broker (or anything else) the cluster's.
fn config_check(resource_type: i8, name: &str, operation: AclOperation) -> Check {
    const TOPIC: i8 = 2;
    match resource_type {
        TOPIC => Check::new(ResourceType::Topic, name, operation),
        _ => Check::cluster(operation),
    }
}
