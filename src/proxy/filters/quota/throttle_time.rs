//! Telling a throttled client how long it is throttled, in the `throttle_time_ms` of the
//! responses it gets, as a broker does. Clients that honour it (the Java client, KIP-219)
//! wait that long before their next request, which is when the proxy would let it through
//! anyway; the others are held by the proxy. Only a throttled client's responses are
//! decoded for this.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};

use crate::proxy::message::Response;

/// Whether responses of this API and version carry a throttle time the filter sets:
/// Produce and Fetch from v1 (the traffic quotas govern). Other APIs' answers are
/// delayed by the mute without saying so.
pub fn carries_throttle_time(api_key: ApiKey, version: i16) -> bool {
    matches!(api_key, ApiKey::Produce | ApiKey::Fetch) && version >= 1
}

/// Raises the response's throttle time to `throttle` (never lowers the broker's own).
pub fn set_throttle_time(response: &mut Response, throttle: Duration) -> Result<(), String> {
    if !carries_throttle_time(response.api_key(), response.version()) {
        return Ok(());
    }
    let ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
    response.edit(|body| {
        let field = match body {
            ResponseKind::Produce(r) => &mut r.throttle_time_ms,
            ResponseKind::Fetch(r) => &mut r.throttle_time_ms,
            _ => return false,
        };
        if *field >= ms {
            return false;
        }
        *field = ms;
        true
    })
}
