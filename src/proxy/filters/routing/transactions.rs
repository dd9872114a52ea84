//! A transaction stays within its transactional id's cluster: that cluster's coordinator
//! commits or aborts it, and no broker of another cluster knows of it. A transactional
//! producer that names a topic (or, for its consumed offsets, a group) routed to another
//! cluster gets INVALID_TXN_STATE for it, with a message that says why where the version
//! has room for one, instead of a write that the transaction could not cover.
//!
//! The partitions of a transaction reach its coordinator in AddPartitionsToTxn (versions
//! up to 3, the clients') or, with transaction version 2 (KIP-890), in the transactional
//! Produce itself; both are checked.

use flotilla_raft::routes::RouteResource;
use flotilla_raft::ControlState;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::proxy::filter::Verdict;
use crate::proxy::filters::partial::PartitionAnswer;

/// The client-facing versions of AddPartitionsToTxn; later ones are between brokers.
const CLIENT_VERSIONS: i16 = 3;

/// Why a transaction may not name `topic`, if it may not.
pub(super) fn outside(
    control: &ControlState,
    transactional_id: &str,
    topic: &str,
) -> Option<String> {
    let own = control.cluster_for(RouteResource::TransactionalId, transactional_id);
    let topic_cluster = control.cluster_for(RouteResource::Topic, topic);
    (own != topic_cluster).then(|| {
        format!(
            "topic {topic} is served by backend cluster {topic_cluster} and transactional id \
             {transactional_id} by {own}: a transaction through flotilla stays within one cluster"
        )
    })
}

/// The answer for a transactional Produce's topic that lies outside its transaction.
pub(super) fn produce_answer(reason: String) -> PartitionAnswer {
    PartitionAnswer {
        error: ResponseError::InvalidTxnState.code(),
        message: Some(StrBytes::from_string(reason)),
    }
}

pub(super) fn add_partitions(
    control: &ControlState,
    body: &AddPartitionsToTxnRequest,
    version: i16,
) -> Verdict {
    if version > CLIENT_VERSIONS {
        return Verdict::Forward;
    }
    let txn = &body.v3_and_below_transactional_id.0;
    let topics = &body.v3_and_below_topics;
    let reasons: Vec<Option<String>> = topics
        .iter()
        .map(|t| outside(control, txn, &t.name.0))
        .collect();
    let refused: Vec<&str> = reasons.iter().flatten().map(String::as_str).collect();
    if refused.is_empty() {
        return Verdict::Forward;
    }
    tracing::warn!("AddPartitionsToTxn refused: {}", refused.join("; "));
    // As a coordinator does when some partitions fail: the others were not attempted.
    let results = topics
        .iter()
        .zip(&reasons)
        .map(|(t, reason)| {
            let error = match reason {
                Some(_) => ResponseError::InvalidTxnState,
                None => ResponseError::OperationNotAttempted,
            };
            let partitions = t.partitions.iter().map(|p| {
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(*p)
                    .with_partition_error_code(error.code())
            });
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions.collect())
        })
        .collect();
    let answer = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    Verdict::Answer(Box::new(ResponseKind::AddPartitionsToTxn(answer)))
}

pub(super) fn add_offsets(control: &ControlState, body: &AddOffsetsToTxnRequest) -> Verdict {
    let txn = &body.transactional_id.0;
    let own = control.cluster_for(RouteResource::TransactionalId, txn);
    let group_cluster = control.cluster_for(RouteResource::Group, &body.group_id.0);
    if own == group_cluster {
        return Verdict::Forward;
    }
    tracing::warn!(
        "AddOffsetsToTxn refused: group {} is served by backend cluster {group_cluster} and \
         transactional id {txn} by {own}",
        body.group_id.0
    );
    let answer =
        AddOffsetsToTxnResponse::default().with_error_code(ResponseError::InvalidTxnState.code());
    Verdict::Answer(Box::new(ResponseKind::AddOffsetsToTxn(answer)))
}
