//! Error answers for group coordination: classic consumer groups, the KIP-848 and share
//! group protocols, committed offsets, and the share-group state the coordinator keeps.

use kafka_protocol::messages::{
    alter_share_group_offsets_response, consumer_group_describe_response, delete_groups_response,
    delete_share_group_offsets_response, delete_share_group_state_response,
    describe_groups_response, describe_share_group_offsets_response, find_coordinator_response,
    initialize_share_group_state_response, leave_group_request, leave_group_response,
    offset_commit_response, offset_delete_response, offset_fetch_request, offset_fetch_response,
    read_share_group_state_response, read_share_group_state_summary_response,
    share_group_describe_response, write_share_group_state_response, AlterShareGroupOffsetsRequest,
    AlterShareGroupOffsetsResponse, BrokerId, ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    DeleteGroupsRequest, DeleteGroupsResponse, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsResponse, DeleteShareGroupStateRequest, DeleteShareGroupStateResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, DescribeShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    HeartbeatRequest, HeartbeatResponse, InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, ReadShareGroupStateRequest, ReadShareGroupStateResponse,
    ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse,
    ShareGroupDescribeRequest, ShareGroupDescribeResponse, ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse, SyncGroupRequest, SyncGroupResponse, WriteShareGroupStateRequest,
    WriteShareGroupStateResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{each, each_listed, Answer, UNKNOWN, UNKNOWN_EPOCH};

/// Kafka's "no coordinator": node -1 at an empty host and port -1.
const NO_NODE: BrokerId = BrokerId(-1);
const NO_PORT: i32 = -1;

/// Topic name and id are both copied: v10 keys topics by id, earlier versions by name.
pub(super) fn offset_commit(
    request: &OffsetCommitRequest,
    answer: &Answer,
) -> OffsetCommitResponse {
    let partition = |index| {
        offset_commit_response::OffsetCommitResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        offset_commit_response::OffsetCommitResponseTopic::default()
            .with_name(topic.name.clone())
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    OffsetCommitResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}

/// Before v8 one group with a top-level code (from v2); from v8 one entry per group. Kafka
/// answers the partitions only before v2 and relies on the group's code after; they are
/// answered in every version here. A null topic list (all of the group's offsets) gets
/// no partitions. Offsets and epochs are -1 and metadata empty, as from Kafka.
pub(super) fn offset_fetch(request: &OffsetFetchRequest, answer: &Answer) -> OffsetFetchResponse {
    let response = OffsetFetchResponse::default().with_throttle_time_ms(answer.throttle_time_ms);
    if answer.version >= 8 {
        return response.with_groups(each(&request.groups, |group| {
            offset_fetch_group(group, answer)
        }));
    }
    let partition = |index| {
        offset_fetch_response::OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_committed_offset(UNKNOWN)
            .with_metadata(Some(StrBytes::default()))
            .with_error_code(answer.code)
    };
    let topics = each_listed(&request.topics, |topic| {
        offset_fetch_response::OffsetFetchResponseTopic::default()
            .with_name(topic.name.clone())
            .with_partitions(each(&topic.partition_indexes, |&index| partition(index)))
    });
    response.with_topics(topics).with_error_code(answer.code)
}

fn offset_fetch_group(
    group: &offset_fetch_request::OffsetFetchRequestGroup,
    answer: &Answer,
) -> offset_fetch_response::OffsetFetchResponseGroup {
    let partition = |index| {
        offset_fetch_response::OffsetFetchResponsePartitions::default()
            .with_partition_index(index)
            .with_committed_offset(UNKNOWN)
            .with_metadata(Some(StrBytes::default()))
            .with_error_code(answer.code)
    };
    let topics = each_listed(&group.topics, |topic| {
        offset_fetch_response::OffsetFetchResponseTopics::default()
            .with_name(topic.name.clone())
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partition_indexes, |&index| partition(index)))
    });
    offset_fetch_response::OffsetFetchResponseGroup::default()
        .with_group_id(group.group_id.clone())
        .with_error_code(answer.code)
        .with_topics(topics)
}

