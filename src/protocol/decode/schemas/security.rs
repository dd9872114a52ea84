//! ACLs, quotas, SCRAM credentials and delegation tokens.

use crate::protocol::decode::schema::*;

/// Shared by DescribeAcls (the whole body) and DeleteAcls (each filter).
const ACL_FILTER: &[Field] = &[
    field("resource_type_filter", INT8),
    field("resource_name_filter", nullable(STRING)),
    field("pattern_type_filter", INT8),
    field("principal_filter", nullable(STRING)),
    field("host_filter", nullable(STRING)),
    field("operation", INT8),
    field("permission_type", INT8),
];

pub const DESCRIBE_ACLS: MessageSchema = message(1..=3, 2, ACL_FILTER);

pub const CREATE_ACLS: MessageSchema =
    message(1..=3, 2, &[field("creations", array(&ACL_CREATION))]);
const ACL_CREATION: Type = structure(&[
    field("resource_type", INT8),
    field("resource_name", STRING),
    field("resource_pattern_type", INT8),
    field("principal", STRING),
    field("host", STRING),
    field("operation", INT8),
    field("permission_type", INT8),
]);

pub const DELETE_ACLS: MessageSchema =
    message(1..=3, 2, &[field("filters", array(&structure(ACL_FILTER)))]);

pub const DESCRIBE_CLIENT_QUOTAS: MessageSchema = message(
    0..=1,
    1,
    &[
        field("components", array(&QUOTA_COMPONENT)),
        field("strict", BOOL),
    ],
);
const QUOTA_COMPONENT: Type = structure(&[
    field("entity_type", STRING),
    field("match_type", INT8),
    field("match", nullable(STRING)),
]);

pub const ALTER_CLIENT_QUOTAS: MessageSchema = message(
    0..=1,
    1,
    &[
        field("entries", array(&QUOTA_ENTRY)),
        field("validate_only", BOOL),
    ],
);
const QUOTA_ENTRY: Type = structure(&[
    field("entity", array(&QUOTA_ENTITY)),
    field("ops", array(&QUOTA_OP)),
]);
const QUOTA_ENTITY: Type = structure(&[
    field("entity_type", STRING),
    field("entity_name", nullable(STRING)),
]);
const QUOTA_OP: Type = structure(&[
    field("key", STRING),
    field("value", FLOAT64),
    field("remove", BOOL),
]);

pub const DESCRIBE_USER_SCRAM_CREDENTIALS: MessageSchema = message(
    0..=0,
    0,
    &[field(
        "users",
        nullable(array(&structure(&[field("name", STRING)]))),
    )],
);

pub const ALTER_USER_SCRAM_CREDENTIALS: MessageSchema = message(
    0..=0,
    0,
    &[
        field("deletions", array(&SCRAM_DELETION)),
        field("upsertions", array(&SCRAM_UPSERTION)),
    ],
);
const SCRAM_DELETION: Type = structure(&[field("name", STRING), field("mechanism", INT8)]);
const SCRAM_UPSERTION: Type = structure(&[
    field("name", STRING),
    field("mechanism", INT8),
    field("iterations", INT32),
    field("salt", BYTES),
    field("salted_password", BYTES),
]);

pub const CREATE_DELEGATION_TOKEN: MessageSchema = message(
    1..=3,
    2,
    &[
        field("owner_principal_type", nullable(STRING)).since(3),
        field("owner_principal_name", nullable(STRING)).since(3),
        field("renewers", array(&PRINCIPAL)),
        field("max_lifetime_ms", INT64),
    ],
);
const PRINCIPAL: Type = structure(&[
    field("principal_type", STRING),
    field("principal_name", STRING),
]);

pub const RENEW_DELEGATION_TOKEN: MessageSchema = message(
    1..=2,
    2,
    &[field("hmac", BYTES), field("renew_period_ms", INT64)],
);

pub const EXPIRE_DELEGATION_TOKEN: MessageSchema = message(
    1..=2,
    2,
    &[field("hmac", BYTES), field("expiry_time_period_ms", INT64)],
);

pub const DESCRIBE_DELEGATION_TOKEN: MessageSchema =
    message(1..=3, 2, &[field("owners", nullable(array(&PRINCIPAL)))]);
