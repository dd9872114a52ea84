//! KIP-951 node endpoints: since Produce v10 and Fetch v16, a response that reports a
//! leader change also carries the new leader's address, so the client can skip a Metadata
//! round trip. Those addresses are real broker addresses and must be rewritten like
//! Metadata's. Responses without endpoints (nearly all) are left as the broker's bytes.
//!
//! Produce and Fetch responses are the hot path, so whether a response carries endpoints
//! is found by [`carries_endpoints`], a walk over the wire format that allocates nothing
//! and skips record data by its length; only a response that does carry them is decoded
//! and re-encoded.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceResponse, ResponseKind};

use super::Addressing;
use crate::directory::Directory;
use crate::proxy::filter::{Env, Filter};
use crate::proxy::message::Response;

pub const PRODUCE_MIN_VERSION: i16 = 10;
pub const FETCH_MIN_VERSION: i16 = 16;

/// The top-level tagged field that holds the node endpoints, in both APIs.
const NODE_ENDPOINTS_TAG: u64 = 0;

pub struct NodeEndpointAddresses {
    directory: Arc<Directory>,
}

impl NodeEndpointAddresses {
    pub fn new(directory: &Arc<Directory>) -> Self {
        NodeEndpointAddresses {
            directory: directory.clone(),
        }
    }
}

impl Filter for NodeEndpointAddresses {
    fn name(&self) -> &'static str {
        "node-endpoint-addresses"
    }

    fn wants_response(&self, api_key: ApiKey, version: i16) -> bool {
        match api_key {
            ApiKey::Produce => version >= PRODUCE_MIN_VERSION,
            ApiKey::Fetch => version >= FETCH_MIN_VERSION,
            _ => false,
        }
    }

    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        let (api_key, version) = (response.api_key(), response.version());
        if carries_endpoints(api_key, version, response.frame()) == Some(false) {
            return Ok(());
        }
        let to = Addressing::new(&self.directory, env);
        response.edit(|body| match body {
            ResponseKind::Produce(body) => rewrite_produce(body, to),
            ResponseKind::Fetch(body) => rewrite_fetch(body, to),
            _ => false,
        })
    }
}

fn rewrite_produce(response: &mut ProduceResponse, to: Addressing) -> bool {
    let endpoints = &mut response.node_endpoints;
    let had_any = !endpoints.is_empty();
    endpoints.retain_mut(|e| to.readdress(e.node_id.0, &mut e.host, &mut e.port, e.rack.as_ref()));
    had_any
}

fn rewrite_fetch(response: &mut FetchResponse, to: Addressing) -> bool {
    let endpoints = &mut response.node_endpoints;
    let had_any = !endpoints.is_empty();
    endpoints.retain_mut(|e| to.readdress(e.node_id.0, &mut e.host, &mut e.port, e.rack.as_ref()));
    had_any
}

/// Whether a Produce (v10 to v13) or Fetch (v16 to v18) response frame, header included,
/// carries node endpoints. `None` when the frame does not walk as that response (or the
/// version is unknown here): the caller then decodes it fully, which says what is wrong.
pub fn carries_endpoints(api_key: ApiKey, version: i16, frame: &[u8]) -> Option<bool> {
    let mut walk = Walk(frame);
    walk.skip(4)?; // correlation id
    walk.skip_tagged_fields()?;
    match (api_key, version) {
        (ApiKey::Produce, PRODUCE_MIN_VERSION..=13) => walk.produce_body(version)?,
        (ApiKey::Fetch, FETCH_MIN_VERSION..=18) => walk.fetch_body()?,
        _ => return None,
    }
    let found = walk.has_tag(NODE_ENDPOINTS_TAG)?;
    walk.0.is_empty().then_some(found)
}

/// A cursor over a flexible-version message that only skips.
struct Walk<'a>(&'a [u8]);

