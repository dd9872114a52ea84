//! Client placement and follower fetching on encoded Fetch requests.

use std::sync::Arc;

use flotilla_raft::{BrokerAddr, Command, ControlState};
use kafka_protocol::messages::{ApiKey, FetchRequest, RequestKind};
use kafka_protocol::protocol::StrBytes;

use super::{client_zone, tagged_zone, Placement, Zones};
use crate::protocol::header::{parse_request, tests::encode_request};
use crate::proxy::filter::{Env, Filter, Listener, Session, Transport, Verdict};
use crate::proxy::message::Request;

/// Brokers 1 to 3 in racks zone-1 to zone-3, and 10.1.0.0/16 mapped to zone-2.
fn rack_aware() -> ControlState {
    let mut state = ControlState::default();
    state.apply(&Command::SetFeatureLevel {
        level: flotilla_raft::zones::LEVEL,
    });
    let brokers = (1..=3)
        .map(|id| {
            let addr = BrokerAddr {
                host: "10.9.9.9".into(),
                port: 39091 + id as u16,
                rack: Some(format!("zone-{id}")),
            };
            (id, addr)
        })
        .collect();
    state.apply(&Command::SyncBrokers { brokers });
    state.apply(&Command::SetZoneMapping {
        cidr: "10.1.0.0/16".parse().unwrap(),
        zone: "zone-2".into(),
    });
    state
}

fn session(peer: &str, client_id: &str) -> Session {
    let mut session = Session::new(
        peer.parse().unwrap(),
        Listener::Identity { slot: 0 },
        Transport::Plaintext,
    );
    session.client_id = Some(StrBytes::from_string(client_id.to_string()));
    session
}

fn fetch(version: i16, rack: &str) -> Request {
    let body = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_rack_id(StrBytes::from_string(rack.to_string()));
    let frame = encode_request(ApiKey::Fetch, version, 7, &body);
    Request::new(parse_request(&frame).unwrap(), frame)
}

/// The rack the broker would read after the filter ran.
fn rack_sent(filter: &Zones, session: &Session, control: &ControlState, rack: &str) -> String {
    let mut request = fetch(12, rack);
    let env = Env { session, control };
    assert!(matches!(
        filter.on_request(&mut request, &env),
        Verdict::Forward
    ));
    let frame = request.into_frame().unwrap();
    let mut parsed = Request::new(parse_request(&frame).unwrap(), frame);
    match parsed.body().unwrap() {
        RequestKind::Fetch(body) => body.rack_id.to_string(),
        other => panic!("not a fetch: {other:?}"),
    }
}

#[test]
fn the_zone_tag_is_one_segment_of_the_client_id() {
    assert_eq!(tagged_zone("billing,flotilla_zone=eu-1"), Some("eu-1"));
    assert_eq!(tagged_zone("flotilla_zone=eu-1, billing"), Some("eu-1"));
    assert_eq!(tagged_zone("billing"), None);
    assert_eq!(tagged_zone("billing,flotilla_zone="), None, "empty zone");
    assert_eq!(
        tagged_zone("billing,flotilla_zone=a b"),
        None,
        "not a zone name"
    );
}

#[test]
fn the_tag_beats_the_rack_which_beats_the_address_map() {
    let control = rack_aware();
    let racks = Placement::default();
    let mapped = session("10.1.2.3:5000", "app");
    assert_eq!(
        client_zone(&mapped, &control, &racks).as_deref(),
        Some("zone-2")
    );
    racks.learn(
        "10.1.2.3".parse().unwrap(),
        "app",
        &StrBytes::from_static_str("zone-3"),
    );
    assert_eq!(
        client_zone(&mapped, &control, &racks).as_deref(),
        Some("zone-3")
    );
    let tagged = session("10.1.2.3:5000", "app,flotilla_zone=zone-1");
    assert_eq!(
        client_zone(&tagged, &control, &racks).as_deref(),
        Some("zone-1")
    );
    let elsewhere = session("192.168.0.1:5000", "app");
    assert_eq!(client_zone(&elsewhere, &control, &racks), None);
}

#[test]
fn a_fetch_without_a_rack_gets_the_clients_zone() {
    let control = rack_aware();
    let filter = Zones::new(&Arc::default());
    assert!(filter.is_active(&control));
    let client = session("10.1.2.3:5000", "consumer");
    assert_eq!(rack_sent(&filter, &client, &control, ""), "zone-2");
    assert_eq!(
        rack_sent(&filter, &client, &control, ""),
        "zone-2",
        "every fetch"
    );
}

#[test]
fn a_client_that_names_its_rack_is_left_alone_and_placed_by_it() {
    let control = rack_aware();
    let racks = Arc::new(Placement::default());
    let filter = Zones::new(&racks);
    let client = session("10.1.2.3:5000", "consumer");
    assert_eq!(rack_sent(&filter, &client, &control, "zone-3"), "zone-3");
    assert_eq!(
        client_zone(&client, &control, &racks).as_deref(),
        Some("zone-3"),
        "its rack places it for addresses too"
    );
}

#[test]
fn no_zone_or_no_broker_in_it_leaves_the_fetch_untouched() {
    let control = rack_aware();
    let filter = Zones::new(&Arc::default());
    let unplaced = session("192.168.0.1:5000", "consumer");
    assert_eq!(rack_sent(&filter, &unplaced, &control, ""), "");
    let rackless = session("192.168.0.1:5000", "consumer,flotilla_zone=zone-9");
    assert_eq!(rack_sent(&filter, &rackless, &control, ""), "");
}

#[test]
fn without_racks_or_zones_the_filter_is_out_of_the_chain() {
    let filter = Zones::new(&Arc::default());
    assert!(!filter.is_active(&ControlState::default()));
    assert!(
        !filter.wants_request(ApiKey::Fetch, 10),
        "no rack_id before v11"
    );
    assert!(filter.wants_request(ApiKey::Fetch, 11));
}

#[test]
fn the_configured_map_places_only_what_the_fleets_map_does_not() {
    let control = rack_aware();
    let configured = [("10.0.0.0/8", "zone-1"), ("192.168.0.0/16", "zone-3")]
        .into_iter()
        .map(|(cidr, zone)| (cidr.parse().unwrap(), zone.to_string()))
        .collect();
    let placement = Placement::new(configured);
    let zone_of = |peer: &str| {
        client_zone(&session(peer, "app"), &control, &placement).map(|z| z.into_owned())
    };
    assert_eq!(zone_of("192.168.4.4:1").as_deref(), Some("zone-3"));
    assert_eq!(
        zone_of("10.1.2.3:1").as_deref(),
        Some("zone-2"),
        "the fleet's map first"
    );
    assert_eq!(zone_of("10.2.0.1:1").as_deref(), Some("zone-1"));
}

#[test]
fn a_fetch_that_does_not_decode_closes_the_connection() {
    let control = rack_aware();
    let filter = Zones::new(&Arc::default());
    let frame = encode_request(ApiKey::Fetch, 12, 7, &FetchRequest::default());
    let truncated = frame.slice(..frame.len() - 3);
    let mut request = Request::new(parse_request(&truncated).unwrap(), truncated);
    let client = session("10.1.2.3:5000", "consumer");
    let env = Env {
        session: &client,
        control: &control,
    };
    assert!(matches!(
        filter.on_request(&mut request, &env),
        Verdict::Close(_)
    ));
}
