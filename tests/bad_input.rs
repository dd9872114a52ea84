//! Every kind of bad input ends only the connection that sent it: with a log line naming
//! the peer and the reason, a metric, no panic, and no effect on other connections.

mod support;

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, MetadataRequest, ProduceRequest};
use kafka_protocol::protocol::Encodable;
use support::fake_broker::FakeBroker;
use support::wire::RawClient;
use support::{kafka, Node};

const CLOSE_DEADLINE: Duration = Duration::from_secs(15);

/// A node in front of the real cluster, plus a client connection that must stay healthy
/// through everything the test does to other connections.
fn node_and_witness(extra_toml: &str) -> (Node, RawClient) {
    let node = Node::start_with(kafka(), extra_toml);
    let mut witness = RawClient::connect(&node.bootstrap);
    assert_eq!(witness.api_versions().error_code, 0);
    (node, witness)
}

/// Sends `bytes` on a fresh connection and checks the node closes it and logs why.
fn assert_refused(node: &Node, bytes: &[u8], reason: &str, metric_kind: &str) {
    let before = node.metric("flotilla_protocol_errors_total", metric_kind);
    let mut client = RawClient::connect(&node.bootstrap);
    client.send_raw(bytes);
    client.assert_closed_within(CLOSE_DEADLINE);
    let line = node.wait_for_log(&[&format!(":{}", client.local_port()), reason]);
    assert!(line.contains("connection closed"), "{line}");
    support::wait_for("the protocol error metric", CLOSE_DEADLINE, || {
        (node.metric("flotilla_protocol_errors_total", metric_kind) > before).then_some(())
    });
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn assert_still_serving(node: &mut Node, witness: &mut RawClient) {
    assert!(node.is_running(), "the node process died");
    assert_eq!(
        witness.api_versions().error_code,
        0,
        "the witness connection was affected"
    );
    assert!(!node.log().contains("panicked"), "{}", node.log());
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let (mut node, mut witness) = node_and_witness("");

    // Oversized length prefix (2 GiB - 1 against the 100 MiB default).
    assert_refused(
        &node,
        &[0x7f, 0xff, 0xff, 0xff, 0],
        "exceeds the limit",
        "frame_too_large",
    );
    // Garbage: an HTTP request on the Kafka port.
    assert_refused(
        &node,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "looks like HTTP",
        "frame_too_large",
    );
    // Negative size.
    assert_refused(
        &node,
        &[0xff, 0xff, 0xff, 0xfe],
        "negative frame size",
        "negative_frame_size",
    );
    // A frame too short to hold a request header.
    assert_refused(
        &node,
        &frame(&[0, 3, 0]),
        "shorter than a request header",
        "short_request",
    );
    // Unknown api key.
    assert_refused(
        &node,
        &frame(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]),
        "unknown api key 999",
        "unknown_api_key",
    );
    // A version nobody supports.
    assert_refused(
        &node,
        &frame(&[0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff, 0]),
        "unsupported version 99",
        "unsupported_version",
    );

    assert_still_serving(&mut node, &mut witness);
}

#[test]
fn truncated_request_bodies_close_only_their_connection() {
    let (mut node, mut witness) = node_and_witness("");
    // A Produce whose body stops inside the transactional id.
    let mut client = RawClient::connect(&node.bootstrap);
    let mut produce = client.encode(ApiKey::Produce, 9, &ProduceRequest::default().with_acks(-1));
    let header_len = produce.len()
        - ProduceRequest::default()
            .with_acks(-1)
            .compute_size(9)
            .unwrap();
    produce.truncate(header_len + 1);
    produce[header_len] = 0x10; // compact string of 15 bytes that are not there
    assert_refused(
        &node,
        &frame(&produce),
        "malformed Produce v9 request",
        "malformed_request",
    );
    assert_still_serving(&mut node, &mut witness);
}

#[test]
fn client_that_disconnects_mid_request_is_logged() {
    let (mut node, mut witness) = node_and_witness("");
    let mut client = RawClient::connect(&node.bootstrap);
    let port = client.local_port();
    let full = client.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    client.send_raw(&frame(&full)[..10]);
    drop(client);
    node.wait_for_log(&[&format!(":{port}"), "closed in the middle of a frame"]);
    support::wait_for("the truncated-frame metric", CLOSE_DEADLINE, || {
        (node.metric("flotilla_protocol_errors_total", "truncated_frame") > 0.0).then_some(())
    });
    assert_still_serving(&mut node, &mut witness);
}

#[test]
fn silent_and_stalled_clients_are_closed_when_idle() {
    let mut node = Node::start_with(kafka(), "[limits]\nidle_timeout = \"1s\"\n");
    // Says nothing at all.
    let mut silent = RawClient::connect(&node.bootstrap);
    silent.assert_closed_within(CLOSE_DEADLINE);
    node.wait_for_log(&[&format!(":{}", silent.local_port()), "idle for 1s"]);
    // Starts a frame and stalls.
    let mut stalled = RawClient::connect(&node.bootstrap);
    stalled.send_raw(&[0, 0, 0, 100, 0, 3]);
    stalled.assert_closed_within(CLOSE_DEADLINE);
    node.wait_for_log(&[&format!(":{}", stalled.local_port()), "idle for 1s"]);
    // Any connection goes idle within a second here, so check the node with a fresh one.
    let mut fresh = RawClient::connect(&node.bootstrap);
    assert_still_serving(&mut node, &mut fresh);
}

#[test]
fn broker_that_goes_away_closes_only_its_client() {
    let broker = FakeBroker::start("127.0.0.1");
    let mut node = Node::start(&broker.address);
    let mut witness = RawClient::connect(&node.bootstrap);
    let metadata = witness.metadata();
    assert_eq!(metadata.brokers.len(), 1);
    let identity_port = format!("{}:{}", node.host, metadata.brokers[0].port);

    // The broker drops the connection when the client sends a request.
    let mut client = RawClient::connect(&identity_port);
    let request = client.encode(
        ApiKey::ApiVersions,
        0,
        &kafka_protocol::messages::ApiVersionsRequest::default(),
    );
    client.send_frame(&request);
    client.assert_closed_within(CLOSE_DEADLINE);
    node.wait_for_log(&[
        &format!(":{}", client.local_port()),
        "broker closed the connection",
    ]);

    // The broker is gone altogether: new connections are refused with a reason.
    broker.stop();
    let mut late = RawClient::connect(&identity_port);
    late.assert_closed_within(CLOSE_DEADLINE);
    node.wait_for_log(&[&format!(":{}", late.local_port()), "no broker connection"]);
    assert!(node.is_running());
    assert!(!node.log().contains("panicked"));
}
