//! The requests whose answers are trimmed rather than refused whole: Produce and Fetch
//! lose their denied topics on the way to the broker and get them back, with the
//! authorization error, in the response; Metadata answers describe only what the
//! principal may describe.

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{BrokerId, RequestKind, ResponseKind, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::needs::Check;
use super::topics::TopicNames;
use super::Authorizer;
use crate::proxy::filter::{Env, Verdict};
use crate::proxy::message::{Request, Response};
use flotilla_raft::security::{AclOperation, ResourceType};

const FILTER: &str = "acl";

/// A topic taken out of a request, answered by the proxy.
struct Removed {
    name: TopicName,
    id: Uuid,
    partitions: Vec<i32>,
    error: i16,
}

/// Marks a Metadata request that named its topics (so denied ones are answered with an
/// error rather than left out).
struct NamedTopics;

fn topic_check(name: String, operation: AclOperation) -> Check {
    Check {
        resource_type: ResourceType::Topic,
        name,
        operation,
    }
}

/// Why a topic of a Produce or Fetch cannot go to the broker, if it cannot.
fn refusal(
    who: &Authorizer,
    names: &TopicNames,
    name: &TopicName,
    id: Uuid,
    operation: AclOperation,
) -> Option<i16> {
    if name.0.is_empty() && !names.knows(id) {
        return Some(ResponseError::UnknownTopicId.code());
    }
    let check = topic_check(names.name_of(&name.0, id), operation);
    (!who.allows(&check)).then(|| ResponseError::TopicAuthorizationFailed.code())
}

/// Checks every topic of a Produce or Fetch: all allowed goes on untouched, none allowed
/// is refused whole, and a mix goes on without the denied topics, which the response gets
/// back (see [`merge_removed`]).
pub fn per_topic(
    request: &mut Request,
    who: &Authorizer,
    names: &TopicNames,
    operation: AclOperation,
    env: &Env,
) -> Verdict {
    let correlation_id = request.correlation_id();
    let (removed, kept, expects_answer) = match request.body() {
        Ok(RequestKind::Produce(r)) => {
            let refused: Vec<Option<i16>> = r
                .topic_data
                .iter()
                .map(|t| refusal(who, names, &t.name, t.topic_id, operation))
                .collect();
            (refused, r.topic_data.len(), r.acks != 0)
        }
        Ok(RequestKind::Fetch(r)) => {
            let refused: Vec<Option<i16>> = r
                .topics
                .iter()
                .map(|t| refusal(who, names, &t.topic, t.topic_id, operation))
                .collect();
            (refused, r.topics.len(), true)
        }
        Ok(_) => return Verdict::Forward,
        Err(e) => return Verdict::Close(format!("cannot read the request to authorize it: {e}")),
    };
    let denied = removed.iter().filter(|r| r.is_some()).count();
    if denied == 0 {
        return Verdict::Forward;
    }
    if denied == kept {
        let error = removed.iter().flatten().next().copied().unwrap_or_default();
        let error = kafka_protocol::ResponseError::try_from_code(error)
            .unwrap_or(ResponseError::TopicAuthorizationFailed);
        return super::refuse(request, request.version(), error);
    }
    if !expects_answer {
        return Verdict::Close(
            "an acks=0 Produce names a topic the principal may not write".to_string(),
        );
    }
    let taken = match request.body_mut() {
        Ok(RequestKind::Produce(r)) => take_out(&mut r.topic_data, &removed, |t| {
            (
                t.name.clone(),
                t.topic_id,
                t.partition_data.iter().map(|p| p.index).collect(),
            )
        }),
        Ok(RequestKind::Fetch(r)) => take_out(&mut r.topics, &removed, |t| {
            (
                t.topic.clone(),
                t.topic_id,
                t.partitions.iter().map(|p| p.partition).collect(),
            )
        }),
        _ => Vec::new(),
    };
    env.session.notes.leave(FILTER, correlation_id, taken);
    Verdict::Forward
}

/// Removes the entries `refused` marks, returning what the response must say of them.
fn take_out<T>(
    entries: &mut Vec<T>,
    refused: &[Option<i16>],
    describe: impl Fn(&T) -> (TopicName, Uuid, Vec<i32>),
) -> Vec<Removed> {
    let mut taken = Vec::new();
    let mut index = 0;
    entries.retain(|entry| {
        let error = refused[index];
        index += 1;
        if let Some(error) = error {
            let (name, id, partitions) = describe(entry);
            taken.push(Removed {
                name,
                id,
                partitions,
                error,
            });
        }
        error.is_none()
    });
    taken
}

/// Puts the topics taken out of a Produce or Fetch back into its response, with their
/// errors; responses of requests nothing was taken from pass untouched.
pub fn merge_removed(response: &mut Response, env: &Env) -> Result<(), String> {
    let Some(correlation_id) = response.correlation_id() else {
        return Ok(());
    };
    let Some(removed) = env
        .session
        .notes
        .take::<Vec<Removed>>(FILTER, correlation_id)
    else {
        return Ok(());
    };
    response.edit(|body| match body {
        ResponseKind::Produce(body) => {
            body.responses.extend(removed.iter().map(produce_entry));
            true
        }
        ResponseKind::Fetch(body) => {
            body.responses.extend(removed.iter().map(fetch_entry));
            true
        }
        _ => false,
    })
}

fn produce_entry(removed: &Removed) -> TopicProduceResponse {
    let partitions = removed.partitions.iter().map(|&index| {
        PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(removed.error)
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
    });
    TopicProduceResponse::default()
        .with_name(removed.name.clone())
        .with_topic_id(removed.id)
        .with_partition_responses(partitions.collect())
}

fn fetch_entry(removed: &Removed) -> FetchableTopicResponse {
    let partitions = removed.partitions.iter().map(|&index| {
        PartitionData::default()
            .with_partition_index(index)
            .with_error_code(removed.error)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1))
    });
    FetchableTopicResponse::default()
        .with_topic(removed.name.clone())
        .with_topic_id(removed.id)
        .with_partitions(partitions.collect())
}

