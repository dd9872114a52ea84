//! The data-path half of online consumer offset resets: while a reset of group G is
//! `applying` in the committed control state, every node fences G, so that no member keeps
//! or commits the positions it had before the reset and none rejoins before the targets
//! are committed.
//!
//! Kafka moves committed offsets only in an empty group, and a member that survives the
//! reset keeps its in-memory positions and commits them again, undoing it. The Raft
//! leader's driver empties G at its coordinator (it removes the members); this filter
//! makes sure that what the members hear meanwhile, on whichever node they are connected
//! through, makes each of them drop its positions without committing them and wait
//! outside the group, retrying, until the fence lifts and the targets wait for them in
//! OffsetFetch. Everything else, and every other group, is forwarded untouched.
//!
//! What each request of a fenced group gets, and why (client behaviour read in Apache
//! Kafka's `AbstractCoordinator`, `ConsumerCoordinator`, `AbstractHeartbeatRequestManager`,
//! `AbstractMembershipManager`, `CommitRequestManager`, `TransactionManager`, and
//! librdkafka's `rdkafka_cgrp.c`, `rdkafka_request.c`, `rdkafka_assignment.c`,
//! `rdkafka_txnmgr.c`):
//!
//! - Heartbeat and SyncGroup: UNKNOWN_MEMBER_ID. The Java classic consumer resets its
//!   generation and member id, and its next `onJoinPrepare` gives every partition away as
//!   lost (no commit: a commit outside a stable generation fails locally). librdkafka
//!   resets the member id and revokes everything as lost (cooperative) or rejoins
//!   (eager, which revoked before joining). ILLEGAL_GENERATION would do as well here but
//!   is fatal to Java on JoinGroup, so UNKNOWN_MEMBER_ID is the one code for members.
//!   COORDINATOR_LOAD_IN_PROGRESS would be an "unexpected error", fatal, on Java's
//!   SyncGroup, and REBALANCE_IN_PROGRESS keeps positions under cooperative assignors.
//! - JoinGroup with a member id: UNKNOWN_MEMBER_ID; Java resets, runs `onJoinPrepare`
//!   again and loses every partition. librdkafka under a cooperative assignor only resets
//!   its member id and rejoins *keeping* its assignment, which its next JoinGroup shows as
//!   owned partitions in the subscription metadata; see the next point.
//! - JoinGroup without a member id whose consumer-protocol metadata names owned
//!   partitions: held, then MEMBER_ID_REQUIRED, which makes librdkafka (cooperative)
//!   revoke everything as lost. Java never sends that combination (with no member id it
//!   has given its partitions away first); if another client did and kept them, the hold
//!   paces its retries.
//! - JoinGroup without a member id and nothing owned: held [`HOLD`], then
//!   COORDINATOR_LOAD_IN_PROGRESS: both clients back off and join again; no error reaches
//!   the application.
//! - OffsetCommit and TxnOffsetCommit from a member (a member id, a generation or member
//!   epoch of 0 or more, or a group instance id): UNKNOWN_MEMBER_ID. These are the stale
//!   commits (a revocation or auto-commit in flight). Java classic resets and loses its
//!   partitions; a `commitSync` caller gets `CommitFailedException`, as after any
//!   eviction; the KIP-848 Java consumer fails the commit the same way and is fenced by
//!   its next heartbeat. librdkafka resets and revokes as lost (classic) or hurries its
//!   next heartbeat (KIP-848); the commit callback gets the error. A transactional
//!   producer gets an abortable error (both clients), and must abort, so the stale
//!   offsets never commit. A generation of 0 or more with no member id counts as a
//!   member: librdkafka sends exactly that after resetting its member id while keeping
//!   its assignment.
//! - Simple commits (no member id, generation -1: `assign()` consumers, admin tools) and
//!   OffsetFetch of the group: held, then COORDINATOR_LOAD_IN_PROGRESS, which both clients
//!   retry (librdkafka's OffsetFetch retries while its assignment is unchanged, its
//!   commits twice before the commit callback gets the error; Java's until the call's
//!   timeout). An `assign()` consumer has no membership to lose: it keeps its positions,
//!   and a commit of it that outlives the fence lands after the targets. An OffsetFetch naming several groups (v8+) is held whole
//!   if any is fenced: consumers name their one group, only admin tools batch, and one
//!   answer for the request keeps the filter from splitting and merging responses.
//! - ConsumerGroupHeartbeat (KIP-848): epoch > 0 gets FENCED_MEMBER_EPOCH; Java moves to
//!   FENCED, calls `onPartitionsLost`, clears its assignment and rejoins at epoch 0;
//!   librdkafka revokes everything as lost and rejoins. A join (epoch 0) is held and gets
//!   COORDINATOR_LOAD_IN_PROGRESS (both retry with backoff), or, if it claims owned
//!   partitions, FENCED_MEMBER_EPOCH, held too. A leave (epoch < 0) is forwarded.
//!
//! Held answers carry no throttle time: the hold already paces retries, and a KIP-219
//! client would mute its whole connection to that broker for the throttle time.
//!
//! The filter is in the chain only while some reset is applying, so without one, group
//! requests pay nothing. While one is, the group requests above are decoded (they are a
//! consumer's control traffic, a few per second per member, never Produce or Fetch) and
//! their group looked up among the resets in the committed state: a scan of at most
//! [`flotilla_raft::offset_resets::FINISHED_KEPT`] finished resets and the active ones,
//! comparing a phase byte each, cheaper than the decode itself. No per-state set is built
//! because filters see the state by reference, with nothing to key a cache on safely.

