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
//!   timeout). An `assign()` consumer has no membership to lose: it keeps its positions.
//!   So for [`rules::GUARD_MS`] after a reset is done, a simple commit of one of its
//!   partitions from a connection opened before it was done is refused with
//!   UNKNOWN_MEMBER_ID (the application's commit fails; one warning per connection
//!   names the reset): such a consumer read its positions before the reset and would put
//!   them back. A consumer restarted since reads the targets and commits freely. An OffsetFetch naming several groups (v8+) is held whole
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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_raft::governance::unix_millis;
use flotilla_raft::offset_resets::{OffsetReset, ResetPhase};
use flotilla_raft::ControlState;
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::ResponseError;
use prometheus::IntCounter;

use self::rules::Decision;
use crate::cluster::offset_resets::evictions::{Eviction, Evictions};
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
    /// Where refused members go to be removed from their group.
    evictions: Arc<Evictions>,
    /// Resets this node has already logged a refusal for at info level.
    announced: Mutex<HashSet<String>>,
    /// Connections already warned that their commits undo a reset, by reset. Bounded by
    /// the connections of `assign()` consumers that outlived a reset in its guard.
    warned_connections: Mutex<HashSet<(String, std::net::SocketAddr)>>,
}

/// Counters resolved once, so refusing costs no label lookup.
struct Counts {
    refused: [IntCounter; FENCED_APIS.len()],
    stale_commits: IntCounter,
}

impl OffsetResets {
    pub fn new(metrics: &Metrics, evictions: &Arc<Evictions>) -> OffsetResets {
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
            evictions: evictions.clone(),
            announced: Mutex::default(),
            warned_connections: Mutex::default(),
        }
    }

    /// Hands the member a refusal fenced to the node's evictor.
    fn evict(&self, body: &RequestKind, reset: &OffsetReset) {
        let Some((member_id, instance_id, protocol)) = rules::fenced_member(body) else {
            return;
        };
        self.evictions.request(Eviction {
            reset_id: reset.id.clone(),
            group: reset.group.clone(),
            member_id: member_id.to_string(),
            group_instance_id: instance_id.map(str::to_string),
            protocol,
        });
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

    /// In the chain while a reset is applying (pending ones do not touch the group), and
    /// while a finished one guards against `assign()` consumers older than it.
    fn is_active(&self, control: &ControlState) -> bool {
        let now_ms = unix_millis();
        control
            .offset_resets
            .values()
            .any(|r| r.phase == ResetPhase::Applying || rules::guarding(r, now_ms))
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
            return self.guard(request, env);
        };
        let (error, held) = match decision {
            Decision::Refuse(error) => (error, false),
            Decision::Hold(error) => (error, true),
        };
        let answer = match error_response(body, version, error, 0) {
            Ok(answer) => Box::new(answer),
            Err(e) => return Verdict::Close(format!("refused, and cannot build the answer: {e}")),
        };
        if !held {
            self.evict(body, reset);
        }
        self.count(request.api_key());
        self.log(request, env, reset, error);
        if held {
            Verdict::AnswerAfter(HOLD, answer)
        } else {
            Verdict::Answer(answer)
        }
    }
}

impl OffsetResets {
    /// Refuses a simple commit that would undo a finished reset: it comes from a
    /// connection opened before the reset was done, so from a consumer that never re-read
    /// its positions (see the module doc).
    fn guard(&self, request: &mut Request, env: &Env) -> Verdict {
        let version = request.version();
        let Ok(body) = request.body() else {
            return Verdict::Forward;
        };
        let opened_at_ms = env.session.opened_at_ms;
        let Some(reset) =
            rules::undone_by_simple_commit(body, env.control, opened_at_ms, unix_millis())
        else {
            return Verdict::Forward;
        };
        let error = ResponseError::UnknownMemberId;
        let answer = match error_response(body, version, error, 0) {
            Ok(answer) => Box::new(answer),
            Err(e) => return Verdict::Close(format!("refused, and cannot build the answer: {e}")),
        };
        self.count(request.api_key());
        let first = self
            .warned_connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((reset.id.clone(), env.session.peer));
        if !first {
            tracing::debug!(peer = %env.session.peer, reset = %reset.id, "refused a pre-reset simple commit");
            return Verdict::Answer(answer);
        }
        tracing::warn!(
            peer = %env.session.peer,
            client_id = ?env.session.client_id,
            group = %reset.group,
            reset = %reset.id,
            "refused a commit from a consumer connected before the offset reset was done: \
             it commits positions from before the reset (an assign() consumer); restart it \
             to read the reset's targets"
        );
        Verdict::Answer(answer)
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