impl Walk<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }

    fn unsigned_varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..5 {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A compact length: N + 1, with 0 for null.
    fn compact_len(&mut self) -> Option<usize> {
        usize::try_from(self.unsigned_varint()?.saturating_sub(1)).ok()
    }

    /// A compact string or byte array, nullable or not.
    fn skip_compact_bytes(&mut self) -> Option<()> {
        let len = self.compact_len()?;
        self.skip(len)
    }

    /// A compact array, each element walked by `element`.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        for _ in 0..self.compact_len()? {
            element(self)?;
        }
        Some(())
    }

    /// A tagged-field section; whether it holds `wanted`.
    fn has_tag(&mut self, wanted: u64) -> Option<bool> {
        let mut found = false;
        for _ in 0..self.unsigned_varint()? {
            found |= self.unsigned_varint()? == wanted;
            let size = usize::try_from(self.unsigned_varint()?).ok()?;
            self.skip(size)?;
        }
        Some(found)
    }

    fn skip_tagged_fields(&mut self) -> Option<()> {
        self.has_tag(u64::MAX).map(|_| ())
    }

    fn produce_body(&mut self, version: i16) -> Option<()> {
        self.array(|topic| {
            if version >= 13 {
                topic.skip(16)?; // topic id
            } else {
                topic.skip_compact_bytes()?; // name
            }
            topic.array(|partition| {
                // index, error code, base offset, log append time, log start offset
                partition.skip(4 + 2 + 8 + 8 + 8)?;
                partition.array(|record_error| {
                    record_error.skip(4)?;
                    record_error.skip_compact_bytes()?;
                    record_error.skip_tagged_fields()
                })?;
                partition.skip_compact_bytes()?; // error message
                partition.skip_tagged_fields()
            })?;
            topic.skip_tagged_fields()
        })?;
        self.skip(4) // throttle time
    }

    fn fetch_body(&mut self) -> Option<()> {
        self.skip(4 + 2 + 4)?; // throttle time, error code, session id
        self.array(|topic| {
            topic.skip(16)?; // topic id
            topic.array(|partition| {
                // index, error code, high watermark, last stable offset, log start offset
                partition.skip(4 + 2 + 8 + 8 + 8)?;
                partition.array(|aborted| {
                    aborted.skip(8 + 8)?;
                    aborted.skip_tagged_fields()
                })?;
                partition.skip(4)?; // preferred read replica
                partition.skip_compact_bytes()?; // records, never looked at
                partition.skip_tagged_fields()
            })?;
            topic.skip_tagged_fields()
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::{fetch_response, produce_response};
    use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, ProduceResponse};
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::directory::tests::directory;
    use crate::proxy::filters::test_support::*;

    fn filter() -> NodeEndpointAddresses {
        NodeEndpointAddresses::new(&Arc::new(directory(8)))
    }

    #[test]
    fn produce_endpoints_are_rewritten() {
        let filter = filter();
        for version in PRODUCE_MIN_VERSION..=13 {
            let body = ProduceResponse::default().with_node_endpoints(vec![
                produce_response::NodeEndpoint::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("10.9.9.9"))
                    .with_port(39093),
            ]);
            let frame = broker_response(ApiKey::Produce, version, &body);
            let out: ProduceResponse = client_view(&filter, ApiKey::Produce, version, frame);
            assert_eq!(out.node_endpoints[0].host.as_str(), "proxy.example");
            assert_eq!(out.node_endpoints[0].port, 9200);
        }
    }

    #[test]
    fn fetch_endpoints_are_rewritten_and_records_kept() {
        let filter = filter();
        let records = Bytes::from_static(b"opaque record batch bytes");
        for version in FETCH_MIN_VERSION..=18 {
            let partition =
                fetch_response::PartitionData::default().with_records(Some(records.clone()));
            let topic =
                fetch_response::FetchableTopicResponse::default().with_partitions(vec![partition]);
            let body = FetchResponse::default()
                .with_responses(vec![topic])
                .with_node_endpoints(vec![fetch_response::NodeEndpoint::default()
                    .with_node_id(BrokerId(5))
                    .with_host(StrBytes::from_static_str("10.9.9.9"))
                    .with_port(39094)]);
            let frame = broker_response(ApiKey::Fetch, version, &body);
            let out: FetchResponse = client_view(&filter, ApiKey::Fetch, version, frame);
            assert_eq!(out.node_endpoints[0].port, 9200);
            assert_eq!(
                out.responses[0].partitions[0].records,
                Some(records.clone())
            );
        }
    }

    #[test]
    fn responses_without_endpoints_pass_as_the_same_bytes() {
        let body = FetchResponse::default();
        let frame = broker_response(ApiKey::Fetch, 17, &body);
        let out = filtered(&filter(), ApiKey::Fetch, 17, frame.clone());
        assert_eq!(out.as_ptr(), frame.as_ptr(), "a pass-through must not copy");
    }

    fn produce(partitions: usize, errors: bool, endpoints: usize) -> ProduceResponse {
        let partition =
            produce_response::PartitionProduceResponse::default()
                .with_error_message(errors.then(|| StrBytes::from_static_str("not the leader")))
                .with_record_errors(if errors {
                    vec![produce_response::BatchIndexAndErrorMessage::default()
                        .with_batch_index_error_message(Some(StrBytes::from_static_str("bad")))]
                } else {
                    Vec::new()
                })
                .with_current_leader(
                    produce_response::LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(if errors { 2 } else { -1 })),
                );
        let topic = produce_response::TopicProduceResponse::default()
            .with_name(kafka_protocol::messages::TopicName(
                StrBytes::from_static_str("t"),
            ))
            .with_partition_responses(vec![partition; partitions]);
        let endpoint = produce_response::NodeEndpoint::default()
            .with_node_id(BrokerId(2))
            .with_host(StrBytes::from_static_str("10.9.9.9"))
            .with_port(39093);
        ProduceResponse::default()
            .with_responses(vec![topic.clone(), topic])
            .with_node_endpoints(vec![endpoint; endpoints])
    }

    fn fetch(
        partitions: usize,
        record_bytes: usize,
        aborted: bool,
        endpoints: usize,
    ) -> FetchResponse {
        let partition = fetch_response::PartitionData::default()
            .with_records(Some(Bytes::from(vec![7u8; record_bytes])))
            .with_aborted_transactions(aborted.then(|| {
                vec![fetch_response::AbortedTransaction::default()
                    .with_producer_id(kafka_protocol::messages::ProducerId(9))]
            }));
        let topic = fetch_response::FetchableTopicResponse::default()
            .with_partitions(vec![partition; partitions]);
        let endpoint = fetch_response::NodeEndpoint::default()
            .with_node_id(BrokerId(5))
            .with_host(StrBytes::from_static_str("10.9.9.9"))
            .with_port(39094);
        FetchResponse::default()
            .with_responses(vec![topic])
            .with_node_endpoints(vec![endpoint; endpoints])
    }

    proptest::proptest! {
        /// The walk agrees with a full decode on whether endpoints are present, for every
        /// version and shape, and never reads a frame as complete when it is cut short.
        #[test]
        fn the_walk_finds_endpoints_exactly_when_present(
            partitions in 0usize..5,
            record_bytes in 0usize..300,
            errors in proptest::bool::ANY,
            endpoints in 0usize..3,
            cut in 1usize..40,
        ) {
            for version in PRODUCE_MIN_VERSION..=13 {
                let frame = broker_response(ApiKey::Produce, version, &produce(partitions, errors, endpoints));
                proptest::prop_assert_eq!(carries_endpoints(ApiKey::Produce, version, &frame), Some(endpoints > 0));
                let short = &frame[..frame.len().saturating_sub(cut)];
                proptest::prop_assert_eq!(carries_endpoints(ApiKey::Produce, version, short), None);
            }
            for version in FETCH_MIN_VERSION..=18 {
                let frame = broker_response(ApiKey::Fetch, version, &fetch(partitions, record_bytes, errors, endpoints));
                proptest::prop_assert_eq!(carries_endpoints(ApiKey::Fetch, version, &frame), Some(endpoints > 0));
                let short = &frame[..frame.len().saturating_sub(cut)];
                proptest::prop_assert_eq!(carries_endpoints(ApiKey::Fetch, version, short), None);
            }
        }

        /// Arbitrary bytes never panic the walk.
        #[test]
        fn garbage_never_panics_the_walk(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for version in [10, 13, 16, 18] {
                let _ = carries_endpoints(ApiKey::Produce, version, &bytes);
                let _ = carries_endpoints(ApiKey::Fetch, version, &bytes);
            }
        }
    }

    #[test]
    fn produce_responses_without_endpoints_pass_as_the_same_bytes() {
        let frame = broker_response(ApiKey::Produce, 11, &produce(3, true, 0));
        let out = filtered(&filter(), ApiKey::Produce, 11, frame.clone());
        assert_eq!(out.as_ptr(), frame.as_ptr(), "a pass-through must not copy");
    }
}
