//! Fetch under breakers: covered topics answered with no records, fetch sessions kept
//! from carrying them (see the module doc of `breaker`).

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, FetchRequest, RequestKind, ResponseKind};
use kafka_protocol::ResponseError;

use super::{covering, unix_millis, unnamed, Breakers, FILTER, MAX_FETCH_WAIT, MIN_FETCH_WAIT};
use crate::protocol::error_response::error_response;
use crate::proxy::filter::{Env, Verdict};
use crate::proxy::filters::partial::{self, PartitionAnswer};
use crate::proxy::message::{Request, Response};

/// The note of an incremental fetch whose response must be checked for covered records.
const SESSION_CHECK: &str = "breaker-session";

/// Fetch sessions exist from v7; epoch -1 asks for none, 0 starts one, more continues one.
const SESSIONLESS_EPOCH: i32 = -1;

struct SessionCheck;

pub(super) fn on_request(filter: &Breakers, request: &mut Request, env: &Env) -> Verdict {
    if !env.control.breakers.values().any(|b| b.fetch) {
        return Verdict::Forward;
    }
    let now_ms = unix_millis();
    let version = request.version();
    let correlation_id = request.correlation_id();
    let (answers, incremental, max_wait) = match request.body() {
        Ok(RequestKind::Fetch(r)) => {
            let answers: Vec<Option<PartitionAnswer>> = r
                .topics
                .iter()
                .map(|t| {
                    let covered = match filter.names.resolve(&t.topic.0, t.topic_id) {
                        Some(name) => covering(env.control, &name, now_ms, ApiKey::Fetch).is_some(),
                        None => unnamed(filter, env, now_ms, ApiKey::Fetch),
                    };
                    covered.then(|| PartitionAnswer::error(0))
                })
                .collect();
            (answers, is_incremental(r, version), wait_of(r))
        }
        Ok(_) => return Verdict::Forward,
        Err(e) => return Verdict::Close(format!("cannot read the Fetch request: {e}")),
    };
    let covered = answers.iter().flatten().count();
    if incremental {
        if covered > 0 {
            return end_session(filter, request, version);
        }
        // The session may go on fetching partitions this request does not name.
        env.session
            .notes
            .leave(SESSION_CHECK, correlation_id, SessionCheck);
        return Verdict::Forward;
    }
    if covered == 0 {
        return Verdict::Forward;
    }
    let all = covered == answers.len();
    let taken = partial::take_out(request, &answers);
    let partitions: usize = taken.iter().map(|t| t.partitions.len()).sum();
    filter.counts.fetch_held.inc_by(partitions as u64);
    if all {
        let throttle = i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX);
        let body = match request.body() {
            Ok(body) => partial::answer_all(body, &taken, throttle),
            Err(_) => None,
        };
        return match body {
            Some(body) => Verdict::AnswerAfter(max_wait, Box::new(body)),
            None => Verdict::Close("cannot build the answer of a held Fetch".into()),
        };
    }
    if version >= 7 {
        if let Ok(RequestKind::Fetch(r)) = request.body_mut() {
            r.session_id = 0;
            r.session_epoch = SESSIONLESS_EPOCH;
        }
    }
    env.session.notes.leave(FILTER, correlation_id, taken);
    Verdict::Forward
}

fn is_incremental(request: &FetchRequest, version: i16) -> bool {
    version >= 7 && request.session_epoch > 0
}

/// The long poll a Fetch asked for, within bounds.
fn wait_of(request: &FetchRequest) -> Duration {
    let asked = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    asked.clamp(MIN_FETCH_WAIT, MAX_FETCH_WAIT)
}

/// Answers FETCH_SESSION_ID_NOT_FOUND: the client starts over with a full fetch, which
/// this filter can trim.
fn end_session(filter: &Breakers, request: &mut Request, version: i16) -> Verdict {
    filter.counts.fetch_held.inc();
    let body = match request.body() {
        Ok(body) => body,
        Err(e) => return Verdict::Close(format!("cannot read the Fetch request: {e}")),
    };
    match error_response(body, version, ResponseError::FetchSessionIdNotFound, 0) {
        Ok(answer) => Verdict::Answer(Box::new(answer)),
        Err(e) => Verdict::Close(format!("cannot build the fetch session's end: {e}")),
    }
}

/// Ends a fetch session whose response carries records of a covered topic, then puts
/// back what the request lost to breakers.
pub(super) fn on_response(
    filter: &Breakers,
    response: &mut Response,
    env: &Env,
) -> Result<(), String> {
    let checked = response
        .correlation_id()
        .and_then(|id| env.session.notes.take::<SessionCheck>(SESSION_CHECK, id))
        .is_some();
    if checked {
        let now_ms = unix_millis();
        response.edit(|body| {
            let ResponseKind::Fetch(body) = body else {
                return false;
            };
            let leaks = body.responses.iter().any(|topic| {
                let name = filter.names.name_of(&topic.topic.0, topic.topic_id);
                covering(env.control, &name, now_ms, ApiKey::Fetch).is_some()
                    && topic
                        .partitions
                        .iter()
                        .any(|p| p.records.as_ref().is_some_and(|r| !r.is_empty()))
            });
            if leaks {
                filter.counts.fetch_held.inc();
                body.error_code = ResponseError::FetchSessionIdNotFound.code();
                body.session_id = 0;
                body.responses.clear();
            }
            leaks
        })?;
    }
    partial::merge_back(response, env, FILTER)
}
