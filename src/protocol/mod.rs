//! The Kafka wire format as the proxy needs it, and nothing of the node: framing, what is
//! read of every request header, safe decoding of request bodies that come from
//! untrusted clients, and the error answers the proxy builds itself.
//!
//! Everything here depends only on `bytes` and `kafka-protocol`, so the data path, the
//! filters and the tests can all use it without pulling in the rest of the node.

pub mod batches;
pub mod decode;
pub mod error_response;
pub mod frame;
pub mod header;
pub mod topic_scan;

use std::collections::HashMap;
use std::sync::OnceLock;

use kafka_protocol::ResponseError;

/// Kafka's name of an error code (`NOT_LEADER_OR_FOLLOWER`), for metric labels and
/// messages; codes this build does not know share `UNKNOWN_CODE`, so a label stays bounded.
pub fn error_name(code: i16) -> &'static str {
    static NAMES: OnceLock<HashMap<i16, &'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        (-1..=256)
            .filter_map(|code| {
                let error = ResponseError::try_from_code(code)?;
                let name: &'static str =
                    Box::leak(screaming_snake(&format!("{error:?}")).into_boxed_str());
                Some((code, name))
            })
            .collect()
    });
    names.get(&code).copied().unwrap_or("UNKNOWN_CODE")
}

/// `NotLeaderOrFollower` as `NOT_LEADER_OR_FOLLOWER`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}
