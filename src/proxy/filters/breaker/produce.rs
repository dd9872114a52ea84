//! Produce under breakers: held and rejected topics taken out and answered, the rest
//! forwarded (and measured, for the topics a rule watches).

use flotilla_raft::governance::{Breaker, BreakerMode};
use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{client_message, covering, unix_millis, unnamed, Breakers, FILTER, HOLD_PAUSE};
use crate::proxy::filter::{Env, Verdict};
use crate::proxy::filters::partial::{self, PartitionAnswer, TakenOut};
use crate::proxy::message::{Request, Response};

/// The error every partition of a topic under `breaker` gets; see the module doc.
pub(super) fn answer(topic: &str, breaker: &Breaker) -> PartitionAnswer {
    let error = match breaker.mode {
        BreakerMode::Hold => ResponseError::NotEnoughReplicas,
        BreakerMode::Reject => ResponseError::PolicyViolation,
    };
    PartitionAnswer {
        error: error.code(),
        message: Some(StrBytes::from_string(client_message(topic, breaker))),
    }
}

pub(super) fn on_request(filter: &Breakers, request: &mut Request, env: &Env) -> Verdict {
    let now_ms = unix_millis();
    let (answers, acks) = match request.body() {
        Ok(RequestKind::Produce(r)) => {
            let answers: Vec<Option<PartitionAnswer>> = r
                .topic_data
                .iter()
                .map(|topic| decide(filter, topic, env, now_ms))
                .collect();
            (answers, r.acks)
        }
        Ok(_) => return Verdict::Forward,
        Err(e) => return Verdict::Close(format!("cannot read the Produce request: {e}")),
    };
    let covered = answers.iter().flatten().count();
    if covered == 0 {
        return Verdict::Forward;
    }
    let correlation_id = request.correlation_id();
    let all = covered == answers.len();
    let taken = partial::take_out(request, &answers);
    count(filter, &taken, acks);
    let held = taken.iter().any(|t| is_hold(&t.answer));
    if !all {
        if acks != 0 {
            env.session.notes.leave(FILTER, correlation_id, taken);
        }
        return Verdict::Forward;
    }
    let throttle = if held {
        HOLD_PAUSE.as_millis() as i32
    } else {
        0
    };
    let body = match request.body() {
        Ok(body) => partial::answer_all(body, &taken, throttle),
        Err(_) => None,
    };
    let Some(body) = body else {
        return Verdict::Close("cannot build the answer of a held Produce".into());
    };
    if held {
        Verdict::AnswerAfter(HOLD_PAUSE, Box::new(body))
    } else {
        Verdict::Answer(Box::new(body))
    }
}

/// The answer for one topic, or `None` to forward it (measured if a rule watches it).
fn decide(
    filter: &Breakers,
    topic: &TopicProduceData,
    env: &Env,
    now_ms: u64,
) -> Option<PartitionAnswer> {
    let Some(name) = filter.names.resolve(&topic.name.0, topic.topic_id) else {
        return unnamed(filter, env, now_ms, ApiKey::Produce).then(|| held_unnamed(topic));
    };
    if let Some(breaker) = covering(env.control, &name, now_ms, ApiKey::Produce) {
        return Some(answer(&name, breaker));
    }
    if !env.control.breaker_rules.is_empty() {
        let bytes = topic
            .partition_data
            .iter()
            .map(|p| p.records.as_ref().map_or(0, |r| r.len() as u64))
            .sum();
        filter
            .meter
            .produced(&name, bytes, &env.control.breaker_rules);
    }
    None
}

/// A topic named by an id this node has not learned yet, held while breakers are in
/// force (it may be one they cover) until the node has asked the backend.
fn held_unnamed(topic: &TopicProduceData) -> PartitionAnswer {
    let message = format!(
        "topic id {} is not known to this flotilla node yet; retry",
        topic.topic_id
    );
    PartitionAnswer {
        error: ResponseError::NotEnoughReplicas.code(),
        message: Some(StrBytes::from_string(message)),
    }
}

fn is_hold(answer: &PartitionAnswer) -> bool {
    answer.error == ResponseError::NotEnoughReplicas.code()
}

fn count(filter: &Breakers, taken: &[TakenOut], acks: i16) {
    let counts = &filter.counts;
    for topic in taken {
        let partitions = topic.partitions.len() as u64;
        if acks == 0 {
            counts.dropped.inc_by(partitions);
        }
        if is_hold(&topic.answer) {
            counts.produce_held.inc_by(partitions);
        } else {
            counts.produce_rejected.inc_by(partitions);
        }
    }
}

/// Measures the brokers' partition errors (for error-rate rules), then puts back what
/// the request lost to breakers.
pub(super) fn on_response(
    filter: &Breakers,
    response: &mut Response,
    env: &Env,
) -> Result<(), String> {
    let rules = &env.control.breaker_rules;
    if filter.meter.watches_errors(rules) {
        response.edit(|body| {
            if let ResponseKind::Produce(body) = body {
                for topic in &body.responses {
                    let name = filter.names.name_of(&topic.name.0, topic.topic_id);
                    let partitions = &topic.partition_responses;
                    let errors = partitions.iter().filter(|p| p.error_code != 0).count();
                    filter
                        .meter
                        .answered(&name, partitions.len() as u64, errors as u64, rules);
                }
            }
            false
        })?;
    }
    partial::merge_back(response, env, FILTER)
}
