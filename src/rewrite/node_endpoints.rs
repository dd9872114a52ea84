//! KIP-951 node endpoints: since Produce v10 and Fetch v16, a response that reports a
//! leader change also carries the new leader's address, so the client can skip a Metadata
//! round trip. Those addresses are real broker addresses and must be rewritten like
//! Metadata's. Responses without endpoints (nearly all) are left as the broker's bytes.

use kafka_protocol::messages::{FetchResponse, ProduceResponse};

use super::readdress;
use crate::directory::Directory;

pub const PRODUCE_MIN_VERSION: i16 = 10;
pub const FETCH_MIN_VERSION: i16 = 16;

pub fn rewrite_produce(response: &mut ProduceResponse, dir: &Directory) -> bool {
    let endpoints = &mut response.node_endpoints;
    let had_any = !endpoints.is_empty();
    endpoints
        .retain_mut(|e| readdress(dir, e.node_id.0, &mut e.host, &mut e.port, e.rack.as_ref()));
    had_any
}

pub fn rewrite_fetch(response: &mut FetchResponse, dir: &Directory) -> bool {
    let endpoints = &mut response.node_endpoints;
    let had_any = !endpoints.is_empty();
    endpoints
        .retain_mut(|e| readdress(dir, e.node_id.0, &mut e.host, &mut e.port, e.rack.as_ref()));
    had_any
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::{fetch_response, produce_response};
    use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, ProduceResponse};
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::directory::tests::directory;
    use crate::rewrite::response;
    use crate::rewrite::test_support::*;

    #[test]
    fn produce_endpoints_are_rewritten() {
        let dir = directory(8);
        for version in PRODUCE_MIN_VERSION..=13 {
            let body = ProduceResponse::default().with_node_endpoints(vec![
                produce_response::NodeEndpoint::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("10.9.9.9"))
                    .with_port(39093),
            ]);
            let frame = broker_response(ApiKey::Produce, version, &body);
            let out: ProduceResponse = client_view(&dir, ApiKey::Produce, version, frame);
            assert_eq!(out.node_endpoints[0].host.as_str(), "proxy.example");
            assert_eq!(out.node_endpoints[0].port, 9200);
        }
    }

    #[test]
    fn fetch_endpoints_are_rewritten_and_records_kept() {
        let dir = directory(8);
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
            let out: FetchResponse = client_view(&dir, ApiKey::Fetch, version, frame);
            assert_eq!(out.node_endpoints[0].port, 9200);
            assert_eq!(
                out.responses[0].partitions[0].records,
                Some(records.clone())
            );
        }
    }

    #[test]
    fn responses_without_endpoints_pass_as_the_same_bytes() {
        let dir = directory(8);
        let body = FetchResponse::default();
        let frame = broker_response(ApiKey::Fetch, 17, &body);
        let out = response(&dir, ApiKey::Fetch, 17, frame.clone()).unwrap();
        assert_eq!(out.as_ptr(), frame.as_ptr(), "a pass-through must not copy");
    }
}