mod owned;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use flotilla_raft::offset_resets::{OffsetReset, ResetPhase};
use flotilla_raft::ControlState;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;
use prometheus::IntCounter;

use self::rules::Decision;
use crate::metrics::Metrics;
use crate::protocol::decode::decodable_versions;
use crate::protocol::error_response::error_response;
use crate::proxy::filter::{Env, Filter, Verdict};
use crate::proxy::message::Request;

/// How long a request the client must retry is held before its answer: long enough that
/// clients retrying at once (librdkafka skips its join backoff on some codes) do not
/// spin, short enough that the group is back within a fraction of a second of the fence
/// lifting.
pub const HOLD: Duration = Duration::from_millis(250);

const FILTER: &str = "offset_reset";

/// The APIs a fenced group's members use; everything else passes.
const FENCED_APIS: [ApiKey; 7] = [
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::OffsetCommit,
    ApiKey::TxnOffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ConsumerGroupHeartbeat,
];

pub struct OffsetResets {
    counts: Counts,
    /// Resets this node has already logged a refusal for at info level.
    announced: Mutex<HashSet<String>>,
}

/// Counters resolved once, so refusing costs no label lookup.
struct Counts {
    refused: [IntCounter; FENCED_APIS.len()],
    stale_commits: IntCounter,
}

impl OffsetResets {
    pub fn new(metrics: &Metrics) -> OffsetResets {
        let refused = FENCED_APIS.map(|api| {
            metrics
                .offset_resets
                .refused_requests
                .with_label_values(&[api_label(api)])
        });
        OffsetResets {
            counts: Counts {
                refused,
                stale_commits: metrics.offset_resets.stale_commits.clone(),
            },
            announced: Mutex::default(),
        }
    }

    fn count(&self, api: ApiKey) {
        if let Some(i) = FENCED_APIS.iter().position(|a| *a == api) {
            self.counts.refused[i].inc();
        }
        if matches!(api, ApiKey::OffsetCommit | ApiKey::TxnOffsetCommit) {
            self.counts.stale_commits.inc();
        }
    }

    /// Logs a refusal: every one at debug, the first of each reset on this node at info.
    fn log(&self, request: &Request, env: &Env, reset: &OffsetReset, error: ResponseError) {
        let api = request.api_key();
        let peer = env.session.peer;
        tracing::debug!(
            %peer, ?api, group = %reset.group, reset = %reset.id, ?error,
            "refused: the group is under offset reset"
        );
        let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
        if announced.contains(&reset.id) {
            return;
        }
        announced.retain(|id| {
            env.control
                .offset_resets
                .get(id)
                .is_some_and(|r| r.phase == ResetPhase::Applying)
        });
        announced.insert(reset.id.clone());
        tracing::info!(
            %peer, ?api, group = %reset.group, reset = %reset.id,
            "offset reset applying: refusing the group's members on this node until it ends"
        );
    }
}

impl Filter for OffsetResets {
    fn name(&self) -> &'static str {
        FILTER
    }

    /// In the chain only while a reset is applying: pending ones do not touch the group.
    fn is_active(&self, control: &ControlState) -> bool {
        control
            .offset_resets
            .values()
            .any(|r| r.phase == ResetPhase::Applying)
    }

    fn wants_request(&self, api_key: ApiKey, version: i16) -> bool {
        FENCED_APIS.contains(&api_key)
            && decodable_versions(api_key).is_some_and(|v| v.contains(version))
    }

    fn on_request(&self, request: &mut Request, env: &Env) -> Verdict {
        let version = request.version();
        let body = match request.body() {
            Ok(body) => body,
            Err(e) => return Verdict::Close(format!("cannot read the group request: {e}")),
        };
        let fenced = |group: &str| applying(env.control, group);
        let Some((reset, decision)) = rules::decide(body, &fenced) else {
            return Verdict::Forward;
        };
        let (error, held) = match decision {
            Decision::Refuse(error) => (error, false),
            Decision::Hold(error) => (error, true),
        };
        let answer = match error_response(body, version, error, 0) {
            Ok(answer) => Box::new(answer),
            Err(e) => return Verdict::Close(format!("refused, and cannot build the answer: {e}")),
        };
        self.count(request.api_key());
        self.log(request, env, reset, error);
        if held {
            Verdict::AnswerAfter(HOLD, answer)
        } else {
            Verdict::Answer(answer)
        }
    }
}

/// The reset applying to `group` now, if any.
fn applying<'a>(control: &'a ControlState, group: &str) -> Option<&'a OffsetReset> {
    control
        .offset_resets
        .values()
        .find(|r| r.phase == ResetPhase::Applying && r.group == group)
}

/// The `api` label of `flotilla_offset_reset_refused_requests_total`.
fn api_label(api: ApiKey) -> &'static str {
    match api {
        ApiKey::JoinGroup => "join_group",
        ApiKey::SyncGroup => "sync_group",
        ApiKey::Heartbeat => "heartbeat",
        ApiKey::OffsetCommit => "offset_commit",
        ApiKey::TxnOffsetCommit => "txn_offset_commit",
        ApiKey::OffsetFetch => "offset_fetch",
        ApiKey::ConsumerGroupHeartbeat => "consumer_group_heartbeat",
        _ => "other",
    }
}
