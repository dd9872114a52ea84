//! Requests between brokers and controllers (KRaft quorum, registration, partition
//! state). Clients have no business sending them, but a proxy must still not crash on
//! them.

use crate::protocol::decode::schema::*;

pub const VOTE: MessageSchema = message(
    0..=2,
    0,
    &[
        field("cluster_id", nullable(STRING)),
        field("voter_id", INT32).since(1),
        field("topics", array(&VOTE_TOPIC)),
    ],
);
const VOTE_TOPIC: Type = structure(&[
    field("topic_name", STRING),
    field("partitions", array(&VOTE_PARTITION)),
]);
const VOTE_PARTITION: Type = structure(&[
    field("partition_index", INT32),
    field("replica_epoch", INT32),
    field("replica_id", INT32),
    field("replica_directory_id", UUID).since(1),
    field("voter_directory_id", UUID).since(1),
    field("last_offset_epoch", INT32),
    field("last_offset", INT64),
    field("pre_vote", BOOL).since(2),
]);

pub const BEGIN_QUORUM_EPOCH: MessageSchema = message(
    0..=1,
    1,
    &[
        field("cluster_id", nullable(STRING)),
        field("voter_id", INT32).since(1),
        field("topics", array(&BEGIN_QUORUM_TOPIC)),
        field("leader_endpoints", array(&RAFT_LISTENER)).since(1),
    ],
);
const BEGIN_QUORUM_TOPIC: Type = structure(&[
    field("topic_name", STRING),
    field(
        "partitions",
        array(&structure(&[
            field("partition_index", INT32),
            field("voter_directory_id", UUID).since(1),
            field("leader_id", INT32),
            field("leader_epoch", INT32),
        ])),
    ),
]);
const RAFT_LISTENER: Type = structure(&[
    field("name", STRING),
    field("host", STRING),
    field("port", UINT16),
]);

pub const END_QUORUM_EPOCH: MessageSchema = message(
    0..=1,
    1,
    &[
        field("cluster_id", nullable(STRING)),
        field("topics", array(&END_QUORUM_TOPIC)),
        field("leader_endpoints", array(&RAFT_LISTENER)).since(1),
    ],
);
const END_QUORUM_TOPIC: Type = structure(&[
    field("topic_name", STRING),
    field("partitions", array(&END_QUORUM_PARTITION)),
]);
const END_QUORUM_PARTITION: Type = structure(&[
    field("partition_index", INT32),
    field("leader_id", INT32),
    field("leader_epoch", INT32),
    field("preferred_successors", array(&INT32)).until(0),
    field(
        "preferred_candidates",
        array(&structure(&[
            field("candidate_id", INT32),
            field("candidate_directory_id", UUID),
        ])),
    )
    .since(1),
]);

pub const DESCRIBE_QUORUM: MessageSchema = message(
    0..=2,
    0,
    &[field(
        "topics",
        array(&structure(&[
            field("topic_name", STRING),
            field(
                "partitions",
                array(&structure(&[field("partition_index", INT32)])),
            ),
        ])),
    )],
);

pub const ALTER_PARTITION: MessageSchema = message(
    2..=3,
    0,
    &[
        field("broker_id", INT32),
        field("broker_epoch", INT64),
        field("topics", array(&ALTER_PARTITION_TOPIC)),
    ],
);
const ALTER_PARTITION_TOPIC: Type = structure(&[
    field("topic_id", UUID),
    field("partitions", array(&ALTER_PARTITION_PARTITION)),
]);
const ALTER_PARTITION_PARTITION: Type = structure(&[
    field("partition_index", INT32),
    field("leader_epoch", INT32),
    field("new_isr", array(&INT32)).until(2),
    field(
        "new_isr_with_epochs",
        array(&structure(&[
            field("broker_id", INT32),
            field("broker_epoch", INT64),
        ])),
    )
    .since(3),
    field("leader_recovery_state", INT8),
    field("partition_epoch", INT32),
]);

pub const ENVELOPE: MessageSchema = message(
    0..=0,
    0,
    &[
        field("request_data", BYTES),
        field("request_principal", nullable(BYTES)),
        field("client_host_address", BYTES),
    ],
);