/// Before v4 the single key's answer is the top level; from v4 one entry per key.
pub(super) fn find_coordinator(
    request: &FindCoordinatorRequest,
    answer: &Answer,
) -> FindCoordinatorResponse {
    let response =
        FindCoordinatorResponse::default().with_throttle_time_ms(answer.throttle_time_ms);
    if answer.version < 4 {
        return response
            .with_error_code(answer.code)
            .with_node_id(NO_NODE)
            .with_port(NO_PORT);
    }
    let coordinators = each(&request.coordinator_keys, |key| {
        find_coordinator_response::Coordinator::default()
            .with_key(key.clone())
            .with_node_id(NO_NODE)
            .with_port(NO_PORT)
            .with_error_code(answer.code)
    });
    response.with_coordinators(coordinators)
}

/// Generation -1, no leader, no members. The protocol name is empty before v7 and null
/// from v7, where it became nullable.
pub(super) fn join_group(_request: &JoinGroupRequest, answer: &Answer) -> JoinGroupResponse {
    let protocol_name = (answer.version < 7).then(StrBytes::default);
    JoinGroupResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_generation_id(UNKNOWN_EPOCH)
        .with_protocol_name(protocol_name)
}

pub(super) fn heartbeat(_request: &HeartbeatRequest, answer: &Answer) -> HeartbeatResponse {
    HeartbeatResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

/// From v3 a request can remove several members; Kafka sets only the top-level code, the
/// members are answered too. Before v3 the one member leaving has no entry of its own.
pub(super) fn leave_group(request: &LeaveGroupRequest, answer: &Answer) -> LeaveGroupResponse {
    let member = |member: &leave_group_request::MemberIdentity| {
        leave_group_response::MemberResponse::default()
            .with_member_id(member.member_id.clone())
            .with_group_instance_id(member.group_instance_id.clone())
            .with_error_code(answer.code)
    };
    let members = if answer.version >= 3 {
        each(&request.members, member)
    } else {
        Vec::new()
    };
    LeaveGroupResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_members(members)
}

/// An empty assignment, as from Kafka.
pub(super) fn sync_group(_request: &SyncGroupRequest, answer: &Answer) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

/// Unknown state, protocol and members; authorized operations omitted.
pub(super) fn describe_groups(
    request: &DescribeGroupsRequest,
    answer: &Answer,
) -> DescribeGroupsResponse {
    let groups = each(&request.groups, |group_id| {
        describe_groups_response::DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_error_code(answer.code)
    });
    DescribeGroupsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_groups(groups)
}

pub(super) fn list_groups(_request: &ListGroupsRequest, answer: &Answer) -> ListGroupsResponse {
    ListGroupsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn delete_groups(
    request: &DeleteGroupsRequest,
    answer: &Answer,
) -> DeleteGroupsResponse {
    let results = each(&request.groups_names, |group_id| {
        delete_groups_response::DeletableGroupResult::default()
            .with_group_id(group_id.clone())
            .with_error_code(answer.code)
    });
    DeleteGroupsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_results(results)
}

/// Kafka sets only the top-level code; the partitions are answered too.
pub(super) fn offset_delete(
    request: &OffsetDeleteRequest,
    answer: &Answer,
) -> OffsetDeleteResponse {
    let partition = |index| {
        offset_delete_response::OffsetDeleteResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        offset_delete_response::OffsetDeleteResponseTopic::default()
            .with_name(topic.name.clone())
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    OffsetDeleteResponse::default()
        .with_error_code(answer.code)
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}

/// No member id, epoch or assignment, as from Kafka.
pub(super) fn consumer_group_heartbeat(
    _request: &ConsumerGroupHeartbeatRequest,
    answer: &Answer,
) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn consumer_group_describe(
    request: &ConsumerGroupDescribeRequest,
    answer: &Answer,
) -> ConsumerGroupDescribeResponse {
    let groups = each(&request.group_ids, |group_id| {
        consumer_group_describe_response::DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_error_code(answer.code)
    });
    ConsumerGroupDescribeResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_groups(groups)
}

pub(super) fn share_group_heartbeat(
    _request: &ShareGroupHeartbeatRequest,
    answer: &Answer,
) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn share_group_describe(
    request: &ShareGroupDescribeRequest,
    answer: &Answer,
) -> ShareGroupDescribeResponse {
    let groups = each(&request.group_ids, |group_id| {
        share_group_describe_response::DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_error_code(answer.code)
    });
    ShareGroupDescribeResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_groups(groups)
}

pub(super) fn initialize_share_group_state(
    request: &InitializeShareGroupStateRequest,
    answer: &Answer,
) -> InitializeShareGroupStateResponse {
    let partition = |index| {
        initialize_share_group_state_response::PartitionResult::default()
            .with_partition(index)
            .with_error_code(answer.code)
    };
    let results = each(&request.topics, |topic| {
        initialize_share_group_state_response::InitializeStateResult::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition)))
    });
    InitializeShareGroupStateResponse::default().with_results(results)
}

