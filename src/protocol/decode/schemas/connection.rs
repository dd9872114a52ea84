//! What a client sends on a new connection: version discovery, authentication and
//! telemetry.

use crate::protocol::decode::schema::*;

pub const SASL_HANDSHAKE: MessageSchema = rigid_message(0..=1, &[field("mechanism", STRING)]);

pub const API_VERSIONS: MessageSchema = message(
    0..=4,
    3,
    &[
        field("client_software_name", STRING).since(3),
        field("client_software_version", STRING).since(3),
    ],
);

pub const SASL_AUTHENTICATE: MessageSchema = message(0..=2, 2, &[field("auth_bytes", BYTES)]);

pub const GET_TELEMETRY_SUBSCRIPTIONS: MessageSchema =
    message(0..=0, 0, &[field("client_instance_id", UUID)]);

pub const PUSH_TELEMETRY: MessageSchema = message(
    0..=0,
    0,
    &[
        field("client_instance_id", UUID),
        field("subscription_id", INT32),
        field("terminating", BOOL),
        field("compression_type", INT8),
        field("metrics", BYTES),
    ],
);