pub const FETCH_SNAPSHOT: MessageSchema = message(
    0..=1,
    0,
    &[
        field("cluster_id", nullable(STRING)).tagged(0),
        field("replica_id", INT32),
        field("max_bytes", INT32),
        field("topics", array(&SNAPSHOT_TOPIC)),
    ],
);
const SNAPSHOT_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partitions", array(&SNAPSHOT_PARTITION)),
]);
const SNAPSHOT_PARTITION: Type = structure(&[
    field("partition", INT32),
    field("current_leader_epoch", INT32),
    field(
        "snapshot_id",
        structure(&[field("end_offset", INT64), field("epoch", INT32)]),
    ),
    field("position", INT64),
    field("replica_directory_id", UUID).since(1).tagged(0),
]);

pub const BROKER_REGISTRATION: MessageSchema = message(
    0..=4,
    0,
    &[
        field("broker_id", INT32),
        field("cluster_id", STRING),
        field("incarnation_id", UUID),
        field("listeners", array(&BROKER_LISTENER)),
        field("features", array(&FEATURE_RANGE)),
        field("rack", nullable(STRING)),
        field("is_migrating_zk_broker", BOOL).since(1),
        field("log_dirs", array(&UUID)).since(2),
        field("previous_broker_epoch", INT64).since(3),
    ],
);
const BROKER_LISTENER: Type = structure(&[
    field("name", STRING),
    field("host", STRING),
    field("port", UINT16),
    field("security_protocol", INT16),
]);
const FEATURE_RANGE: Type = structure(&[
    field("name", STRING),
    field("min_supported_version", INT16),
    field("max_supported_version", INT16),
]);

pub const BROKER_HEARTBEAT: MessageSchema = message(
    0..=1,
    0,
    &[
        field("broker_id", INT32),
        field("broker_epoch", INT64),
        field("current_metadata_offset", INT64),
        field("want_fence", BOOL),
        field("want_shut_down", BOOL),
        field("offline_log_dirs", array(&UUID)).since(1).tagged(0),
    ],
);

pub const UNREGISTER_BROKER: MessageSchema = message(0..=0, 0, &[field("broker_id", INT32)]);

pub const ALLOCATE_PRODUCER_IDS: MessageSchema = message(
    0..=0,
    0,
    &[field("broker_id", INT32), field("broker_epoch", INT64)],
);

pub const CONTROLLER_REGISTRATION: MessageSchema = message(
    0..=0,
    0,
    &[
        field("controller_id", INT32),
        field("incarnation_id", UUID),
        field("zk_migration_ready", BOOL),
        field("listeners", array(&BROKER_LISTENER)),
        field("features", array(&FEATURE_RANGE)),
    ],
);

pub const ASSIGN_REPLICAS_TO_DIRS: MessageSchema = message(
    0..=0,
    0,
    &[
        field("broker_id", INT32),
        field("broker_epoch", INT64),
        field("directories", array(&DIRECTORY)),
    ],
);
const DIRECTORY: Type = structure(&[
    field("id", UUID),
    field(
        "topics",
        array(&structure(&[
            field("topic_id", UUID),
            field(
                "partitions",
                array(&structure(&[field("partition_index", INT32)])),
            ),
        ])),
    ),
]);

pub const ADD_RAFT_VOTER: MessageSchema = message(
    0..=0,
    0,
    &[
        field("cluster_id", nullable(STRING)),
        field("timeout_ms", INT32),
        field("voter_id", INT32),
        field("voter_directory_id", UUID),
        field("listeners", array(&RAFT_LISTENER)),
    ],
);

pub const REMOVE_RAFT_VOTER: MessageSchema = message(
    0..=0,
    0,
    &[
        field("cluster_id", nullable(STRING)),
        field("voter_id", INT32),
        field("voter_directory_id", UUID),
    ],
);

pub const UPDATE_RAFT_VOTER: MessageSchema = message(
    0..=0,
    0,
    &[
        field("cluster_id", nullable(STRING)),
        field("current_leader_epoch", INT32),
        field("voter_id", INT32),
        field("voter_directory_id", UUID),
        field("listeners", array(&RAFT_LISTENER)),
        field(
            "k_raft_version_feature",
            structure(&[
                field("min_supported_version", INT16),
                field("max_supported_version", INT16),
            ]),
        ),
    ],
);
