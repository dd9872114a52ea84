//! ApiVersions: a client picks each API's version from this answer, so it must only offer
//! versions that both the broker and this proxy understand. The proxy understands what it
//! can decode safely (`protocol::decode`, which is what `kafka-protocol` decodes minus the
//! few versions it lists but cannot read); anything outside that range could not be
//! parsed for rewriting or validated on the way in.
//!
//! APIs whose responses carry broker or controller addresses that the proxy does not
//! rewrite are hidden altogether, so a real address can never reach a client through them.
//!
//! A client that probes with a newer ApiVersions version than known gets what a broker
//! sends in that case: a v0 answer with UNSUPPORTED_VERSION and the ApiVersions range, from
//! which it retries with a version both sides know.

use std::cmp::{max, min};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::protocol::decode::decodable_versions;
use crate::proxy::filter::{Env, Filter};
use crate::proxy::message::Response;

/// Carry addresses the proxy does not rewrite (controller quorum and share-group leaders).
const HIDDEN: &[ApiKey] = &[
    ApiKey::DescribeQuorum,
    ApiKey::ShareFetch,
    ApiKey::ShareAcknowledge,
    ApiKey::AddRaftVoter,
    ApiKey::RemoveRaftVoter,
    ApiKey::UpdateRaftVoter,
];

/// Carry node ids of partitions that only the default cluster's brokers share with the
/// fleet: hidden while several backend clusters are behind it (admin clients fall back to
/// Metadata, which the routing filter renumbers).
const HIDDEN_WITH_CLUSTERS: &[ApiKey] = &[
    ApiKey::DescribeTopicPartitions,
    ApiKey::ListPartitionReassignments,
    ApiKey::AlterPartitionReassignments,
];

const UNSUPPORTED_VERSION: i16 = 35;

/// ApiVersions responses always use header v0, whatever the version (KIP-511).
const HEADER_VERSION: i16 = 0;

pub struct ApiVersionsNarrowing;

impl Filter for ApiVersionsNarrowing {
    fn name(&self) -> &'static str {
        "api-versions"
    }

    fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
        api_key == ApiKey::ApiVersions
    }

    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        let clusters = !env.control.backend_clusters.is_empty();
        let narrowed = rewrite(response.frame().clone(), response.version(), clusters)?;
        response.replace(narrowed);
        Ok(())
    }
}

/// The answer clients see: decoded and encoded here rather than through [`Response`]
/// because a probe of a version newer than any known cannot be decoded as what it claims.
fn rewrite(frame: Bytes, version: i16, several_clusters: bool) -> Result<Bytes, String> {
    let mut buf = frame.clone();
    let header = ResponseHeader::decode(&mut buf, HEADER_VERSION).map_err(|e| e.to_string())?;
    if version > ApiKey::ApiVersions.valid_versions().max {
        return encode(&header, &unsupported_version_answer(), 0);
    }
    let mut body = ApiVersionsResponse::decode(&mut buf, version).map_err(|e| e.to_string())?;
    intersect_api_versions(&mut body.api_keys);
    if several_clusters {
        let hidden = |key: i16| HIDDEN_WITH_CLUSTERS.iter().any(|h| *h as i16 == key);
        body.api_keys.retain(|entry| !hidden(entry.api_key));
    }
    encode(&header, &body, version)
}

/// Narrows each API to the versions this proxy can decode, dropping APIs left empty,
/// unknown or hidden.
pub fn intersect_api_versions(api_keys: &mut Vec<ApiVersion>) {
    api_keys.retain_mut(|entry| {
        let Ok(api_key) = ApiKey::try_from(entry.api_key) else {
            return false;
        };
        if HIDDEN.contains(&api_key) {
            return false;
        }
        let Some(ours) = decodable_versions(api_key) else {
            return false;
        };
        entry.min_version = max(entry.min_version, ours.min);
        entry.max_version = min(entry.max_version, ours.max);
        entry.min_version <= entry.max_version
    });
}

fn encode(
    header: &ResponseHeader,
    body: &ApiVersionsResponse,
    version: i16,
) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    header
        .encode(&mut out, HEADER_VERSION)
        .map_err(|e| e.to_string())?;
    body.encode(&mut out, version).map_err(|e| e.to_string())?;
    Ok(out.freeze())
}

fn unsupported_version_answer() -> ApiVersionsResponse {
    let range = ApiKey::ApiVersions.valid_versions();
    ApiVersionsResponse::default()
        .with_error_code(UNSUPPORTED_VERSION)
        .with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(range.min)
            .with_max_version(range.max)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::filters::test_support::*;
    use proptest::prelude::*;

    fn entry(key: i16, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key)
            .with_min_version(min)
            .with_max_version(max)
    }

    #[test]
    fn narrows_to_decodable_versions_and_hides_unrewritten_apis() {
        let body = ApiVersionsResponse::default().with_api_keys(vec![
            entry(ApiKey::Produce as i16, 0, 99),
            entry(ApiKey::Metadata as i16, 0, 13),
            entry(ApiKey::DescribeQuorum as i16, 0, 2),
            entry(9999, 0, 1),
        ]);
        let frame = broker_response(ApiKey::ApiVersions, 3, &body);
        let out: ApiVersionsResponse =
            client_view(&ApiVersionsNarrowing, ApiKey::ApiVersions, 3, frame);
        let produce = ApiKey::Produce.valid_versions();
        let keys: Vec<_> = out
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(
            keys,
            vec![
                (ApiKey::Produce as i16, produce.min, produce.max),
                (ApiKey::Metadata as i16, 0, 13)
            ]
        );
    }

    #[test]
    fn versions_the_proxy_cannot_decode_are_not_offered() {
        // kafka-protocol 0.18 lists OffsetCommit v10 but cannot decode it.
        let mut keys = vec![entry(ApiKey::OffsetCommit as i16, 0, 10)];
        intersect_api_versions(&mut keys);
        assert_eq!(keys[0].max_version, 9);
    }

    #[test]
    fn newer_probe_gets_v0_unsupported_version() {
        let broker_body = ApiVersionsResponse::default().with_error_code(UNSUPPORTED_VERSION);
        let frame = broker_response(ApiKey::ApiVersions, 0, &broker_body);
        let mut out = rewrite(frame, 99, false).unwrap();
        assert_eq!(
            ResponseHeader::decode(&mut out, 0).unwrap().correlation_id,
            77
        );
        let body = ApiVersionsResponse::decode(&mut out, 0).unwrap();
        assert_eq!(body.error_code, UNSUPPORTED_VERSION);
        assert_eq!(body.api_keys.len(), 1);
        let range = ApiKey::ApiVersions.valid_versions();
        assert_eq!(
            (body.api_keys[0].min_version, body.api_keys[0].max_version),
            (range.min, range.max)
        );
    }

    proptest! {
        #[test]
        fn intersection_is_within_both_ranges(
            entries in proptest::collection::btree_map(0i16..100, (-1i16..30, -1i16..30), 0..40)
        ) {
            let mut keys: Vec<_> = entries.iter().map(|(&k, &(lo, hi))| entry(k, lo, hi)).collect();
            intersect_api_versions(&mut keys);
            for k in &keys {
                let api = ApiKey::try_from(k.api_key).unwrap();
                let ours = decodable_versions(api).unwrap();
                let (their_min, their_max) = entries[&k.api_key];
                prop_assert!(k.min_version <= k.max_version);
                prop_assert!(k.min_version >= ours.min && k.max_version <= ours.max);
                prop_assert!(k.min_version >= their_min && k.max_version <= their_max);
                prop_assert!(!HIDDEN.contains(&api));
            }
        }
    }
}
