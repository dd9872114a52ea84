//! Near-source traffic: which zone a client is in, and follower fetching for clients that
//! do not name their rack.
//!
//! A client's zone decides which node each identity is advertised at (`Addressing`, from
//! the per-zone owners of `cluster::routes`). It is, in order:
//!
//! 1. a tag in its client id: a `,`-separated segment `flotilla_zone=ZONE`
//!    (`client.id=billing,flotilla_zone=eu-1`), for clients an operator can configure but
//!    whose addresses say nothing (NAT, shared egress);
//! 2. the `client.rack` it sends in Fetch requests (v11+), as this node has seen it from
//!    the same address and client id ([`Placement`]); a consumer that names its rack for
//!    follower fetching is placed there for addresses too;
//! 3. the committed CIDR -> zone map (`proxyctl zone map set`), by source address;
//! 4. this node's configured map (`cluster.zone_map`), likewise.
//!
//! Otherwise the client has no zone and gets the fleet-wide answer.
//!
//! Follower fetching (KIP-392): when the brokers are rack-aware and a consumer's Fetch
//! names no rack, the filter puts the client's zone in `rack_id`, so a broker with
//! `RackAwareReplicaSelector` points the consumer at a replica in its zone
//! (`preferred_read_replica`, a broker id, which is an identity id as it stands). A client
//! that names its own rack is left alone. Only such Fetches are decoded and encoded again;
//! a connection's first Fetch is decoded once to learn whether the client names a rack.
//! With no broker rack and no zone in the fleet, the filter is out of the chain.

mod placement;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use flotilla_raft::ControlState;
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::StrBytes;

pub use self::placement::Placement;
use crate::protocol::decode::DecodeError;
use crate::proxy::filter::{Env, Filter, Session, Verdict};
use crate::proxy::message::Request;

/// The client id segment that names a client's zone.
pub const ZONE_TAG: &str = "flotilla_zone=";
/// Fetch v11 added `rack_id`.
const RACK_VERSION: i16 = 11;

/// The zone of the client of `session`, if anything places it (see the module doc).
pub fn client_zone<'a>(
    session: &'a Session,
    control: &'a ControlState,
    placement: &'a Placement,
) -> Option<Cow<'a, str>> {
    let client_id = session.client_id.as_ref().map(|c| c.as_str());
    if let Some(zone) = client_id.and_then(tagged_zone) {
        return Some(Cow::Borrowed(zone));
    }
    let address = session.peer.ip();
    if let Some(rack) = placement.rack_of(address, client_id.unwrap_or("")) {
        return Some(Cow::Owned(rack.to_string()));
    }
    control
        .zone_of_address(address)
        .or_else(|| placement.configured_zone(address))
        .map(Cow::Borrowed)
}

/// The zone a client id's `flotilla_zone=` segment names, if any.
pub fn tagged_zone(client_id: &str) -> Option<&str> {
    client_id
        .split(',')
        .find_map(|segment| segment.trim().strip_prefix(ZONE_TAG))
        .filter(|zone| flotilla_raft::zones::valid_zone_name(zone))
}

/// What one connection's Fetches said of the client's own rack.
#[derive(Debug, Default)]
pub struct ConnectionRack {
    /// Set by the first Fetch (v11+): the rack it names, `None` if it names none.
    own: OnceLock<Option<StrBytes>>,
}

pub struct Zones {
    placement: Arc<Placement>,
}

impl Zones {
    pub fn new(placement: &Arc<Placement>) -> Self {
        Zones {
            placement: placement.clone(),
        }
    }

    /// Learns, from the connection's first Fetch, whether the client names its rack.
    fn own_rack<'s>(
        &self,
        request: &mut Request,
        session: &'s Session,
    ) -> Result<&'s Option<StrBytes>, DecodeError> {
        if let Some(own) = session.rack.own.get() {
            return Ok(own);
        }
        let named = match request.body()? {
            RequestKind::Fetch(fetch) if !fetch.rack_id.is_empty() => Some(fetch.rack_id.clone()),
            _ => None,
        };
        if let Some(rack) = &named {
            let client_id = session.client_id.as_ref().map_or("", |c| c.as_str());
            self.placement.learn(session.peer.ip(), client_id, rack);
        }
        Ok(session.rack.own.get_or_init(|| named))
    }
}

/// Whether some broker's rack is `zone`: only then can a broker pick a replica there.
fn has_rack(control: &ControlState, zone: &str) -> bool {
    control
        .identities
        .values()
        .any(|i| i.present && i.broker.rack.as_deref() == Some(zone))
}

impl Filter for Zones {
    fn name(&self) -> &'static str {
        "zones"
    }

    fn is_active(&self, control: &ControlState) -> bool {
        !control.zone_owners.is_empty()
            || control.identities.values().any(|i| i.broker.rack.is_some())
    }

    fn wants_request(&self, api_key: ApiKey, version: i16) -> bool {
        api_key == ApiKey::Fetch && version >= RACK_VERSION
    }

    fn on_request(&self, request: &mut Request, env: &Env) -> Verdict {
        match self.own_rack(request, env.session) {
            Ok(Some(_)) => return Verdict::Forward, // the client chose its rack itself
            Ok(None) => {}
            Err(e) => return Verdict::Close(format!("cannot read the Fetch request: {e}")),
        }
        let Some(zone) = client_zone(env.session, env.control, &self.placement) else {
            return Verdict::Forward;
        };
        if !has_rack(env.control, &zone) {
            return Verdict::Forward;
        }
        match request.body_mut() {
            Ok(RequestKind::Fetch(fetch)) => {
                fetch.rack_id = StrBytes::from_string(zone.into_owned());
                Verdict::Forward
            }
            Ok(_) => Verdict::Forward,
            Err(e) => Verdict::Close(format!("cannot read the Fetch request: {e}")),
        }
    }
}
