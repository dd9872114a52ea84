//! Response rewrites: every response that carries a broker address is decoded, its
//! addresses replaced through the [`Directory`], and encoded again. Everything else is
//! passed through as the broker sent it, byte for byte.
//!
//! One file per rewritten API. Each rewrite reports whether it changed anything, so an
//! untouched response (a Fetch without node endpoints, the common case) is forwarded as
//! the original bytes rather than a re-encoding.

mod api_versions;
mod describe_cluster;
mod find_coordinator;
mod metadata;
mod node_endpoints;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterResponse, FetchResponse, FindCoordinatorResponse, MetadataResponse,
    ProduceResponse, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::directory::Directory;

pub use api_versions::intersect_api_versions;

/// A broker response the proxy could not decode or encode.
#[derive(Debug, thiserror::Error)]
#[error("cannot rewrite {api_key:?} v{version} response: {reason}")]
pub struct RewriteError {
    pub api_key: ApiKey,
    pub version: i16,
    pub reason: String,
}

/// Whether responses of this API and version may carry broker addresses.
pub fn needs_rewrite(api_key: ApiKey, version: i16) -> bool {
    match api_key {
        ApiKey::Metadata
        | ApiKey::FindCoordinator
        | ApiKey::DescribeCluster
        | ApiKey::ApiVersions => true,
        ApiKey::Produce => version >= node_endpoints::PRODUCE_MIN_VERSION,
        ApiKey::Fetch => version >= node_endpoints::FETCH_MIN_VERSION,
        _ => false,
    }
}

/// Rewrites one response frame (without its size prefix) for the client.
pub fn response(
    dir: &Directory,
    api_key: ApiKey,
    version: i16,
    frame: Bytes,
) -> Result<Bytes, RewriteError> {
    let fail = |reason: String| RewriteError {
        api_key,
        version,
        reason,
    };
    match api_key {
        ApiKey::Metadata => {
            edit::<MetadataResponse>(frame, api_key, version, |r| metadata::rewrite(r, dir))
        }
        ApiKey::FindCoordinator => edit::<FindCoordinatorResponse>(frame, api_key, version, |r| {
            find_coordinator::rewrite(r, version, dir)
        }),
        ApiKey::DescribeCluster => edit::<DescribeClusterResponse>(frame, api_key, version, |r| {
            describe_cluster::rewrite(r, dir)
        }),
        ApiKey::Produce | ApiKey::Fetch
            if node_endpoints::carries_endpoints(api_key, version, &frame) == Some(false) =>
        {
            Ok(frame)
        }
        ApiKey::Produce if needs_rewrite(api_key, version) => {
            edit::<ProduceResponse>(frame, api_key, version, |r| {
                node_endpoints::rewrite_produce(r, dir)
            })
        }
        ApiKey::Fetch if needs_rewrite(api_key, version) => {
            edit::<FetchResponse>(frame, api_key, version, |r| {
                node_endpoints::rewrite_fetch(r, dir)
            })
        }
        ApiKey::ApiVersions => api_versions::rewrite(frame, version),
        _ => Ok(frame),
    }
    .map_err(fail)
}

/// Decodes a response, lets `change` edit it, and re-encodes it if it changed.
fn edit<T: Decodable + Encodable>(
    frame: Bytes,
    api_key: ApiKey,
    version: i16,
    change: impl FnOnce(&mut T) -> bool,
) -> Result<Bytes, String> {
    let header_version = api_key.response_header_version(version);
    let mut buf = frame.clone();
    let header = ResponseHeader::decode(&mut buf, header_version).map_err(|e| e.to_string())?;
    let mut body = T::decode(&mut buf, version).map_err(|e| e.to_string())?;
    if !buf.is_empty() {
        return Err(format!("{} bytes left after the body", buf.len()));
    }
    if !change(&mut body) {
        return Ok(frame);
    }
    encode(&header, header_version, &body, version)
}

fn encode<T: Encodable>(
    header: &ResponseHeader,
    header_version: i16,
    body: &T,
    version: i16,
) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    header
        .encode(&mut out, header_version)
        .map_err(|e| e.to_string())?;
    body.encode(&mut out, version).map_err(|e| e.to_string())?;
    Ok(out.freeze())
}

/// Replaces one broker address with the address clients are told for that identity.
/// Returns false when the identity cannot be advertised and the entry must be dropped.
fn readdress(
    dir: &Directory,
    id: i32,
    host: &mut kafka_protocol::protocol::StrBytes,
    port: &mut i32,
    rack: Option<&kafka_protocol::protocol::StrBytes>,
) -> bool {
    let broker = crate::directory::Broker {
        id,
        host: host.to_string(),
        port: u16::try_from(*port).unwrap_or(0),
        rack: rack.map(|r| r.to_string()),
    };
    match dir.advertise(&broker) {
        Some((new_host, new_port)) => {
            *host = new_host;
            *port = new_port;
            true
        }
        None => false,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Encodes a response as a broker would send it (without the size prefix).
    pub fn broker_response<T: Encodable>(api_key: ApiKey, version: i16, body: &T) -> Bytes {
        let header = ResponseHeader::default().with_correlation_id(77);
        encode(
            &header,
            api_key.response_header_version(version),
            body,
            version,
        )
        .unwrap()
    }

    /// Runs the rewrite and decodes what the client would receive.
    pub fn client_view<T: Decodable>(
        dir: &Directory,
        api_key: ApiKey,
        version: i16,
        frame: Bytes,
    ) -> T {
        let mut out = response(dir, api_key, version, frame).unwrap();
        assert_no_leak(&out);
        let header =
            ResponseHeader::decode(&mut out, api_key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 77);
        T::decode(&mut out, version).unwrap()
    }

    /// Fails if the real broker host or any of the given ports occur in the bytes.
    pub fn assert_no_leak(bytes: &[u8]) {
        let host = b"10.9.9.9";
        assert!(
            !bytes.windows(host.len()).any(|w| w == host),
            "real broker host leaked"
        );
    }
}