pub(super) fn read_share_group_state(
    request: &ReadShareGroupStateRequest,
    answer: &Answer,
) -> ReadShareGroupStateResponse {
    let partition = |index| {
        read_share_group_state_response::PartitionResult::default()
            .with_partition(index)
            .with_error_code(answer.code)
    };
    let results = each(&request.topics, |topic| {
        read_share_group_state_response::ReadStateResult::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition)))
    });
    ReadShareGroupStateResponse::default().with_results(results)
}

pub(super) fn write_share_group_state(
    request: &WriteShareGroupStateRequest,
    answer: &Answer,
) -> WriteShareGroupStateResponse {
    let partition = |index| {
        write_share_group_state_response::PartitionResult::default()
            .with_partition(index)
            .with_error_code(answer.code)
    };
    let results = each(&request.topics, |topic| {
        write_share_group_state_response::WriteStateResult::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition)))
    });
    WriteShareGroupStateResponse::default().with_results(results)
}

pub(super) fn delete_share_group_state(
    request: &DeleteShareGroupStateRequest,
    answer: &Answer,
) -> DeleteShareGroupStateResponse {
    let partition = |index| {
        delete_share_group_state_response::PartitionResult::default()
            .with_partition(index)
            .with_error_code(answer.code)
    };
    let results = each(&request.topics, |topic| {
        delete_share_group_state_response::DeleteStateResult::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition)))
    });
    DeleteShareGroupStateResponse::default().with_results(results)
}

pub(super) fn read_share_group_state_summary(
    request: &ReadShareGroupStateSummaryRequest,
    answer: &Answer,
) -> ReadShareGroupStateSummaryResponse {
    let partition = |index| {
        read_share_group_state_summary_response::PartitionResult::default()
            .with_partition(index)
            .with_error_code(answer.code)
    };
    let results = each(&request.topics, |topic| {
        read_share_group_state_summary_response::ReadStateSummaryResult::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(each(&topic.partitions, |p| partition(p.partition)))
    });
    ReadShareGroupStateSummaryResponse::default().with_results(results)
}

/// Kafka answers each group without its topics; they are answered too, with start offset
/// and leader epoch -1 as for an unknown committed offset. A null topic list (all of the
/// group's topics) gets none.
pub(super) fn describe_share_group_offsets(
    request: &DescribeShareGroupOffsetsRequest,
    answer: &Answer,
) -> DescribeShareGroupOffsetsResponse {
    let partition = |index| {
        describe_share_group_offsets_response::DescribeShareGroupOffsetsResponsePartition::default()
            .with_partition_index(index)
            .with_start_offset(UNKNOWN)
            .with_leader_epoch(UNKNOWN_EPOCH)
            .with_error_code(answer.code)
    };
    let groups = each(&request.groups, |group| {
        let topics = each_listed(&group.topics, |topic| {
            describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(topic.topic_name.clone())
                .with_partitions(each(&topic.partitions, |&index| partition(index)))
        });
        describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseGroup::default()
            .with_group_id(group.group_id.clone())
            .with_error_code(answer.code)
            .with_topics(topics)
    });
    DescribeShareGroupOffsetsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_groups(groups)
}

/// Kafka sets only the top-level code; the partitions are answered too.
pub(super) fn alter_share_group_offsets(
    request: &AlterShareGroupOffsetsRequest,
    answer: &Answer,
) -> AlterShareGroupOffsetsResponse {
    let partition = |index| {
        alter_share_group_offsets_response::AlterShareGroupOffsetsResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        alter_share_group_offsets_response::AlterShareGroupOffsetsResponseTopic::default()
            .with_topic_name(topic.topic_name.clone())
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    AlterShareGroupOffsetsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_responses(topics)
}

/// Kafka sets only the top-level code; the topics are answered too.
pub(super) fn delete_share_group_offsets(
    request: &DeleteShareGroupOffsetsRequest,
    answer: &Answer,
) -> DeleteShareGroupOffsetsResponse {
    let topics = each(&request.topics, |topic| {
        delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(topic.topic_name.clone())
            .with_error_code(answer.code)
    });
    DeleteShareGroupOffsetsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_responses(topics)
}
