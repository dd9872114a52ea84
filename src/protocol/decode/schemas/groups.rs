//! Consumer groups: coordinators, membership, assignments and committed offsets.

use crate::protocol::decode::schema::*;

pub const OFFSET_COMMIT: MessageSchema = message(
    2..=9,
    8,
    &[
        field("group_id", STRING),
        field("generation_id_or_member_epoch", INT32),
        field("member_id", STRING),
        field("group_instance_id", nullable(STRING)).since(7),
        field("retention_time_ms", INT64).until(4),
        field("topics", array(&OFFSET_COMMIT_TOPIC)),
    ],
);
const OFFSET_COMMIT_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partitions", array(&OFFSET_COMMIT_PARTITION)),
]);
const OFFSET_COMMIT_PARTITION: Type = structure(&[
    field("partition_index", INT32),
    field("committed_offset", INT64),
    field("committed_leader_epoch", INT32).since(6),
    field("committed_metadata", nullable(STRING)),
]);

pub const OFFSET_FETCH: MessageSchema = message(
    1..=9,
    6,
    &[
        field("group_id", STRING).until(7),
        field("topics", nullable(array(&OFFSET_FETCH_TOPIC))).until(7),
        field("groups", array(&OFFSET_FETCH_GROUP)).since(8),
        field("require_stable", BOOL).since(7),
    ],
);
const OFFSET_FETCH_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partition_indexes", array(&INT32)),
]);
const OFFSET_FETCH_GROUP: Type = structure(&[
    field("group_id", STRING),
    field("member_id", nullable(STRING)).since(9),
    field("member_epoch", INT32).since(9),
    field("topics", nullable(array(&OFFSET_FETCH_TOPIC))),
]);

pub const FIND_COORDINATOR: MessageSchema = message(
    0..=6,
    3,
    &[
        field("key", STRING).until(3),
        field("key_type", INT8).since(1),
        field("coordinator_keys", array(&STRING)).since(4),
    ],
);

pub const JOIN_GROUP: MessageSchema = message(
    0..=9,
    6,
    &[
        field("group_id", STRING),
        field("session_timeout_ms", INT32),
        field("rebalance_timeout_ms", INT32).since(1),
        field("member_id", STRING),
        field("group_instance_id", nullable(STRING)).since(5),
        field("protocol_type", STRING),
        field("protocols", array(&JOIN_GROUP_PROTOCOL)),
        field("reason", nullable(STRING)).since(8),
    ],
);
const JOIN_GROUP_PROTOCOL: Type = structure(&[field("name", STRING), field("metadata", BYTES)]);

pub const HEARTBEAT: MessageSchema = message(
    0..=4,
    4,
    &[
        field("group_id", STRING),
        field("generation_id", INT32),
        field("member_id", STRING),
        field("group_instance_id", nullable(STRING)).since(3),
    ],
);

pub const LEAVE_GROUP: MessageSchema = message(
    0..=5,
    4,
    &[
        field("group_id", STRING),
        field("member_id", STRING).until(2),
        field("members", array(&LEAVING_MEMBER)).since(3),
    ],
);
const LEAVING_MEMBER: Type = structure(&[
    field("member_id", STRING),
    field("group_instance_id", nullable(STRING)),
    field("reason", nullable(STRING)).since(5),
]);

pub const SYNC_GROUP: MessageSchema = message(
    0..=5,
    4,
    &[
        field("group_id", STRING),
        field("generation_id", INT32),
        field("member_id", STRING),
        field("group_instance_id", nullable(STRING)).since(3),
        field("protocol_type", nullable(STRING)).since(5),
        field("protocol_name", nullable(STRING)).since(5),
        field("assignments", array(&SYNC_GROUP_ASSIGNMENT)),
    ],
);
const SYNC_GROUP_ASSIGNMENT: Type =
    structure(&[field("member_id", STRING), field("assignment", BYTES)]);

pub const DESCRIBE_GROUPS: MessageSchema = message(
    0..=6,
    5,
    &[
        field("groups", array(&STRING)),
        field("include_authorized_operations", BOOL).since(3),
    ],
);

pub const LIST_GROUPS: MessageSchema = message(
    0..=5,
    3,
    &[
        field("states_filter", array(&STRING)).since(4),
        field("types_filter", array(&STRING)).since(5),
    ],
);

pub const DELETE_GROUPS: MessageSchema =
    message(0..=2, 2, &[field("groups_names", array(&STRING))]);

pub const OFFSET_DELETE: MessageSchema = rigid_message(
    0..=0,
    &[
        field("group_id", STRING),
        field("topics", array(&OFFSET_DELETE_TOPIC)),
    ],
);
const OFFSET_DELETE_TOPIC: Type = structure(&[
    field("name", STRING),
    field(
        "partitions",
        array(&structure(&[field("partition_index", INT32)])),
    ),
]);

pub const CONSUMER_GROUP_HEARTBEAT: MessageSchema = message(
    0..=1,
    0,
    &[
        field("group_id", STRING),
        field("member_id", STRING),
        field("member_epoch", INT32),
        field("instance_id", nullable(STRING)),
        field("rack_id", nullable(STRING)),
        field("rebalance_timeout_ms", INT32),
        field("subscribed_topic_names", nullable(array(&STRING))),
        field("subscribed_topic_regex", nullable(STRING)).since(1),
        field("server_assignor", nullable(STRING)),
        field(
            "topic_partitions",
            nullable(array(&ASSIGNED_TOPIC_PARTITIONS)),
        ),
    ],
);
const ASSIGNED_TOPIC_PARTITIONS: Type =
    structure(&[field("topic_id", UUID), field("partitions", array(&INT32))]);

pub const CONSUMER_GROUP_DESCRIBE: MessageSchema = message(
    0..=1,
    0,
    &[
        field("group_ids", array(&STRING)),
        field("include_authorized_operations", BOOL),
    ],
);
