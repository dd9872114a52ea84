//! The filters every node runs, one file each, and the order they run in.
//!
//! The address rewrites come first among the built-ins: every response that carries a
//! broker address is decoded, its addresses replaced through the [`Directory`], and
//! encoded again, so no real broker host or port ever reaches a client. Responses that
//! carry none pass through as the broker's bytes. Governance features add their filters
//! to [`built_in`] as they arrive.

mod acl;
mod api_versions;
pub mod breaker;
mod describe_cluster;
mod find_coordinator;
mod metadata;
mod node_endpoints;
mod offset_reset;
pub mod partial;
mod quota;
mod routing;
#[cfg(feature = "test-hooks")]
mod test_filter;
pub mod topic_names;
pub mod zone;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::Arc;

use kafka_protocol::protocol::StrBytes;

use arc_swap::ArcSwap;
use flotilla_config::Config;
use flotilla_raft::ControlState;

use super::filter::{Env, Filter};
use crate::backend::Clusters;
use crate::cluster::offset_resets::evictions::Evictions;
use crate::cluster::usage::FleetUsage;
use crate::directory::{Broker, Directory};
use crate::metrics::Metrics;

pub use api_versions::intersect_api_versions;
pub use quota::ConnectionQuota;

/// The chain of filters a node runs, in order: authorization first, so a refused
/// request meets no other filter; then the offset-reset fence, which answers the group
/// requests of a group under reset before anything else spends work on them (nothing
/// after it rewrites group requests); then breakers, so a held topic costs the brokers
/// nothing (and counts against no quota); then quotas, so a throttled request is held
/// before anything else is done for it; then zones, which may name a Fetch's rack; then
/// routing, last among those that act on requests, since its exchanges answer them (and
/// the address rewrites run over those answers as over a broker's).
pub fn built_in(
    directory: &Arc<Directory>,
    config: &Config,
    (metrics, usage, evictions): (&Arc<Metrics>, &Arc<FleetUsage>, &Arc<Evictions>),
    (clusters, control): (&Arc<Clusters>, &Arc<ArcSwap<ControlState>>),
) -> Vec<Box<dyn Filter>> {
    let names = directory.topic_names.clone();
    let mut filters: Vec<Box<dyn Filter>> = Vec::new();
    if let Some(acl) = &config.acl {
        filters.push(Box::new(acl::Authorization::new(acl, metrics, &names)));
    }
    filters.push(Box::new(offset_reset::OffsetResets::new(
        metrics, evictions,
    )));
    let meter = Arc::new(breaker::meter::TopicMeter::default());
    usage.register(meter.clone());
    filters.push(Box::new(breaker::Breakers::new(&names, &meter, metrics)));
    filters.push(Box::new(quota::Quotas::new(usage, metrics)));
    filters.push(Box::new(zone::Zones::new(&directory.placement)));
    filters.push(Box::new(routing::Routing::new(
        clusters, directory, control,
    )));
    filters.extend::<[Box<dyn Filter>; 5]>([
        Box::new(api_versions::ApiVersionsNarrowing),
        Box::new(metadata::MetadataAddresses::new(directory)),
        Box::new(find_coordinator::CoordinatorAddresses::new(directory)),
        Box::new(describe_cluster::DescribeClusterAddresses::new(directory)),
        Box::new(node_endpoints::NodeEndpointAddresses::new(directory)),
    ]);
    #[cfg(feature = "test-hooks")]
    filters.extend(test_filter::from_env());
    filters
}

/// Where a response's broker addresses point for the client reading it: the directory's
/// advertised addresses over the client's own transport (a TLS client is told TLS ports),
/// for the client's zone (see [`zone`]), worked out on the first address rewritten.
struct Addressing<'a> {
    dir: &'a Directory,
    env: &'a Env<'a>,
    zone: OnceCell<Option<Cow<'a, str>>>,
}

impl<'a> Addressing<'a> {
    fn new(dir: &'a Directory, env: &'a Env<'a>) -> Self {
        Addressing {
            dir,
            env,
            zone: OnceCell::new(),
        }
    }

    fn zone(&self) -> Option<&str> {
        let env = self.env;
        self.zone
            .get_or_init(|| zone::client_zone(env.session, env.control, &self.dir.placement))
            .as_deref()
    }

    /// Replaces one broker address with the address clients are told for that identity.
    /// Returns false when the identity cannot be advertised and the entry must be dropped.
    fn readdress(
        &self,
        id: i32,
        host: &mut StrBytes,
        port: &mut i32,
        rack: Option<&StrBytes>,
    ) -> bool {
        let broker = Broker {
            id,
            host: host.to_string(),
            port: u16::try_from(*port).unwrap_or(0),
            rack: rack.map(|r| r.to_string()),
        };
        match self
            .dir
            .advertise(&broker, self.env.session.transport, self.zone())
        {
            Some((new_host, new_port)) => {
                *host = new_host;
                *port = new_port;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use bytes::{Bytes, BytesMut};
    use flotilla_raft::ControlState;
    use kafka_protocol::messages::{ApiKey, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable};

    use crate::proxy::filter::{Env, Filter, Listener, Session, Transport};
    use crate::proxy::message::Response;

    /// Encodes a response as a broker would send it (without the size prefix).
    pub fn broker_response<T: Encodable>(api_key: ApiKey, version: i16, body: &T) -> Bytes {
        let header = ResponseHeader::default().with_correlation_id(77);
        let mut out = BytesMut::new();
        header
            .encode(&mut out, api_key.response_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        out.freeze()
    }

    /// Runs `filter` over a broker response, as the chain would, and returns the bytes the
    /// client would receive.
    pub fn filtered(filter: &dyn Filter, api_key: ApiKey, version: i16, frame: Bytes) -> Bytes {
        assert!(filter.wants_response(api_key, version));
        let session = Session::new(
            "127.0.0.1:1".parse().unwrap(),
            Listener::Bootstrap,
            Transport::Plaintext,
        );
        let control = ControlState::default();
        let env = Env {
            session: &session,
            control: &control,
        };
        let mut response = Response::new(api_key, version, frame);
        filter.on_response(&mut response, &env).unwrap();
        response.into_frame().unwrap()
    }

    /// What the client would decode after `filter` ran over a broker response.
    pub fn client_view<T: Decodable>(
        filter: &dyn Filter,
        api_key: ApiKey,
        version: i16,
        frame: Bytes,
    ) -> T {
        let mut out = filtered(filter, api_key, version, frame);
        assert_no_leak(&out);
        let header =
            ResponseHeader::decode(&mut out, api_key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 77);
        T::decode(&mut out, version).unwrap()
    }

    /// Fails if the real broker host occurs in the bytes.
    pub fn assert_no_leak(bytes: &[u8]) {
        let host = b"10.9.9.9";
        assert!(
            !bytes.windows(host.len()).any(|w| w == host),
            "real broker host leaked"
        );
    }
}
