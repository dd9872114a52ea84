//! The schema of every request body, grouped by what the requests are for.

mod admin;
mod cluster;
mod connection;
mod groups;
mod produce_fetch;
mod security;
mod share;
mod transactions;

use kafka_protocol::messages::ApiKey;

use super::schema::MessageSchema;

/// The schema of `api_key`'s request body. Every key kafka-protocol knows has one; the
/// match is exhaustive so that a kafka-protocol upgrade adding keys does not compile until
/// their schemas are written (or they are explicitly left out with `None`).
pub fn request_schema(api_key: ApiKey) -> Option<&'static MessageSchema> {
    use ApiKey::*;
    let schema = match api_key {
        Produce => &produce_fetch::PRODUCE,
        Fetch => &produce_fetch::FETCH,
        ListOffsets => &produce_fetch::LIST_OFFSETS,
        Metadata => &produce_fetch::METADATA,
        OffsetForLeaderEpoch => &produce_fetch::OFFSET_FOR_LEADER_EPOCH,

        OffsetCommit => &groups::OFFSET_COMMIT,
        OffsetFetch => &groups::OFFSET_FETCH,
        FindCoordinator => &groups::FIND_COORDINATOR,
        JoinGroup => &groups::JOIN_GROUP,
        Heartbeat => &groups::HEARTBEAT,
        LeaveGroup => &groups::LEAVE_GROUP,
        SyncGroup => &groups::SYNC_GROUP,
        DescribeGroups => &groups::DESCRIBE_GROUPS,
        ListGroups => &groups::LIST_GROUPS,
        DeleteGroups => &groups::DELETE_GROUPS,
        OffsetDelete => &groups::OFFSET_DELETE,
        ConsumerGroupHeartbeat => &groups::CONSUMER_GROUP_HEARTBEAT,
        ConsumerGroupDescribe => &groups::CONSUMER_GROUP_DESCRIBE,

        SaslHandshake => &connection::SASL_HANDSHAKE,
        ApiVersions => &connection::API_VERSIONS,
        SaslAuthenticate => &connection::SASL_AUTHENTICATE,
        GetTelemetrySubscriptions => &connection::GET_TELEMETRY_SUBSCRIPTIONS,
        PushTelemetry => &connection::PUSH_TELEMETRY,

        InitProducerId => &transactions::INIT_PRODUCER_ID,
        AddPartitionsToTxn => &transactions::ADD_PARTITIONS_TO_TXN,
        AddOffsetsToTxn => &transactions::ADD_OFFSETS_TO_TXN,
        EndTxn => &transactions::END_TXN,
        WriteTxnMarkers => &transactions::WRITE_TXN_MARKERS,
        TxnOffsetCommit => &transactions::TXN_OFFSET_COMMIT,
        DescribeProducers => &transactions::DESCRIBE_PRODUCERS,
        DescribeTransactions => &transactions::DESCRIBE_TRANSACTIONS,
        ListTransactions => &transactions::LIST_TRANSACTIONS,

        CreateTopics => &admin::CREATE_TOPICS,
        DeleteTopics => &admin::DELETE_TOPICS,
        DeleteRecords => &admin::DELETE_RECORDS,
        DescribeConfigs => &admin::DESCRIBE_CONFIGS,
        AlterConfigs => &admin::ALTER_CONFIGS,
        IncrementalAlterConfigs => &admin::INCREMENTAL_ALTER_CONFIGS,
        CreatePartitions => &admin::CREATE_PARTITIONS,
        ElectLeaders => &admin::ELECT_LEADERS,
        AlterPartitionReassignments => &admin::ALTER_PARTITION_REASSIGNMENTS,
        ListPartitionReassignments => &admin::LIST_PARTITION_REASSIGNMENTS,
        DescribeLogDirs => &admin::DESCRIBE_LOG_DIRS,
        AlterReplicaLogDirs => &admin::ALTER_REPLICA_LOG_DIRS,
        DescribeCluster => &admin::DESCRIBE_CLUSTER,
        DescribeTopicPartitions => &admin::DESCRIBE_TOPIC_PARTITIONS,
        UpdateFeatures => &admin::UPDATE_FEATURES,
        ListConfigResources => &admin::LIST_CONFIG_RESOURCES,

        DescribeAcls => &security::DESCRIBE_ACLS,
        CreateAcls => &security::CREATE_ACLS,
        DeleteAcls => &security::DELETE_ACLS,
        DescribeClientQuotas => &security::DESCRIBE_CLIENT_QUOTAS,
        AlterClientQuotas => &security::ALTER_CLIENT_QUOTAS,
        DescribeUserScramCredentials => &security::DESCRIBE_USER_SCRAM_CREDENTIALS,
        AlterUserScramCredentials => &security::ALTER_USER_SCRAM_CREDENTIALS,
        CreateDelegationToken => &security::CREATE_DELEGATION_TOKEN,
        RenewDelegationToken => &security::RENEW_DELEGATION_TOKEN,
        ExpireDelegationToken => &security::EXPIRE_DELEGATION_TOKEN,
        DescribeDelegationToken => &security::DESCRIBE_DELEGATION_TOKEN,

        ShareGroupHeartbeat => &share::SHARE_GROUP_HEARTBEAT,
        ShareGroupDescribe => &share::SHARE_GROUP_DESCRIBE,
        ShareFetch => &share::SHARE_FETCH,
        ShareAcknowledge => &share::SHARE_ACKNOWLEDGE,
        InitializeShareGroupState => &share::INITIALIZE_SHARE_GROUP_STATE,
        ReadShareGroupState => &share::READ_SHARE_GROUP_STATE,
        WriteShareGroupState => &share::WRITE_SHARE_GROUP_STATE,
        DeleteShareGroupState => &share::DELETE_SHARE_GROUP_STATE,
        ReadShareGroupStateSummary => &share::READ_SHARE_GROUP_STATE_SUMMARY,
        DescribeShareGroupOffsets => &share::DESCRIBE_SHARE_GROUP_OFFSETS,
        AlterShareGroupOffsets => &share::ALTER_SHARE_GROUP_OFFSETS,
        DeleteShareGroupOffsets => &share::DELETE_SHARE_GROUP_OFFSETS,

        Vote => &cluster::VOTE,
        BeginQuorumEpoch => &cluster::BEGIN_QUORUM_EPOCH,
        EndQuorumEpoch => &cluster::END_QUORUM_EPOCH,
        DescribeQuorum => &cluster::DESCRIBE_QUORUM,
        AlterPartition => &cluster::ALTER_PARTITION,
        Envelope => &cluster::ENVELOPE,
        FetchSnapshot => &cluster::FETCH_SNAPSHOT,
        BrokerRegistration => &cluster::BROKER_REGISTRATION,
        BrokerHeartbeat => &cluster::BROKER_HEARTBEAT,
        UnregisterBroker => &cluster::UNREGISTER_BROKER,
        AllocateProducerIds => &cluster::ALLOCATE_PRODUCER_IDS,
        ControllerRegistration => &cluster::CONTROLLER_REGISTRATION,
        AssignReplicasToDirs => &cluster::ASSIGN_REPLICAS_TO_DIRS,
        AddRaftVoter => &cluster::ADD_RAFT_VOTER,
        RemoveRaftVoter => &cluster::REMOVE_RAFT_VOTER,
        UpdateRaftVoter => &cluster::UPDATE_RAFT_VOTER,
    };
    Some(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode::schema::{Field, Type};
    use crate::protocol::decode::walker::min_size;

    fn every_schema() -> impl Iterator<Item = (ApiKey, &'static MessageSchema)> {
        ApiKey::iter().map(|key| (key, request_schema(key).expect("every key has a schema")))
    }

    fn versions(schema: &MessageSchema) -> impl Iterator<Item = i16> {
        schema.versions.min..=schema.versions.max
    }

    /// Calls `check` with every struct's fields reachable in `version`, however nested.
    fn each_struct(fields: &'static [Field], version: i16, check: &mut dyn FnMut(&[Field])) {
        check(fields);
        for field in fields.iter().filter(|f| f.versions.contains(version)) {
            let mut ty = &field.ty;
            if let Type::Array { element, .. } = ty {
                ty = element;
            }
            if let Type::Struct { fields, .. } = ty {
                each_struct(fields, version, check);
            }
        }
    }

    #[test]
    fn versions_are_kafka_protocols_except_the_three_it_cannot_decode() {
        let undecodable = [
            (ApiKey::OffsetCommit, 10),
            (ApiKey::OffsetFetch, 10),
            (ApiKey::InitProducerId, 6),
        ];
        for (key, schema) in every_schema() {
            let valid = key.valid_versions();
            let expected_max = undecodable
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(valid.max, |(_, v)| v - 1);
            assert_eq!(
                (schema.versions.min, schema.versions.max),
                (valid.min, expected_max),
                "{key:?}"
            );
        }
    }

    #[test]
    fn every_array_element_takes_at_least_one_byte() {
        for (key, schema) in every_schema() {
            for version in versions(schema) {
                let flexible = schema.is_flexible(version);
                each_struct(schema.fields, version, &mut |fields| {
                    for field in fields.iter().filter(|f| f.versions.contains(version)) {
                        if let Type::Array { element, .. } = &field.ty {
                            let size = min_size(element, version, flexible);
                            assert!(size >= 1, "{key:?} v{version} {}", field.name);
                        }
                    }
                });
            }
        }
    }

    #[test]
    fn tags_are_unique_and_only_in_flexible_versions() {
        for (key, schema) in every_schema() {
            for version in versions(schema) {
                let flexible = schema.is_flexible(version);
                each_struct(schema.fields, version, &mut |fields| {
                    let tagged: Vec<&Field> = fields.iter().filter(|f| f.tag.is_some()).collect();
                    for (i, field) in tagged.iter().enumerate() {
                        let exists = field.versions.contains(version);
                        assert!(!exists || flexible, "{key:?} v{version} {}", field.name);
                        assert!(
                            tagged[i + 1..].iter().all(|other| other.tag != field.tag),
                            "{key:?} {} shares its tag",
                            field.name
                        );
                    }
                });
            }
        }
    }

    #[test]
    fn every_field_exists_in_some_version() {
        for (key, schema) in every_schema() {
            let (mut present, mut all) = (Vec::new(), Vec::new());
            for version in versions(schema) {
                each_struct(schema.fields, version, &mut |fields| {
                    for field in fields {
                        all.push((field as *const Field, field.name));
                        if field.versions.contains(version) {
                            present.push(field as *const Field);
                        }
                    }
                });
            }
            for (field, name) in all {
                assert!(
                    present.contains(&field),
                    "{key:?} {name} exists in no version"
                );
            }
        }
    }
}
