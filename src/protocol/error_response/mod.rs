//! Error answers the proxy gives in a broker's place.
//!
//! Circuit breakers, ACLs, quotas and routing sometimes refuse a request instead of
//! forwarding it. A client only copes with that if the refusal looks exactly like a
//! broker's: the response of the request's API and version, answering every topic,
//! partition, group or other resource the request named with the error, the top-level
//! error code where the version has one, and the throttle time where it has one. Kafka
//! builds these in each request class's `getErrorResponse`; this module is the one place
//! the proxy does the same, so no filter ever shapes a response by hand.
//!
//! Two rules decide every shape. Field values follow Kafka's own error answers (offsets
//! and epochs -1, empty lists, no coordinator node). And every resource the request
//! names is answered with the error wherever the response has an entry for it, even
//! where Kafka's answer leaves the list empty and relies on the top-level code alone:
//! callers and tests then rely on one contract, and clients of those versions read the
//! top-level code first anyway. The controller-quorum and broker-to-controller APIs are
//! the exception: their entries describe leader and replica state the proxy cannot
//! know, so they carry only the top-level error, as in Kafka.
//!
//! Error messages are left null throughout: clients then show the code's standard text.

mod admin;
mod controller;
mod data;
mod groups;
mod session;
mod transactions;

#[cfg(test)]
mod tests;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;

/// Why an error answer cannot be built or encoded.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("error code 0 means success; an error answer needs a real error")]
    NotAnError,
    #[error("{api_key:?} has no version {version}")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    #[error("this kafka-protocol request kind is unknown to the error answer builder")]
    UnknownApi,
    #[error("a {body:?} response body cannot be sent as a {api_key:?} response")]
    BodyMismatch {
        api_key: ApiKey,
        body: Option<ApiKey>,
    },
    #[error("cannot encode a {api_key:?} v{version} response: {reason}")]
    Encode {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// What every per-API builder needs to know about the answer it shapes.
struct Answer {
    code: i16,
    throttle_time_ms: i32,
    version: i16,
}

/// Builds the response a broker would send if it failed `request` (of API version
/// `version`) with `error`, telling the client to wait `throttle_time_ms` before retrying.
///
/// An acks=0 Produce gets no response at all: the client is not reading one, and a
/// response it did not expect would be taken as the answer to its next request. The
/// caller must not send what this builds for such a request.
///
/// The error reaches the client only where the version has a place for it. A Metadata
/// request for all topics before v13 names no topic and its response has no top-level
/// code, so its answer reads as a cluster without topics, exactly as Kafka's would; a
/// caller that must refuse one should close the connection instead.
///
/// An ApiVersions request newer than kafka-protocol knows cannot be decoded; Kafka
/// answers it with UNSUPPORTED_VERSION at v0, which this builds from a default request.
pub fn error_response(
    request: &RequestKind,
    version: i16,
    error: ResponseError,
    throttle_time_ms: i32,
) -> Result<ResponseKind, AnswerError> {
    let code = error.code();
    if code == 0 {
        return Err(AnswerError::NotAnError);
    }
    let api_key = request_api_key(request).ok_or(AnswerError::UnknownApi)?;
    check_version(api_key, version)?;
    let answer = Answer {
        code,
        throttle_time_ms,
        version,
    };
    build(request, &answer).ok_or(AnswerError::UnknownApi)
}

/// Encodes a response as the proxy writes it to a client: response header and body,
/// without the 4-byte size prefix (see [`super::frame::write_frame`]).
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<Bytes, AnswerError> {
    let body_api_key = response_api_key(body);
    if body_api_key != Some(api_key) {
        return Err(AnswerError::BodyMismatch {
            api_key,
            body: body_api_key,
        });
    }
    check_version(api_key, version)?;
    let encode_error = |error: anyhow::Error| AnswerError::Encode {
        api_key,
        version,
        reason: format!("{error:#}"),
    };
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, response_header_version(api_key, version))
        .map_err(encode_error)?;
    body.encode(&mut buf, version).map_err(encode_error)?;
    Ok(buf.freeze())
}

/// ApiVersions answers always use header v0, whatever the version: a client that sent a
/// version the broker does not know must still be able to read the answer (KIP-511).
fn response_header_version(api_key: ApiKey, version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    }
}

fn check_version(api_key: ApiKey, version: i16) -> Result<(), AnswerError> {
    let range = api_key.valid_versions();
    if (range.min..=range.max).contains(&version) {
        Ok(())
    } else {
        Err(AnswerError::UnsupportedVersion { api_key, version })
    }
}

/// One builder per API. The request and response enums name their variants after the
/// API keys, so one list gives the API key of a request or response body and the
/// builder that answers it.
macro_rules! per_api {
    ($($api:ident => $builder:path,)*) => {
        fn request_api_key(request: &RequestKind) -> Option<ApiKey> {
            match request {
                $(RequestKind::$api(_) => Some(ApiKey::$api),)*
                _ => None,
            }
        }

        fn response_api_key(body: &ResponseKind) -> Option<ApiKey> {
            match body {
                $(ResponseKind::$api(_) => Some(ApiKey::$api),)*
                _ => None,
            }
        }

        fn build(request: &RequestKind, answer: &Answer) -> Option<ResponseKind> {
            match request {
                $(RequestKind::$api(request) => Some($builder(request, answer).into()),)*
                _ => None,
            }
        }
    };
}

