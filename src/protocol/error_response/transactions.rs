//! Error answers for idempotent and transactional producers and for the transaction
//! coordinator's markers.

use kafka_protocol::messages::{
    add_partitions_to_txn_request, add_partitions_to_txn_response, describe_producers_response,
    describe_transactions_response, txn_offset_commit_response, write_txn_markers_response,
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeProducersRequest, DescribeProducersResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};

use super::{each, Answer};

/// Kafka's "no producer": id and epoch -1. Kafka leaves the throttle time at 0 here; the
/// caller's is kept, as for every other API.
pub(super) fn init_producer_id(
    _request: &InitProducerIdRequest,
    answer: &Answer,
) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// Up to v3 one transaction, answered per partition. From v4 (broker to coordinator) a
/// batch of transactions: Kafka sets only the top-level code, each transaction's
/// partitions are answered too.
pub(super) fn add_partitions_to_txn(
    request: &AddPartitionsToTxnRequest,
    answer: &Answer,
) -> AddPartitionsToTxnResponse {
    let response =
        AddPartitionsToTxnResponse::default().with_throttle_time_ms(answer.throttle_time_ms);
    if answer.version < 4 {
        let topics = txn_topic_results(&request.v3_and_below_topics, answer);
        return response.with_results_by_topic_v3_and_below(topics);
    }
    let transactions = each(&request.transactions, |transaction| {
        add_partitions_to_txn_response::AddPartitionsToTxnResult::default()
            .with_transactional_id(transaction.transactional_id.clone())
            .with_topic_results(txn_topic_results(&transaction.topics, answer))
    });
    response
        .with_error_code(answer.code)
        .with_results_by_transaction(transactions)
}

fn txn_topic_results(
    topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic],
    answer: &Answer,
) -> Vec<add_partitions_to_txn_response::AddPartitionsToTxnTopicResult> {
    let partition = |index| {
        add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(index)
            .with_partition_error_code(answer.code)
    };
    each(topics, |topic| {
        add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default()
            .with_name(topic.name.clone())
            .with_results_by_partition(each(&topic.partitions, |&index| partition(index)))
    })
}

pub(super) fn add_offsets_to_txn(
    _request: &AddOffsetsToTxnRequest,
    answer: &Answer,
) -> AddOffsetsToTxnResponse {
    AddOffsetsToTxnResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

/// From v5 the answer carries the producer's next id and epoch: -1, none.
pub(super) fn end_txn(_request: &EndTxnRequest, answer: &Answer) -> EndTxnResponse {
    EndTxnResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

/// One result per marker, keyed by its producer id.
pub(super) fn write_txn_markers(
    request: &WriteTxnMarkersRequest,
    answer: &Answer,
) -> WriteTxnMarkersResponse {
    let partition = |index| {
        write_txn_markers_response::WritableTxnMarkerPartitionResult::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let markers = each(&request.markers, |marker| {
        let topics = each(&marker.topics, |topic| {
            write_txn_markers_response::WritableTxnMarkerTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(each(&topic.partition_indexes, |&index| partition(index)))
        });
        write_txn_markers_response::WritableTxnMarkerResult::default()
            .with_producer_id(marker.producer_id)
            .with_topics(topics)
    });
    WriteTxnMarkersResponse::default().with_markers(markers)
}

pub(super) fn txn_offset_commit(
    request: &TxnOffsetCommitRequest,
    answer: &Answer,
) -> TxnOffsetCommitResponse {
    let partition = |index| {
        txn_offset_commit_response::TxnOffsetCommitResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        txn_offset_commit_response::TxnOffsetCommitResponseTopic::default()
            .with_name(topic.name.clone())
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    TxnOffsetCommitResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}

pub(super) fn describe_transactions(
    request: &DescribeTransactionsRequest,
    answer: &Answer,
) -> DescribeTransactionsResponse {
    let states = each(&request.transactional_ids, |transactional_id| {
        describe_transactions_response::TransactionState::default()
            .with_transactional_id(transactional_id.clone())
            .with_error_code(answer.code)
    });
    DescribeTransactionsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_transaction_states(states)
}

pub(super) fn list_transactions(
    _request: &ListTransactionsRequest,
    answer: &Answer,
) -> ListTransactionsResponse {
    ListTransactionsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn describe_producers(
    request: &DescribeProducersRequest,
    answer: &Answer,
) -> DescribeProducersResponse {
    let partition = |index| {
        describe_producers_response::PartitionResponse::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        describe_producers_response::TopicResponse::default()
            .with_name(topic.name.clone())
            .with_partitions(each(&topic.partition_indexes, |&index| partition(index)))
    });
    DescribeProducersResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}
