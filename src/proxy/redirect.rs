//! What a connection answers while its node stops, so that clients move to the
//! identities' new owners at once instead of reconnecting to an address that is going
//! away.
//!
//! A node that stops has already handed its identities to other nodes, so every node's
//! Metadata now advertises the new owners. But clients only ask for Metadata when told to:
//! a closed connection alone leaves librdkafka reconnecting to the old address with
//! growing backoff, for as long as the node is down. A NOT_LEADER_OR_FOLLOWER answer to a
//! Produce or Fetch tells every client to refresh its metadata and retry, which it does
//! in a few milliseconds, at the new address.
//!
//! It is safe because the request was not forwarded: nothing of it was written, the error
//! is retriable, and an idempotent producer resends the same batch with the same sequence
//! numbers. An acks=0 Produce gets no answer, so it is forwarded as usual instead.
//!
//! The node keeps accepting connections while it redirects (`shutdown.redirect_window`):
//! a client that reconnects to the old address before it has refreshed its metadata
//! must not be refused, or librdkafka backs off for seconds before it tries the new one.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

use crate::protocol::decode::decode_request;
use crate::protocol::error_response::{encode_response, error_response};
use crate::protocol::header::RequestMeta;

/// The redirect answer to a Produce or Fetch, or `None` for any other request (it is
/// forwarded) or one that cannot be answered (the connection then just closes).
pub fn answer(request: &RequestMeta, frame: &Bytes) -> Option<Bytes> {
    if !matches!(request.api_key, ApiKey::Produce | ApiKey::Fetch) {
        return None;
    }
    let body = frame.slice(request.header_len..);
    let decoded = decode_request(request.api_key, request.api_version, &body).ok()?;
    let version = request.api_version;
    let error = ResponseError::NotLeaderOrFollower;
    let response = error_response(&decoded, version, error, 0).ok()?;
    encode_response(request.correlation_id, request.api_key, version, &response).ok()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;
    use crate::protocol::header::{parse_request, tests::encode_request};

    #[test]
    fn a_produce_is_told_its_partitions_have_another_leader() {
        let produce = ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_data(vec![
                    PartitionProduceData::default().with_index(0),
                    PartitionProduceData::default().with_index(4),
                ])]);
        let frame = encode_request(ApiKey::Produce, 9, 41, &produce);
        let mut out = answer(&parse_request(&frame).unwrap(), &frame).unwrap();
        assert_eq!(
            ResponseHeader::decode(&mut out, 1).unwrap().correlation_id,
            41
        );
        let response = ProduceResponse::decode(&mut out, 9).unwrap();
        let partitions = &response.responses[0].partition_responses;
        assert_eq!(partitions.len(), 2);
        for p in partitions {
            assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code());
        }
    }

    #[test]
    fn other_requests_are_not_redirected() {
        let frame = encode_request(
            ApiKey::Metadata,
            12,
            1,
            &kafka_protocol::messages::MetadataRequest::default(),
        );
        assert!(answer(&parse_request(&frame).unwrap(), &frame).is_none());
    }
}
