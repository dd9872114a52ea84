//! Idempotent and transactional producers, and the views of their state.

use crate::protocol::decode::schema::*;

pub const INIT_PRODUCER_ID: MessageSchema = message(
    0..=5,
    2,
    &[
        field("transactional_id", nullable(STRING)),
        field("transaction_timeout_ms", INT32),
        field("producer_id", INT64).since(3),
        field("producer_epoch", INT16).since(3),
    ],
);

pub const ADD_PARTITIONS_TO_TXN: MessageSchema = message(
    0..=5,
    3,
    &[
        field("transactions", array(&ADD_PARTITIONS_TRANSACTION)).since(4),
        field("v3_and_below_transactional_id", STRING).until(3),
        field("v3_and_below_producer_id", INT64).until(3),
        field("v3_and_below_producer_epoch", INT16).until(3),
        field("v3_and_below_topics", array(&ADD_PARTITIONS_TOPIC)).until(3),
    ],
);
const ADD_PARTITIONS_TRANSACTION: Type = structure(&[
    field("transactional_id", STRING),
    field("producer_id", INT64),
    field("producer_epoch", INT16),
    field("verify_only", BOOL),
    field("topics", array(&ADD_PARTITIONS_TOPIC)),
]);
const ADD_PARTITIONS_TOPIC: Type =
    structure(&[field("name", STRING), field("partitions", array(&INT32))]);

pub const ADD_OFFSETS_TO_TXN: MessageSchema = message(
    0..=4,
    3,
    &[
        field("transactional_id", STRING),
        field("producer_id", INT64),
        field("producer_epoch", INT16),
        field("group_id", STRING),
    ],
);

pub const END_TXN: MessageSchema = message(
    0..=5,
    3,
    &[
        field("transactional_id", STRING),
        field("producer_id", INT64),
        field("producer_epoch", INT16),
        field("committed", BOOL),
    ],
);

pub const WRITE_TXN_MARKERS: MessageSchema =
    message(1..=1, 1, &[field("markers", array(&TXN_MARKER))]);
const TXN_MARKER: Type = structure(&[
    field("producer_id", INT64),
    field("producer_epoch", INT16),
    field("transaction_result", BOOL),
    field("topics", array(&TXN_MARKER_TOPIC)),
    field("coordinator_epoch", INT32),
]);
const TXN_MARKER_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partition_indexes", array(&INT32)),
]);

pub const TXN_OFFSET_COMMIT: MessageSchema = message(
    0..=5,
    3,
    &[
        field("transactional_id", STRING),
        field("group_id", STRING),
        field("producer_id", INT64),
        field("producer_epoch", INT16),
        field("generation_id", INT32).since(3),
        field("member_id", STRING).since(3),
        field("group_instance_id", nullable(STRING)).since(3),
        field("topics", array(&TXN_OFFSET_COMMIT_TOPIC)),
    ],
);
const TXN_OFFSET_COMMIT_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partitions", array(&TXN_OFFSET_COMMIT_PARTITION)),
]);
const TXN_OFFSET_COMMIT_PARTITION: Type = structure(&[
    field("partition_index", INT32),
    field("committed_offset", INT64),
    field("committed_leader_epoch", INT32).since(2),
    field("committed_metadata", nullable(STRING)),
]);

pub const DESCRIBE_PRODUCERS: MessageSchema =
    message(0..=0, 0, &[field("topics", array(&PRODUCERS_TOPIC))]);
const PRODUCERS_TOPIC: Type = structure(&[
    field("name", STRING),
    field("partition_indexes", array(&INT32)),
]);

pub const DESCRIBE_TRANSACTIONS: MessageSchema =
    message(0..=0, 0, &[field("transactional_ids", array(&STRING))]);

pub const LIST_TRANSACTIONS: MessageSchema = message(
    0..=2,
    0,
    &[
        field("state_filters", array(&STRING)),
        field("producer_id_filters", array(&INT64)),
        field("duration_filter", INT64).since(1),
        field("transactional_id_pattern", nullable(STRING)).since(2),
    ],
);
