//! Safe decoding of request bodies from untrusted clients.
//!
//! kafka-protocol decodes an array by reserving room for the element count read off the
//! wire (`Vec::with_capacity(n)`), before it reads a single element. A 10-byte body that
//! claims 2^31 elements therefore makes the allocator fail, which aborts the whole proxy,
//! not just one connection. Every body is first walked by a schema of its own that checks
//! each count and length against the bytes actually left, allocating nothing; only a body
//! that passes is handed to kafka-protocol, whose counts are then all bounded by the body
//! size. Decoding stays zero-copy: strings, bytes and record batches are slices of the
//! frame.

pub mod schema;
mod schemas;
mod walker;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::Request;

use super::header::RequestMeta;
pub use schemas::request_schema;
pub use walker::{BODY_BYTES_PER_UNKNOWN_TAG, FREE_UNKNOWN_TAGS};

/// Why a request body was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An API key without a schema. Every key kafka-protocol 0.18 knows has one; this is
    /// for keys a later kafka-protocol adds before their schemas are written.
    #[error("no schema for {api_key:?} request bodies")]
    NoSchema { api_key: ApiKey },
    /// A version kafka-protocol cannot decode, though it may be in
    /// `ApiKey::valid_versions` (see [`decodable_versions`]).
    #[error("{api_key:?} v{version} request bodies cannot be decoded")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    #[error("malformed {api_key:?} v{version} request body at byte {offset}: {reason}")]
    Malformed {
        api_key: ApiKey,
        version: i16,
        /// Offset in the body (not the frame) of the offending item.
        offset: usize,
        reason: String,
    },
}

impl DecodeError {
    /// A short stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::NoSchema { .. } => "no_body_schema",
            DecodeError::UnsupportedVersion { .. } => "undecodable_body_version",
            DecodeError::Malformed { .. } => "malformed_body",
        }
    }
}

/// The versions of `api_key` whose bodies can be decoded.
///
/// Usually `api_key.valid_versions()`, but kafka-protocol 0.18 lists OffsetCommit v10,
/// OffsetFetch v10 and InitProducerId v6 there without being able to decode them.
pub fn decodable_versions(api_key: ApiKey) -> Option<schema::Versions> {
    request_schema(api_key).map(|schema| schema.versions)
}

/// Checks that `body` (the bytes after the request header) starts with one well-formed
/// request of `api_key` and `version`, allocating nothing unless it does not. Bytes after
/// the request are ignored, as brokers ignore them.
pub fn validate(api_key: ApiKey, version: i16, body: &[u8]) -> Result<(), DecodeError> {
    message_length(api_key, version, body).map(|_| ())
}

/// How many bytes of `body` the request takes, once it is known to be well-formed.
fn message_length(api_key: ApiKey, version: i16, body: &[u8]) -> Result<usize, DecodeError> {
    let schema = request_schema(api_key).ok_or(DecodeError::NoSchema { api_key })?;
    if !schema.versions.contains(version) {
        return Err(DecodeError::UnsupportedVersion { api_key, version });
    }
    walker::walk(schema, version, body).map_err(|e| DecodeError::Malformed {
        api_key,
        version,
        offset: e.offset,
        reason: format!("`{}`: {}", e.field, e.problem),
    })
}

/// Decodes a request body after [`validate`] has made that safe.
pub fn decode_request(
    api_key: ApiKey,
    version: i16,
    body: &Bytes,
) -> Result<RequestKind, DecodeError> {
    let length = message_length(api_key, version, body)?;
    let mut rest = body.clone();
    let decoded = RequestKind::decode(api_key, &mut rest, version);
    finish(api_key, version, length, body, &rest, decoded)
}

/// Decodes the body of the request in `frame`, whose header `meta` describes.
pub fn decode_frame(frame: &Bytes, meta: &RequestMeta) -> Result<RequestKind, DecodeError> {
    decode_request(
        meta.api_key,
        meta.api_version,
        &frame.slice(meta.header_len..),
    )
}

/// Like [`decode_request`], for a caller that knows which request it expects.
pub fn decode_body<T: Request>(version: i16, body: &Bytes) -> Result<T, DecodeError> {
    let api_key = ApiKey::try_from(T::KEY).expect("kafka-protocol request types have known keys");
    let length = message_length(api_key, version, body)?;
    let mut rest = body.clone();
    let decoded = T::decode(&mut rest, version);
    finish(api_key, version, length, body, &rest, decoded)
}

/// kafka-protocol reads what the walker accepted; disagreement means a schema is wrong,
/// so it is reported rather than trusted.
fn finish<T>(
    api_key: ApiKey,
    version: i16,
    length: usize,
    body: &Bytes,
    rest: &Bytes,
    decoded: anyhow::Result<T>,
) -> Result<T, DecodeError> {
    let offset = body.len() - rest.remaining();
    let disagreement = |reason: String| DecodeError::Malformed {
        api_key,
        version,
        offset,
        reason: format!("kafka-protocol disagrees with the schema: {reason}"),
    };
    match decoded {
        Ok(_) if offset != length => Err(disagreement(format!(
            "it read {offset} bytes where the schema has {length}"
        ))),
        Ok(request) => Ok(request),
        Err(e) => Err(disagreement(format!("{e:#}"))),
    }
}
