//! Error answers for the APIs a client uses before any other: ApiVersions and SASL.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::ResponseError;

use super::Answer;

/// With UNSUPPORTED_VERSION the answer lists the ApiVersions versions this proxy
/// understands, from which the client retries with one both sides know (KIP-511). No
/// other API is listed.
pub(super) fn api_versions(_request: &ApiVersionsRequest, answer: &Answer) -> ApiVersionsResponse {
    let response = ApiVersionsResponse::default()
        .with_error_code(answer.code)
        .with_throttle_time_ms(answer.throttle_time_ms);
    if answer.code != ResponseError::UnsupportedVersion.code() {
        return response;
    }
    let range = ApiKey::ApiVersions.valid_versions();
    response.with_api_keys(vec![ApiVersion::default()
        .with_api_key(ApiKey::ApiVersions as i16)
        .with_min_version(range.min)
        .with_max_version(range.max)])
}

/// No mechanisms are offered.
pub(super) fn sasl_handshake(
    _request: &SaslHandshakeRequest,
    answer: &Answer,
) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(answer.code)
}

/// No challenge bytes and no session lifetime. The response has no throttle time.
pub(super) fn sasl_authenticate(
    _request: &SaslAuthenticateRequest,
    answer: &Answer,
) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default().with_error_code(answer.code)
}
