//! Error answers for the APIs that read and write partitions: Produce, Fetch and the
//! partition-level look-ups around them.

use kafka_protocol::messages::{
    delete_records_response, describe_topic_partitions_response, fetch_response,
    list_offsets_response, metadata_response, offset_for_leader_epoch_response, produce_response,
    share_acknowledge_response, share_fetch_response, DeleteRecordsRequest, DeleteRecordsResponse,
    DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
    ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse,
};

use super::{each, each_listed, Answer, UNKNOWN};

/// Topic name and id are both copied: the version's encoding keeps the one it carries.
pub(super) fn produce(request: &ProduceRequest, answer: &Answer) -> ProduceResponse {
    let partition = |index| {
        produce_response::PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(answer.code)
            .with_base_offset(UNKNOWN)
            .with_log_append_time_ms(UNKNOWN)
            .with_log_start_offset(UNKNOWN)
    };
    let topics = each(&request.topic_data, |topic| {
        produce_response::TopicProduceResponse::default()
            .with_name(topic.name.clone())
            .with_topic_id(topic.topic_id)
            .with_partition_responses(each(&topic.partition_data, |p| partition(p.index)))
    });
    ProduceResponse::default()
        .with_responses(topics)
        .with_throttle_time_ms(answer.throttle_time_ms)
}

/// Like Kafka, the answer keeps the request's fetch session id; the client starts a new
/// session after any top-level error. Kafka leaves the partitions out from v13, where
/// clients read the top-level code first; they are answered here in every version.
/// Record sets are empty rather than null, which every client reads as "no records".
pub(super) fn fetch(request: &FetchRequest, answer: &Answer) -> FetchResponse {
    let partition = |index| {
        fetch_response::PartitionData::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
            .with_high_watermark(UNKNOWN)
    };
    let topics = each(&request.topics, |topic| {
        fetch_response::FetchableTopicResponse::default()
            .with_topic(topic.topic.clone())
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition)))
    });
    // Sessions exist from v7; an older version must not carry one.
    let session_id = if answer.version >= 7 {
        request.session_id
    } else {
        0
    };
    FetchResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_session_id(session_id)
        .with_responses(topics)
}

/// Timestamp, offset and leader epoch default to -1, Kafka's "unknown".
pub(super) fn list_offsets(request: &ListOffsetsRequest, answer: &Answer) -> ListOffsetsResponse {
    let partition = |index| {
        list_offsets_response::ListOffsetsPartitionResponse::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        list_offsets_response::ListOffsetsTopicResponse::default()
            .with_name(topic.name.clone())
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    ListOffsetsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}

/// A topic asked for by id gets an empty name, as Kafka never answers a null one; no
/// brokers are listed. A request for all topics (a null list, or an empty one in v0)
/// names none, so before v13, which added the top-level code, its answer carries no
/// error at all, as Kafka's does: a caller that must refuse one should rather close the
/// connection.
pub(super) fn metadata(request: &MetadataRequest, answer: &Answer) -> MetadataResponse {
    let topics = each_listed(&request.topics, |topic| {
        metadata_response::MetadataResponseTopic::default()
            .with_name(Some(topic.name.clone().unwrap_or_default()))
            .with_topic_id(topic.topic_id)
            .with_error_code(answer.code)
            .with_is_internal(false)
    });
    MetadataResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
        .with_error_code(answer.code)
}

pub(super) fn delete_records(
    request: &DeleteRecordsRequest,
    answer: &Answer,
) -> DeleteRecordsResponse {
    let partition = |index| {
        delete_records_response::DeleteRecordsPartitionResult::default()
            .with_partition_index(index)
            .with_low_watermark(UNKNOWN)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        delete_records_response::DeleteRecordsTopicResult::default()
            .with_name(topic.name.clone())
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    DeleteRecordsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}

/// Leader epoch and end offset default to -1, Kafka's "undefined".
pub(super) fn offset_for_leader_epoch(
    request: &OffsetForLeaderEpochRequest,
    answer: &Answer,
) -> OffsetForLeaderEpochResponse {
    let partition = |index| {
        offset_for_leader_epoch_response::EpochEndOffset::default()
            .with_partition(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default()
            .with_topic(topic.topic.clone())
            .with_partitions(each(&topic.partitions, |p| partition(p.partition)))
    });
    OffsetForLeaderEpochResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}

pub(super) fn describe_topic_partitions(
    request: &DescribeTopicPartitionsRequest,
    answer: &Answer,
) -> DescribeTopicPartitionsResponse {
    let topics = each(&request.topics, |topic| {
        describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(topic.name.clone()))
            .with_error_code(answer.code)
            .with_is_internal(false)
    });
    DescribeTopicPartitionsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}

/// Kafka sets only the top-level code; the fetched partitions are answered too.
pub(super) fn share_fetch(request: &ShareFetchRequest, answer: &Answer) -> ShareFetchResponse {
    let partition = |index| {
        share_fetch_response::PartitionData::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        share_fetch_response::ShareFetchableTopicResponse::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    ShareFetchResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_responses(topics)
}

/// Kafka sets only the top-level code; the acknowledged partitions are answered too.
pub(super) fn share_acknowledge(
    request: &ShareAcknowledgeRequest,
    answer: &Answer,
) -> ShareAcknowledgeResponse {
    let partition = |index| {
        share_acknowledge_response::PartitionData::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        share_acknowledge_response::ShareAcknowledgeTopicResponse::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    ShareAcknowledgeResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_responses(topics)
}
