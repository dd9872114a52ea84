//! Share groups (queues): membership, fetching, acknowledging, and the state the share
//! coordinator keeps.

use crate::protocol::decode::schema::*;

pub const SHARE_GROUP_HEARTBEAT: MessageSchema = message(
    1..=1,
    1,
    &[
        field("group_id", STRING),
        field("member_id", STRING),
        field("member_epoch", INT32),
        field("rack_id", nullable(STRING)),
        field("subscribed_topic_names", nullable(array(&STRING))),
    ],
);

pub const SHARE_GROUP_DESCRIBE: MessageSchema = message(
    1..=1,
    1,
    &[
        field("group_ids", array(&STRING)),
        field("include_authorized_operations", BOOL),
    ],
);

pub const SHARE_FETCH: MessageSchema = message(
    1..=1,
    1,
    &[
        field("group_id", nullable(STRING)),
        field("member_id", nullable(STRING)),
        field("share_session_epoch", INT32),
        field("max_wait_ms", INT32),
        field("min_bytes", INT32),
        field("max_bytes", INT32),
        field("max_records", INT32),
        field("batch_size", INT32),
        field("topics", array(&SHARE_FETCH_TOPIC)),
        field("forgotten_topics_data", array(&TOPIC_ID_PARTITIONS)),
    ],
);
const SHARE_FETCH_TOPIC: Type = structure(&[
    field("topic_id", UUID),
    field("partitions", array(&ACKNOWLEDGED_PARTITION)),
]);
const TOPIC_ID_PARTITIONS: Type =
    structure(&[field("topic_id", UUID), field("partitions", array(&INT32))]);
const ACKNOWLEDGED_PARTITION: Type = structure(&[
    field("partition_index", INT32),
    field("acknowledgement_batches", array(&ACKNOWLEDGEMENT_BATCH)),
]);
const ACKNOWLEDGEMENT_BATCH: Type = structure(&[
    field("first_offset", INT64),
    field("last_offset", INT64),
    field("acknowledge_types", array(&INT8)),
]);

pub const SHARE_ACKNOWLEDGE: MessageSchema = message(
    1..=1,
    1,
    &[
        field("group_id", nullable(STRING)),
        field("member_id", nullable(STRING)),
        field("share_session_epoch", INT32),
        field("topics", array(&SHARE_FETCH_TOPIC)),
    ],
);

/// The share-coordinator state requests all address partitions of topics by id.
const fn state_request(partition: &'static Type) -> [Field; 2] {
    [field("group_id", STRING), field("topics", array(partition))]
}

pub const INITIALIZE_SHARE_GROUP_STATE: MessageSchema =
    message(0..=0, 0, &state_request(&INITIALIZE_STATE_TOPIC));
const INITIALIZE_STATE_TOPIC: Type = structure(&[
    field("topic_id", UUID),
    field(
        "partitions",
        array(&structure(&[
            field("partition", INT32),
            field("state_epoch", INT32),
            field("start_offset", INT64),
        ])),
    ),
]);

pub const READ_SHARE_GROUP_STATE: MessageSchema =
    message(0..=0, 0, &state_request(&READ_STATE_TOPIC));
pub const READ_SHARE_GROUP_STATE_SUMMARY: MessageSchema =
    message(0..=0, 0, &state_request(&READ_STATE_TOPIC));
const READ_STATE_TOPIC: Type = structure(&[
    field("topic_id", UUID),
    field(
        "partitions",
        array(&structure(&[
            field("partition", INT32),
            field("leader_epoch", INT32),
        ])),
    ),
]);

pub const WRITE_SHARE_GROUP_STATE: MessageSchema =
    message(0..=0, 0, &state_request(&WRITE_STATE_TOPIC));
const WRITE_STATE_TOPIC: Type = structure(&[
    field("topic_id", UUID),
    field("partitions", array(&WRITE_STATE_PARTITION)),
]);
const WRITE_STATE_PARTITION: Type = structure(&[
    field("partition", INT32),
    field("state_epoch", INT32),
    field("leader_epoch", INT32),
    field("start_offset", INT64),
    field("state_batches", array(&STATE_BATCH)),
]);
const STATE_BATCH: Type = structure(&[
    field("first_offset", INT64),
    field("last_offset", INT64),
    field("delivery_state", INT8),
    field("delivery_count", INT16),
]);

pub const DELETE_SHARE_GROUP_STATE: MessageSchema =
    message(0..=0, 0, &state_request(&DELETE_STATE_TOPIC));
const DELETE_STATE_TOPIC: Type = structure(&[
    field("topic_id", UUID),
    field(
        "partitions",
        array(&structure(&[field("partition", INT32)])),
    ),
]);

pub const DESCRIBE_SHARE_GROUP_OFFSETS: MessageSchema =
    message(0..=0, 0, &[field("groups", array(&DESCRIBE_OFFSETS_GROUP))]);
const DESCRIBE_OFFSETS_GROUP: Type = structure(&[
    field("group_id", STRING),
    field(
        "topics",
        nullable(array(&structure(&[
            field("topic_name", STRING),
            field("partitions", array(&INT32)),
        ]))),
    ),
]);

pub const ALTER_SHARE_GROUP_OFFSETS: MessageSchema = message(
    0..=0,
    0,
    &[
        field("group_id", STRING),
        field("topics", array(&ALTER_OFFSETS_TOPIC)),
    ],
);
const ALTER_OFFSETS_TOPIC: Type = structure(&[
    field("topic_name", STRING),
    field(
        "partitions",
        array(&structure(&[
            field("partition_index", INT32),
            field("start_offset", INT64),
        ])),
    ),
]);

pub const DELETE_SHARE_GROUP_OFFSETS: MessageSchema = message(
    0..=0,
    0,
    &[
        field("group_id", STRING),
        field("topics", array(&structure(&[field("topic_name", STRING)]))),
    ],
);
