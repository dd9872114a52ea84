//! Error answers for the admin APIs: topics and partitions, configs, ACLs, quotas, SCRAM
//! credentials, delegation tokens, log directories, features and telemetry.

use kafka_protocol::messages::{
    alter_client_quotas_request, alter_client_quotas_response, alter_configs_response,
    alter_partition_reassignments_response, alter_replica_log_dirs_response,
    alter_user_scram_credentials_response, create_acls_response, create_partitions_response,
    create_topics_response, delete_acls_response, delete_topics_response,
    describe_configs_response, describe_log_dirs_response,
    describe_user_scram_credentials_response, elect_leaders_response,
    incremental_alter_configs_response, list_partition_reassignments_response,
    update_features_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse,
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, CreateAclsRequest,
    CreateAclsResponse, CreateDelegationTokenRequest, CreateDelegationTokenResponse,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteAclsRequest, DeleteAclsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeAclsRequest, DescribeAclsResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, DescribeClusterRequest, DescribeClusterResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeDelegationTokenRequest,
    DescribeDelegationTokenResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, ElectLeadersRequest,
    ElectLeadersResponse, ExpireDelegationTokenRequest, ExpireDelegationTokenResponse,
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListConfigResourcesRequest,
    ListConfigResourcesResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, PushTelemetryRequest, PushTelemetryResponse,
    RenewDelegationTokenRequest, RenewDelegationTokenResponse, UpdateFeaturesRequest,
    UpdateFeaturesResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{each, each_listed, Answer, UNKNOWN};

/// Partition count and replication factor default to -1, Kafka's "unknown".
pub(super) fn create_topics(
    request: &CreateTopicsRequest,
    answer: &Answer,
) -> CreateTopicsResponse {
    let topics = each(&request.topics, |topic| {
        create_topics_response::CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_error_code(answer.code)
    });
    CreateTopicsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_topics(topics)
}

/// Before v6 topics are named in a list of names; from v6 by name or id.
pub(super) fn delete_topics(
    request: &DeleteTopicsRequest,
    answer: &Answer,
) -> DeleteTopicsResponse {
    let result = |name, topic_id| {
        delete_topics_response::DeletableTopicResult::default()
            .with_name(name)
            .with_topic_id(topic_id)
            .with_error_code(answer.code)
    };
    let results = if answer.version < 6 {
        each(&request.topic_names, |name| {
            result(Some(name.clone()), Default::default())
        })
    } else {
        each(&request.topics, |topic| {
            result(topic.name.clone(), topic.topic_id)
        })
    };
    DeleteTopicsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_responses(results)
}

pub(super) fn create_partitions(
    request: &CreatePartitionsRequest,
    answer: &Answer,
) -> CreatePartitionsResponse {
    let results = each(&request.topics, |topic| {
        create_partitions_response::CreatePartitionsTopicResult::default()
            .with_name(topic.name.clone())
            .with_error_code(answer.code)
    });
    CreatePartitionsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_results(results)
}

/// No configs are listed.
pub(super) fn describe_configs(
    request: &DescribeConfigsRequest,
    answer: &Answer,
) -> DescribeConfigsResponse {
    let results = each(&request.resources, |resource| {
        describe_configs_response::DescribeConfigsResult::default()
            .with_error_code(answer.code)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone())
    });
    DescribeConfigsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_results(results)
}

pub(super) fn alter_configs(
    request: &AlterConfigsRequest,
    answer: &Answer,
) -> AlterConfigsResponse {
    let responses = each(&request.resources, |resource| {
        alter_configs_response::AlterConfigsResourceResponse::default()
            .with_error_code(answer.code)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone())
    });
    AlterConfigsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_responses(responses)
}

/// Kafka leaves the throttle time at 0 here; the caller's is kept.
pub(super) fn incremental_alter_configs(
    request: &IncrementalAlterConfigsRequest,
    answer: &Answer,
) -> IncrementalAlterConfigsResponse {
    let responses = each(&request.resources, |resource| {
        incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_error_code(answer.code)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone())
    });
    IncrementalAlterConfigsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_responses(responses)
}

/// No ACLs are listed.
pub(super) fn describe_acls(
    _request: &DescribeAclsRequest,
    answer: &Answer,
) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

/// Results are matched to creations by position.
pub(super) fn create_acls(request: &CreateAclsRequest, answer: &Answer) -> CreateAclsResponse {
    let result = create_acls_response::AclCreationResult::default().with_error_code(answer.code);
    CreateAclsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_results(vec![result; request.creations.len()])
}

