//! Administration of topics, partitions, configs, log dirs and features.

use crate::protocol::decode::schema::*;

pub const CREATE_TOPICS: MessageSchema = message(
    2..=7,
    5,
    &[
        field("topics", array(&CREATABLE_TOPIC)),
        field("timeout_ms", INT32),
        field("validate_only", BOOL),
    ],
);
const CREATABLE_TOPIC: Type = structure(&[
    field("name", STRING),
    field("num_partitions", INT32),
    field("replication_factor", INT16),
    field("assignments", array(&REPLICA_ASSIGNMENT)),
    field("configs", array(&TOPIC_CONFIG)),
]);
const REPLICA_ASSIGNMENT: Type = structure(&[
    field("partition_index", INT32),
    field("broker_ids", array(&INT32)),
]);
const TOPIC_CONFIG: Type = structure(&[field("name", STRING), field("value", nullable(STRING))]);

pub const DELETE_TOPICS: MessageSchema = message(
    1..=6,
    4,
    &[
        field("topics", array(&DELETE_TOPIC_STATE)).since(6),
        field("topic_names", array(&STRING)).until(5),
        field("timeout_ms", INT32),
    ],
);
const DELETE_TOPIC_STATE: Type =
    structure(&[field("name", nullable(STRING)), field("topic_id", UUID)]);

pub const DELETE_RECORDS: MessageSchema = message(
    0..=2,
    2,
    &[
        field("topics", array(&DELETE_RECORDS_TOPIC)),
        field("timeout_ms", INT32),
    ],
);
const DELETE_RECORDS_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partitions", array(&DELETE_RECORDS_PARTITION)),
]);
const DELETE_RECORDS_PARTITION: Type =
    structure(&[field("partition_index", INT32), field("offset", INT64)]);

pub const DESCRIBE_CONFIGS: MessageSchema = message(
    1..=4,
    4,
    &[
        field("resources", array(&DESCRIBE_CONFIGS_RESOURCE)),
        field("include_synonyms", BOOL),
        field("include_documentation", BOOL).since(3),
    ],
);
const DESCRIBE_CONFIGS_RESOURCE: Type = structure(&[
    field("resource_type", INT8),
    field("resource_name", STRING),
    field("configuration_keys", nullable(array(&STRING))),
]);

pub const ALTER_CONFIGS: MessageSchema = message(
    0..=2,
    2,
    &[
        field("resources", array(&ALTER_CONFIGS_RESOURCE)),
        field("validate_only", BOOL),
    ],
);
const ALTER_CONFIGS_RESOURCE: Type = structure(&[
    field("resource_type", INT8),
    field("resource_name", STRING),
    field("configs", array(&TOPIC_CONFIG)),
]);

pub const INCREMENTAL_ALTER_CONFIGS: MessageSchema = message(
    0..=1,
    1,
    &[
        field("resources", array(&INCREMENTAL_RESOURCE)),
        field("validate_only", BOOL),
    ],
);
const INCREMENTAL_RESOURCE: Type = structure(&[
    field("resource_type", INT8),
    field("resource_name", STRING),
    field("configs", array(&INCREMENTAL_CONFIG)),
]);
const INCREMENTAL_CONFIG: Type = structure(&[
    field("name", STRING),
    field("config_operation", INT8),
    field("value", nullable(STRING)),
]);

pub const CREATE_PARTITIONS: MessageSchema = message(
    0..=3,
    2,
    &[
        field("topics", array(&CREATE_PARTITIONS_TOPIC)),
        field("timeout_ms", INT32),
        field("validate_only", BOOL),
    ],
);
const CREATE_PARTITIONS_TOPIC: Type = structure(&[
    field("name", STRING),
    field("count", INT32),
    field("assignments", nullable(array(&BROKER_IDS))),
]);
const BROKER_IDS: Type = structure(&[field("broker_ids", array(&INT32))]);

pub const ELECT_LEADERS: MessageSchema = message(
    0..=2,
    2,
    &[
        field("election_type", INT8).since(1),
        field("topic_partitions", nullable(array(&TOPIC_PARTITIONS))),
        field("timeout_ms", INT32),
    ],
);
const TOPIC_PARTITIONS: Type =
    structure(&[field("topic", STRING), field("partitions", array(&INT32))]);

pub const ALTER_PARTITION_REASSIGNMENTS: MessageSchema = message(
    0..=1,
    0,
    &[
        field("timeout_ms", INT32),
        field("allow_replication_factor_change", BOOL).since(1),
        field("topics", array(&REASSIGNABLE_TOPIC)),
    ],
);
const REASSIGNABLE_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partitions", array(&REASSIGNABLE_PARTITION)),
]);
const REASSIGNABLE_PARTITION: Type = structure(&[
    field("partition_index", INT32),
    field("replicas", nullable(array(&INT32))),
]);

pub const LIST_PARTITION_REASSIGNMENTS: MessageSchema = message(
    0..=0,
    0,
    &[
        field("timeout_ms", INT32),
        field("topics", nullable(array(&NAMED_PARTITIONS))),
    ],
);
const NAMED_PARTITIONS: Type = structure(&[
    field("name", STRING),
    field("partition_indexes", array(&INT32)),
]);

pub const DESCRIBE_LOG_DIRS: MessageSchema = message(
    1..=4,
    2,
    &[field("topics", nullable(array(&TOPIC_PARTITIONS)))],
);

pub const ALTER_REPLICA_LOG_DIRS: MessageSchema =
    message(1..=2, 2, &[field("dirs", array(&LOG_DIR))]);
const LOG_DIR: Type = structure(&[
    field("path", STRING),
    field("topics", array(&LOG_DIR_TOPIC)),
]);
const LOG_DIR_TOPIC: Type = structure(&[field("name", STRING), field("partitions", array(&INT32))]);

pub const DESCRIBE_CLUSTER: MessageSchema = message(
    0..=2,
    0,
    &[
        field("include_cluster_authorized_operations", BOOL),
        field("endpoint_type", INT8).since(1),
        field("include_fenced_brokers", BOOL).since(2),
    ],
);

pub const DESCRIBE_TOPIC_PARTITIONS: MessageSchema = message(
    0..=0,
    0,
    &[
        field("topics", array(&structure(&[field("name", STRING)]))),
        field("response_partition_limit", INT32),
        field("cursor", nullable(CURSOR)),
    ],
);
const CURSOR: Type = structure(&[field("topic_name", STRING), field("partition_index", INT32)]);

pub const UPDATE_FEATURES: MessageSchema = message(
    0..=2,
    0,
    &[
        field("timeout_ms", INT32),
        field("feature_updates", array(&FEATURE_UPDATE)),
        field("validate_only", BOOL).since(1),
    ],
);
const FEATURE_UPDATE: Type = structure(&[
    field("feature", STRING),
    field("max_version_level", INT16),
    field("allow_downgrade", BOOL).until(0),
    field("upgrade_type", INT8).since(1),
]);

pub const LIST_CONFIG_RESOURCES: MessageSchema =
    message(0..=1, 0, &[field("resource_types", array(&INT8)).since(1)]);
