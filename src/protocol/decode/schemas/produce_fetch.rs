//! The data path: producing, fetching, and finding out where partitions and offsets are.

use crate::protocol::decode::schema::*;

pub const PRODUCE: MessageSchema = message(
    3..=13,
    9,
    &[
        field("transactional_id", nullable(STRING)),
        field("acks", INT16),
        field("timeout_ms", INT32),
        field("topic_data", array(&TOPIC_PRODUCE_DATA)),
    ],
);
const TOPIC_PRODUCE_DATA: Type = structure(&[
    field("name", STRING).until(12),
    field("topic_id", UUID).since(13),
    field("partition_data", array(&PARTITION_PRODUCE_DATA)),
]);
const PARTITION_PRODUCE_DATA: Type = structure(&[field("index", INT32), field("records", RECORDS)]);

pub const FETCH: MessageSchema = message(
    4..=18,
    12,
    &[
        field("cluster_id", nullable(STRING)).since(12).tagged(0),
        field("replica_id", INT32).until(14),
        field("replica_state", REPLICA_STATE).since(15).tagged(1),
        field("max_wait_ms", INT32),
        field("min_bytes", INT32),
        field("max_bytes", INT32),
        field("isolation_level", INT8),
        field("session_id", INT32).since(7),
        field("session_epoch", INT32).since(7),
        field("topics", array(&FETCH_TOPIC)),
        field("forgotten_topics_data", array(&FORGOTTEN_TOPIC)).since(7),
        field("rack_id", STRING).since(11),
    ],
);
const REPLICA_STATE: Type = structure(&[field("replica_id", INT32), field("replica_epoch", INT64)]);
const FETCH_TOPIC: Type = structure(&[
    field("topic", STRING).until(12),
    field("topic_id", UUID).since(13),
    field("partitions", array(&FETCH_PARTITION)),
]);
const FETCH_PARTITION: Type = structure(&[
    field("partition", INT32),
    field("current_leader_epoch", INT32).since(9),
    field("fetch_offset", INT64),
    field("last_fetched_epoch", INT32).since(12),
    field("log_start_offset", INT64).since(5),
    field("partition_max_bytes", INT32),
    field("replica_directory_id", UUID).since(17).tagged(0),
    field("high_watermark", INT64).since(18).tagged(1),
]);
const FORGOTTEN_TOPIC: Type = structure(&[
    field("topic", STRING).until(12),
    field("topic_id", UUID).since(13),
    field("partitions", array(&INT32)),
]);

pub const LIST_OFFSETS: MessageSchema = message(
    1..=10,
    6,
    &[
        field("replica_id", INT32),
        field("isolation_level", INT8).since(2),
        field("topics", array(&LIST_OFFSETS_TOPIC)),
        field("timeout_ms", INT32).since(10),
    ],
);
const LIST_OFFSETS_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partitions", array(&LIST_OFFSETS_PARTITION)),
]);
const LIST_OFFSETS_PARTITION: Type = structure(&[
    field("partition_index", INT32),
    field("current_leader_epoch", INT32).since(4),
    field("timestamp", INT64),
]);

pub const METADATA: MessageSchema = message(
    0..=13,
    9,
    &[
        field("topics", nullable(array(&METADATA_TOPIC))),
        field("allow_auto_topic_creation", BOOL).since(4),
        field("include_cluster_authorized_operations", BOOL).versions(8..=10),
        field("include_topic_authorized_operations", BOOL).since(8),
    ],
);
const METADATA_TOPIC: Type = structure(&[
    field("topic_id", UUID).since(10),
    field("name", nullable(STRING)),
]);

pub const OFFSET_FOR_LEADER_EPOCH: MessageSchema = message(
    2..=4,
    4,
    &[
        field("replica_id", INT32).since(3),
        field("topics", array(&OFFSET_FOR_LEADER_TOPIC)),
    ],
);
const OFFSET_FOR_LEADER_TOPIC: Type = structure(&[
    field("topic", STRING),
    field("partitions", array(&OFFSET_FOR_LEADER_PARTITION)),
]);
const OFFSET_FOR_LEADER_PARTITION: Type = structure(&[
    field("partition", INT32),
    field("current_leader_epoch", INT32),
    field("leader_epoch", INT32),
]);