/// Results are matched to filters by position; no ACLs matched.
pub(super) fn delete_acls(request: &DeleteAclsRequest, answer: &Answer) -> DeleteAclsResponse {
    let result =
        delete_acls_response::DeleteAclsFilterResult::default().with_error_code(answer.code);
    DeleteAclsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_filter_results(vec![result; request.filters.len()])
}

/// One result per topic of each directory, as from Kafka, which does not key results by
/// directory.
pub(super) fn alter_replica_log_dirs(
    request: &AlterReplicaLogDirsRequest,
    answer: &Answer,
) -> AlterReplicaLogDirsResponse {
    let partition = |index| {
        alter_replica_log_dirs_response::AlterReplicaLogDirPartitionResult::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = request
        .dirs
        .iter()
        .flat_map(|dir| &dir.topics)
        .map(|topic| {
            alter_replica_log_dirs_response::AlterReplicaLogDirTopicResult::default()
                .with_topic_name(topic.name.clone())
                .with_partitions(each(&topic.partitions, |&index| partition(index)))
        });
    AlterReplicaLogDirsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_results(topics.collect())
}

/// Results are keyed by log directory, which the proxy does not know, so the requested
/// topics have no entry. From v3 the top-level code carries the error. Before v3 Kafka's
/// answer is an empty list, which reads as success with no directories; here it is one
/// result for an unnamed directory carrying the error, so the client sees the failure.
pub(super) fn describe_log_dirs(
    _request: &DescribeLogDirsRequest,
    answer: &Answer,
) -> DescribeLogDirsResponse {
    let response = DescribeLogDirsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code);
    if answer.version >= 3 {
        return response;
    }
    let failed_dir =
        describe_log_dirs_response::DescribeLogDirsResult::default().with_error_code(answer.code);
    response.with_results(vec![failed_dir])
}

/// Kafka's answer names no one: owner and requester are the anonymous user, timestamps
/// -1, no token.
pub(super) fn create_delegation_token(
    _request: &CreateDelegationTokenRequest,
    answer: &Answer,
) -> CreateDelegationTokenResponse {
    let user = StrBytes::from_static_str("User");
    let anonymous = StrBytes::from_static_str("ANONYMOUS");
    let response = CreateDelegationTokenResponse::default()
        .with_error_code(answer.code)
        .with_principal_type(user.clone())
        .with_principal_name(anonymous.clone())
        .with_issue_timestamp_ms(UNKNOWN)
        .with_expiry_timestamp_ms(UNKNOWN)
        .with_max_timestamp_ms(UNKNOWN)
        .with_throttle_time_ms(answer.throttle_time_ms);
    // The requester fields exist from v3 only.
    if answer.version < 3 {
        return response;
    }
    response
        .with_token_requester_principal_type(user)
        .with_token_requester_principal_name(anonymous)
}

pub(super) fn renew_delegation_token(
    _request: &RenewDelegationTokenRequest,
    answer: &Answer,
) -> RenewDelegationTokenResponse {
    RenewDelegationTokenResponse::default()
        .with_error_code(answer.code)
        .with_throttle_time_ms(answer.throttle_time_ms)
}

pub(super) fn expire_delegation_token(
    _request: &ExpireDelegationTokenRequest,
    answer: &Answer,
) -> ExpireDelegationTokenResponse {
    ExpireDelegationTokenResponse::default()
        .with_error_code(answer.code)
        .with_throttle_time_ms(answer.throttle_time_ms)
}

pub(super) fn describe_delegation_token(
    _request: &DescribeDelegationTokenRequest,
    answer: &Answer,
) -> DescribeDelegationTokenResponse {
    DescribeDelegationTokenResponse::default()
        .with_error_code(answer.code)
        .with_throttle_time_ms(answer.throttle_time_ms)
}

/// The top-level code exists from v1. A null topic list (every partition) gets no results.
pub(super) fn elect_leaders(
    request: &ElectLeadersRequest,
    answer: &Answer,
) -> ElectLeadersResponse {
    let partition = |index| {
        elect_leaders_response::PartitionResult::default()
            .with_partition_id(index)
            .with_error_code(answer.code)
    };
    let topics = each_listed(&request.topic_partitions, |topic| {
        elect_leaders_response::ReplicaElectionResult::default()
            .with_topic(topic.topic.clone())
            .with_partition_result(each(&topic.partitions, |&index| partition(index)))
    });
    let top_level_code = if answer.version >= 1 { answer.code } else { 0 };
    ElectLeadersResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(top_level_code)
        .with_replica_election_results(topics)
}

