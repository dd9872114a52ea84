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