per_api! {
    Produce => data::produce,
    Fetch => data::fetch,
    ListOffsets => data::list_offsets,
    Metadata => data::metadata,
    OffsetCommit => groups::offset_commit,
    OffsetFetch => groups::offset_fetch,
    FindCoordinator => groups::find_coordinator,
    JoinGroup => groups::join_group,
    Heartbeat => groups::heartbeat,
    LeaveGroup => groups::leave_group,
    SyncGroup => groups::sync_group,
    DescribeGroups => groups::describe_groups,
    ListGroups => groups::list_groups,
    SaslHandshake => session::sasl_handshake,
    ApiVersions => session::api_versions,
    CreateTopics => admin::create_topics,
    DeleteTopics => admin::delete_topics,
    DeleteRecords => data::delete_records,
    InitProducerId => transactions::init_producer_id,
    OffsetForLeaderEpoch => data::offset_for_leader_epoch,
    AddPartitionsToTxn => transactions::add_partitions_to_txn,
    AddOffsetsToTxn => transactions::add_offsets_to_txn,
    EndTxn => transactions::end_txn,
    WriteTxnMarkers => transactions::write_txn_markers,
    TxnOffsetCommit => transactions::txn_offset_commit,
    DescribeAcls => admin::describe_acls,
    CreateAcls => admin::create_acls,
    DeleteAcls => admin::delete_acls,
    DescribeConfigs => admin::describe_configs,
    AlterConfigs => admin::alter_configs,
    AlterReplicaLogDirs => admin::alter_replica_log_dirs,
    DescribeLogDirs => admin::describe_log_dirs,
    SaslAuthenticate => session::sasl_authenticate,
    CreatePartitions => admin::create_partitions,
    CreateDelegationToken => admin::create_delegation_token,
    RenewDelegationToken => admin::renew_delegation_token,
    ExpireDelegationToken => admin::expire_delegation_token,
    DescribeDelegationToken => admin::describe_delegation_token,
    DeleteGroups => groups::delete_groups,
    ElectLeaders => admin::elect_leaders,
    IncrementalAlterConfigs => admin::incremental_alter_configs,
    AlterPartitionReassignments => admin::alter_partition_reassignments,
    ListPartitionReassignments => admin::list_partition_reassignments,
    OffsetDelete => groups::offset_delete,
    DescribeClientQuotas => admin::describe_client_quotas,
    AlterClientQuotas => admin::alter_client_quotas,
    DescribeUserScramCredentials => admin::describe_user_scram_credentials,
    AlterUserScramCredentials => admin::alter_user_scram_credentials,
    Vote => controller::vote,
    BeginQuorumEpoch => controller::begin_quorum_epoch,
    EndQuorumEpoch => controller::end_quorum_epoch,
    DescribeQuorum => controller::describe_quorum,
    AlterPartition => controller::alter_partition,
    UpdateFeatures => admin::update_features,
    Envelope => controller::envelope,
    FetchSnapshot => controller::fetch_snapshot,
    DescribeCluster => admin::describe_cluster,
    DescribeProducers => transactions::describe_producers,
    BrokerRegistration => controller::broker_registration,
    BrokerHeartbeat => controller::broker_heartbeat,
    UnregisterBroker => controller::unregister_broker,
    DescribeTransactions => transactions::describe_transactions,
    ListTransactions => transactions::list_transactions,
    AllocateProducerIds => controller::allocate_producer_ids,
    ConsumerGroupHeartbeat => groups::consumer_group_heartbeat,
    ConsumerGroupDescribe => groups::consumer_group_describe,
    ControllerRegistration => controller::controller_registration,
    GetTelemetrySubscriptions => admin::get_telemetry_subscriptions,
    PushTelemetry => admin::push_telemetry,
    AssignReplicasToDirs => controller::assign_replicas_to_dirs,
    ListConfigResources => admin::list_config_resources,
    DescribeTopicPartitions => data::describe_topic_partitions,
    ShareGroupHeartbeat => groups::share_group_heartbeat,
    ShareGroupDescribe => groups::share_group_describe,
    ShareFetch => data::share_fetch,
    ShareAcknowledge => data::share_acknowledge,
    AddRaftVoter => controller::add_raft_voter,
    RemoveRaftVoter => controller::remove_raft_voter,
    UpdateRaftVoter => controller::update_raft_voter,
    InitializeShareGroupState => groups::initialize_share_group_state,
    ReadShareGroupState => groups::read_share_group_state,
    WriteShareGroupState => groups::write_share_group_state,
    DeleteShareGroupState => groups::delete_share_group_state,
    ReadShareGroupStateSummary => groups::read_share_group_state_summary,
    DescribeShareGroupOffsets => groups::describe_share_group_offsets,
    AlterShareGroupOffsets => groups::alter_share_group_offsets,
    DeleteShareGroupOffsets => groups::delete_share_group_offsets,
}

/// Answers each requested item: the one shape every per-resource list takes.
fn each<T, R>(requested: &[T], answer_one: impl FnMut(&T) -> R) -> Vec<R> {
    requested.iter().map(answer_one).collect()
}

/// A null list asks for every resource of its kind, so it names none to answer.
fn each_listed<T, R>(requested: &Option<Vec<T>>, answer_one: impl FnMut(&T) -> R) -> Vec<R> {
    each(requested.as_deref().unwrap_or_default(), answer_one)
}

/// Kafka's "no such offset" and "no such epoch" in error answers.
const UNKNOWN: i64 = -1;
const UNKNOWN_EPOCH: i32 = -1;
