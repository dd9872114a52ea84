//! What the proxy reads of every frame: the request header, and for a Produce request
//! the `acks` field.
//!
//! Request bodies are never decoded on the way in. The header tells the connection loop
//! which API and version the matching response will be, so it can keep its FIFO of
//! in-flight requests without rewriting correlation ids. `acks` matters because an
//! acks=0 Produce gets no response at all and must not be queued.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, StrBytes};

/// The part of a request header the proxy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<StrBytes>,
    /// Bytes taken by the header; the body starts here.
    pub header_len: usize,
}

/// A request that the proxy refuses to forward.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("request of {0} bytes is shorter than a request header")]
    TooShort(usize),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of {api_key:?} (supported {min}..={max})")]
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("malformed {api_key:?} v{version} request: {reason}")]
    Malformed {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
}

impl HeaderError {
    /// A short stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            HeaderError::TooShort(_) => "short_request",
            HeaderError::UnknownApiKey(_) => "unknown_api_key",
            HeaderError::UnsupportedVersion { .. } => "unsupported_version",
            HeaderError::Malformed { .. } => "malformed_request",
        }
    }
}

/// Smallest request: api key, api version, correlation id, client id length.
const MIN_REQUEST: usize = 10;

/// Parses and checks the header of a request frame.
///
/// ApiVersions is exempt from the version check: a client may probe with a version newer
/// than anyone knows, and must get the v0 UNSUPPORTED_VERSION answer that tells it what to
/// use instead (see `rewrite::api_versions`).
pub fn parse_request(frame: &Bytes) -> Result<RequestMeta, HeaderError> {
    if frame.len() < MIN_REQUEST {
        return Err(HeaderError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| HeaderError::UnknownApiKey(raw_key))?;
    let range = api_key.valid_versions();
    let probing_api_versions = api_key == ApiKey::ApiVersions && api_version > range.max;
    if !probing_api_versions && !(range.min..=range.max).contains(&api_version) {
        return Err(HeaderError::UnsupportedVersion {
            api_key,
            version: api_version,
            min: range.min,
            max: range.max,
        });
    }
    let mut buf = frame.clone();
    let header = RequestHeader::decode(&mut buf, api_key.request_header_version(api_version))
        .map_err(|e| malformed(api_key, api_version, e))?;
    Ok(RequestMeta {
        api_key,
        api_version,
        correlation_id: header.correlation_id,
        client_id: header.client_id,
        header_len: frame.len() - buf.remaining(),
    })
}

/// The `acks` of a Produce request, read without decoding its record batches.
pub fn produce_acks(frame: &Bytes, meta: &RequestMeta) -> Result<i16, HeaderError> {
    debug_assert_eq!(meta.api_key, ApiKey::Produce);
    let mut body = frame.slice(meta.header_len..);
    let fail = |e: String| malformed(meta.api_key, meta.api_version, e);
    // Produce v3+ starts with the transactional id; v9+ is flexible (compact string).
    skip_nullable_string(&mut body, meta.api_version >= 9).map_err(fail)?;
    body.try_get_i16().map_err(|e| fail(e.to_string()))
}

/// Skips a nullable string: an int16 length, or in flexible versions an unsigned varint
/// of length + 1; null is -1 or 0 respectively.
fn skip_nullable_string(body: &mut Bytes, compact: bool) -> Result<(), String> {
    let len = if compact {
        i64::from(read_unsigned_varint(body)?) - 1
    } else {
        i64::from(body.try_get_i16().map_err(|e| e.to_string())?)
    };
    let len = usize::try_from(len).unwrap_or(0);
    if body.remaining() < len {
        return Err(format!("string of {len} bytes runs past the end"));
    }
    body.advance(len);
    Ok(())
}

fn read_unsigned_varint(body: &mut Bytes) -> Result<u32, String> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = body.try_get_u8().map_err(|e| e.to_string())?;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 5 bytes".into())
}

fn malformed(api_key: ApiKey, version: i16, e: impl std::fmt::Display) -> HeaderError {
    HeaderError::Malformed {
        api_key,
        version,
        reason: e.to_string(),
    }
}

/// The correlation id at the start of every response header.
pub fn response_correlation_id(frame: &[u8]) -> Option<i32> {
    let id = frame.get(..4)?;
    Some(i32::from_be_bytes([id[0], id[1], id[2], id[3]]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{ProduceRequest, TransactionalId};
    use kafka_protocol::protocol::Encodable;
    use proptest::prelude::*;

    /// Encodes a request header and body as a client would (without the size prefix).
    pub fn encode_request<R: Encodable>(
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &R,
    ) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test-client")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn reads_header_of_every_produce_version_and_its_acks() {
        let range = ApiKey::Produce.valid_versions();
        for version in range.min..=range.max {
            for acks in [-1i16, 0, 1] {
                let mut request = ProduceRequest::default().with_acks(acks);
                if version >= 3 {
                    request.transactional_id =
                        Some(TransactionalId(StrBytes::from_static_str("tx-1")));
                }
                let frame = encode_request(ApiKey::Produce, version, 42, &request);
                let meta = parse_request(&frame).unwrap();
                assert_eq!(meta.correlation_id, 42);
                assert_eq!(meta.client_id.as_deref(), Some("test-client"));
                assert_eq!(produce_acks(&frame, &meta).unwrap(), acks, "v{version}");
            }
        }
    }

    #[test]
    fn refuses_unknown_keys_and_versions() {
        let mut frame = vec![0x7f, 0x00, 0, 1, 0, 0, 0, 1, 0xff, 0xff];
        assert_eq!(
            parse_request(&Bytes::from(frame.clone())),
            Err(HeaderError::UnknownApiKey(0x7f00))
        );
        frame[..4].copy_from_slice(&[0, 3, 0x40, 0]); // Metadata v16384
        assert!(matches!(
            parse_request(&Bytes::from(frame.clone())),
            Err(HeaderError::UnsupportedVersion { .. })
        ));
        frame[..4].copy_from_slice(&[0, 18, 0, 99]); // ApiVersions v99 is a probe
        frame.push(0); // header v2: no tagged fields
        assert_eq!(
            parse_request(&Bytes::from(frame)).unwrap().api_key,
            ApiKey::ApiVersions
        );
        assert_eq!(
            parse_request(&Bytes::from_static(&[0, 3])),
            Err(HeaderError::TooShort(2))
        );
    }

    #[test]
    fn truncated_produce_body_is_malformed() {
        let frame = encode_request(ApiKey::Produce, 9, 1, &ProduceRequest::default());
        let meta = parse_request(&frame).unwrap();
        let cut = frame.slice(..meta.header_len + 1);
        assert!(matches!(
            produce_acks(&cut, &meta),
            Err(HeaderError::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let frame = Bytes::from(bytes);
            if let Ok(meta) = parse_request(&frame) {
                prop_assert!(meta.header_len <= frame.len());
                if meta.api_key == ApiKey::Produce {
                    let _ = produce_acks(&frame, &meta);
                }
            }
        }
    }
}