/// A Metadata request: topics the principal may not create are not auto-created, and a
/// request naming its topics is noted so that denied ones are answered with an error.
pub fn metadata_request(
    request: &mut Request,
    who: &Authorizer,
    env: &Env,
    correlation_id: i32,
) -> Verdict {
    let (named, creates) = match request.body() {
        Ok(RequestKind::Metadata(r)) => {
            let named: Vec<String> = r
                .topics
                .iter()
                .flatten()
                .filter_map(|t| t.name.as_ref())
                .map(|n| n.0.to_string())
                .collect();
            (
                r.topics.is_some(),
                r.allow_auto_topic_creation.then_some(named),
            )
        }
        _ => return Verdict::Forward,
    };
    if named {
        env.session.notes.leave(FILTER, correlation_id, NamedTopics);
    }
    let may_not_create = creates.is_some_and(|topics| {
        topics
            .into_iter()
            .any(|t| !who.allows(&topic_check(t, AclOperation::Create)))
    });
    if may_not_create {
        if let Ok(RequestKind::Metadata(r)) = request.body_mut() {
            r.allow_auto_topic_creation = false;
        }
    }
    Verdict::Forward
}

/// Learns topic ids, then hides what the principal may not describe: left out of a
/// listing of every topic, answered TOPIC_AUTHORIZATION_FAILED where the client named it.
pub fn metadata_response(
    response: &mut Response,
    who: &Authorizer,
    names: &TopicNames,
    env: &Env,
) -> Result<(), String> {
    let named = response
        .correlation_id()
        .and_then(|id| env.session.notes.take::<NamedTopics>(FILTER, id))
        .is_some();
    let super_user = who.is_super_user();
    response.edit(|body| {
        let ResponseKind::Metadata(body) = body else {
            return false;
        };
        names.learn(
            body.topics
                .iter()
                .filter_map(|t| Some((t.topic_id, &t.name.as_ref()?.0))),
        );
        if super_user {
            return false;
        }
        let before = body.topics.len();
        let mut changed = false;
        body.topics.retain_mut(|topic| {
            let name = topic
                .name
                .as_ref()
                .map(|n| n.0.to_string())
                .unwrap_or_default();
            if who.allows(&topic_check(name, AclOperation::Describe)) {
                return true;
            }
            changed = true;
            if named {
                topic.error_code = ResponseError::TopicAuthorizationFailed.code();
                topic.topic_id = Uuid::nil();
                topic.partitions.clear();
                topic.is_internal = false;
            }
            named
        });
        changed || body.topics.len() != before
    })
}