pub(super) fn alter_partition_reassignments(
    request: &AlterPartitionReassignmentsRequest,
    answer: &Answer,
) -> AlterPartitionReassignmentsResponse {
    let partition = |index| {
        alter_partition_reassignments_response::ReassignablePartitionResponse::default()
            .with_partition_index(index)
            .with_error_code(answer.code)
    };
    let topics = each(&request.topics, |topic| {
        alter_partition_reassignments_response::ReassignableTopicResponse::default()
            .with_name(topic.name.clone())
            .with_partitions(each(&topic.partitions, |p| partition(p.partition_index)))
    });
    AlterPartitionReassignmentsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_responses(topics)
}

/// As in Kafka, the requested partitions are listed with no reassignment; they have no
/// error field, the top-level code carries the error.
pub(super) fn list_partition_reassignments(
    request: &ListPartitionReassignmentsRequest,
    answer: &Answer,
) -> ListPartitionReassignmentsResponse {
    let partition = |index| {
        list_partition_reassignments_response::OngoingPartitionReassignment::default()
            .with_partition_index(index)
    };
    let topics = each_listed(&request.topics, |topic| {
        list_partition_reassignments_response::OngoingTopicReassignment::default()
            .with_name(topic.name.clone())
            .with_partitions(each(&topic.partition_indexes, |&index| partition(index)))
    });
    ListPartitionReassignmentsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_topics(topics)
}

/// Entries null, as from Kafka.
pub(super) fn describe_client_quotas(
    _request: &DescribeClientQuotasRequest,
    answer: &Answer,
) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_entries(None)
}

pub(super) fn alter_client_quotas(
    request: &AlterClientQuotasRequest,
    answer: &Answer,
) -> AlterClientQuotasResponse {
    let entity = |entity: &alter_client_quotas_request::EntityData| {
        alter_client_quotas_response::EntityData::default()
            .with_entity_type(entity.entity_type.clone())
            .with_entity_name(entity.entity_name.clone())
    };
    let entries = each(&request.entries, |entry| {
        alter_client_quotas_response::EntryData::default()
            .with_error_code(answer.code)
            .with_entity(each(&entry.entity, entity))
    });
    AlterClientQuotasResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_entries(entries)
}

/// Kafka's per-user results lack the user's name; here each carries it. A null user list
/// (every user) gets no results.
pub(super) fn describe_user_scram_credentials(
    request: &DescribeUserScramCredentialsRequest,
    answer: &Answer,
) -> DescribeUserScramCredentialsResponse {
    let results = each_listed(&request.users, |user| {
        describe_user_scram_credentials_response::DescribeUserScramCredentialsResult::default()
            .with_user(user.name.clone())
            .with_error_code(answer.code)
    });
    DescribeUserScramCredentialsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_results(results)
}

/// One result per user, in name order, however many of its credentials the request
/// deletes or upserts, as from Kafka.
pub(super) fn alter_user_scram_credentials(
    request: &AlterUserScramCredentialsRequest,
    answer: &Answer,
) -> AlterUserScramCredentialsResponse {
    let deleted = request.deletions.iter().map(|deletion| &deletion.name);
    let upserted = request.upsertions.iter().map(|upsertion| &upsertion.name);
    let mut users: Vec<&StrBytes> = deleted.chain(upserted).collect();
    users.sort();
    users.dedup();
    let results = each(&users, |&user| {
        alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
            .with_user(user.clone())
            .with_error_code(answer.code)
    });
    AlterUserScramCredentialsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_results(results)
}

/// Kafka lists no per-feature results with a top-level error; each requested feature is
/// answered here. v2 dropped the per-feature list, leaving the top-level code.
pub(super) fn update_features(
    request: &UpdateFeaturesRequest,
    answer: &Answer,
) -> UpdateFeaturesResponse {
    let results = each(&request.feature_updates, |update| {
        update_features_response::UpdatableFeatureResult::default()
            .with_feature(update.feature.clone())
            .with_error_code(answer.code)
    });
    UpdateFeaturesResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
        .with_results(results)
}

/// No cluster id, controller or brokers. Kafka leaves the throttle time at 0 here; the
/// caller's is kept.
pub(super) fn describe_cluster(
    _request: &DescribeClusterRequest,
    answer: &Answer,
) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn list_config_resources(
    _request: &ListConfigResourcesRequest,
    answer: &Answer,
) -> ListConfigResourcesResponse {
    ListConfigResourcesResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn get_telemetry_subscriptions(
    _request: &GetTelemetrySubscriptionsRequest,
    answer: &Answer,
) -> GetTelemetrySubscriptionsResponse {
    GetTelemetrySubscriptionsResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}

pub(super) fn push_telemetry(
    _request: &PushTelemetryRequest,
    answer: &Answer,
) -> PushTelemetryResponse {
    PushTelemetryResponse::default()
        .with_throttle_time_ms(answer.throttle_time_ms)
        .with_error_code(answer.code)
}
