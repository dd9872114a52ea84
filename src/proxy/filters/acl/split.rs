//! The requests whose answers are trimmed rather than refused whole: Produce and Fetch
//! lose their denied topics on the way to the broker and get them back, with the
//! authorization error, in the response; Metadata answers describe only what the
//! principal may describe.

use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::needs::Check;
use super::Authorizer;
use crate::proxy::filter::{Env, Verdict};
use crate::proxy::filters::partial::{self, PartitionAnswer};
use crate::proxy::filters::topic_names::TopicNames;
use crate::proxy::message::{Request, Response};
use flotilla_raft::security::{AclOperation, ResourceType};

const FILTER: &str = "acl";

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
    let answers: Vec<Option<PartitionAnswer>> = removed
        .iter()
        .map(|error| error.map(PartitionAnswer::error))
        .collect();
    let taken = partial::take_out(request, &answers);
    env.session.notes.leave(FILTER, correlation_id, taken);
    Verdict::Forward
}

/// Puts the topics taken out of a Produce or Fetch back into its response, with their
/// errors; responses of requests nothing was taken from pass untouched.
pub fn merge_removed(response: &mut Response, env: &Env) -> Result<(), String> {
    partial::merge_back(response, env, FILTER)
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
