//! Partition-directed requests on an identity connection reach that identity's cluster.
//! A topic routed elsewhere is never forwarded there: the client's metadata is stale (a
//! route changed), and forwarding would write or read the wrong cluster's copy of the
//! topic. Its partitions get NOT_LEADER_OR_FOLLOWER, which makes every client refresh its
//! metadata and retry at the leader the merged Metadata now names.
//!
//! A transactional Produce naming a topic outside its transactional id's cluster is
//! refused the same way, with INVALID_TXN_STATE (see `transactions`).
//!
//! Produce and Fetch lose only the misrouted topics (the rest go to the broker and the
//! answers are merged back); ListOffsets, OffsetForLeaderEpoch and DeleteRecords are
//! answered whole with the error when any topic is misrouted, since they are rare and
//! retried whole.

use flotilla_raft::routes::RouteResource;
use flotilla_raft::ControlState;
use kafka_protocol::messages::RequestKind;
use kafka_protocol::ResponseError;

use super::{transactions, Routing};
use crate::protocol::error_response::error_response;
use crate::proxy::filter::{Env, Verdict};
use crate::proxy::filters::partial::{self, PartitionAnswer};
use crate::proxy::message::{Request, Response};

/// The name partial answers are noted under.
pub(super) const NOTE: &str = "routing";

pub(super) fn check(filter: &Routing, request: &mut Request, env: &Env, own: &str) -> Verdict {
    let version = request.version();
    let misrouted = |name: &str| env.control.cluster_for(RouteResource::Topic, name) != own;
    let body = match request.body() {
        Ok(body) => body,
        Err(e) => return Verdict::Close(format!("undecodable request: {e}")),
    };
    let answers: Vec<Option<PartitionAnswer>> = match body {
        RequestKind::Produce(r) => {
            let transactional_id = r.transactional_id.as_ref().map(|t| t.0.as_str());
            r.topic_data
                .iter()
                .map(|t| filter.resolve(&t.name.0, t.topic_id))
                .map(|name| {
                    let name = name.as_deref();
                    marked(name, &misrouted).or_else(|| {
                        let outside = transactions::outside(env.control, transactional_id?, name?);
                        outside.map(transactions::produce_answer)
                    })
                })
                .collect()
        }
        RequestKind::Fetch(r) => r
            .topics
            .iter()
            .map(|t| filter.resolve(&t.topic.0, t.topic_id))
            .map(|name| marked(name.as_deref(), &misrouted))
            .collect(),
        RequestKind::ListOffsets(r) => {
            return whole(body, version, r.topics.iter().any(|t| misrouted(&t.name.0)))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            return whole(
                body,
                version,
                r.topics.iter().any(|t| misrouted(&t.topic.0)),
            )
        }
        RequestKind::DeleteRecords(r) => {
            return whole(body, version, r.topics.iter().any(|t| misrouted(&t.name.0)))
        }
        _ => return Verdict::Forward,
    };
    partial_answer(request, env, &answers)
}

/// NOT_LEADER_OR_FOLLOWER for a topic routed elsewhere; a topic named by an id this node
/// has not learned goes on (its cluster cannot be told).
fn marked(name: Option<&str>, misrouted: &impl Fn(&str) -> bool) -> Option<PartitionAnswer> {
    name.filter(|n| misrouted(n))
        .map(|_| PartitionAnswer::error(ResponseError::NotLeaderOrFollower.code()))
}

fn whole(body: &RequestKind, version: i16, misrouted: bool) -> Verdict {
    if !misrouted {
        return Verdict::Forward;
    }
    match error_response(body, version, ResponseError::NotLeaderOrFollower, 0) {
        Ok(answer) => Verdict::Answer(Box::new(answer)),
        Err(e) => Verdict::Close(format!("cannot answer a misrouted request: {e}")),
    }
}

/// Takes the marked topics out and answers them; the rest go to the broker.
fn partial_answer(
    request: &mut Request,
    env: &Env,
    answers: &[Option<PartitionAnswer>],
) -> Verdict {
    let marked = answers.iter().flatten().count();
    if marked == 0 {
        return Verdict::Forward;
    }
    let correlation_id = request.correlation_id();
    let acks = match request.body() {
        Ok(RequestKind::Produce(r)) => r.acks,
        _ => -1,
    };
    let taken = partial::take_out(request, answers);
    if marked < answers.len() {
        if acks != 0 {
            env.session.notes.leave(NOTE, correlation_id, taken);
        }
        return Verdict::Forward;
    }
    match request
        .body()
        .ok()
        .and_then(|body| partial::answer_all(body, &taken, 0))
    {
        Some(answer) => Verdict::Answer(Box::new(answer)),
        None => Verdict::Close("cannot answer a misrouted request".into()),
    }
}

/// Puts the answered topics back into the broker's response.
pub(super) fn merge_back(response: &mut Response, env: &Env) -> Result<(), String> {
    partial::merge_back(response, env, NOTE)
}

/// Whether some topic may be routed to another cluster than `own`; when none can, the
/// connection's requests need no look at all.
pub(super) fn may_misroute(control: &ControlState, own: &str) -> bool {
    control.default_route() != own || control.routes.values().any(|c| c != own)
}
