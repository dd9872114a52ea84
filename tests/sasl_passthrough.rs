//! SASL passed through to the brokers: a node in front of Kafka's SASL_SSL listener (TLS to
//! the brokers, the node's own SCRAM login for its metadata), with clients that log in to
//! the brokers through it. The brokers' credentials decide; the node learns who each
//! client is; KIP-368 re-authentication (the cluster's SASL_SSL listener ends sessions
//! after 10 s) keeps working under load.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use support::{secure_kafka, unique_topic, wait_for, Node};

/// A node whose brokers are the SASL_SSL listener.
fn passthrough_node() -> Node {
    let secure = secure_kafka();
    let extra = format!(
        "[backend.tls]\nca = \"{}\"\n[backend.sasl]\nmechanism = \"SCRAM-SHA-512\"\n\
         username = \"flotilla\"\npassword = \"flotilla-secret\"\n",
        secure.ca.display()
    );
    Node::start_with(&secure.sasl_ssl, &extra)
}

fn producer(node: &Node, mechanism: &str, user: &str, password: &str) -> FutureProducer {
    support::rdkafka::client_config(&node.bootstrap)
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap()
}

async fn send(producer: &FutureProducer, topic: &str, payload: &str) -> Result<(), String> {
    let record = FutureRecord::<(), _>::to(topic).payload(payload);
    producer
        .send(record, Duration::from_secs(20))
        .await
        .map(|_| ())
        .map_err(|(e, _)| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brokers_credentials_decide_and_the_node_learns_the_principal() {
    let node = passthrough_node();
    let topic = unique_topic("sasl-pass");
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let alice = producer(&node, mechanism, "alice", "alice-secret");
        send(&alice, &topic, mechanism)
            .await
            .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
    }
    node.wait_for_log(&["connection closed", "principal=\"User:alice\""]);

    let wrong = producer(&node, "SCRAM-SHA-512", "alice", "guess");
    let refused = send(&wrong, &topic, "never").await.unwrap_err();
    assert!(
        refused.contains("Authentication") || refused.contains("timed out"),
        "{refused}"
    );
}

#[test]
fn raw_sasl_frames_after_a_v0_handshake_pass_through() {
    // kcat without ApiVersions falls back to the oldest protocol: SaslHandshake v0, then
    // the PLAIN token as a raw frame with no Kafka header.
    let node = passthrough_node();
    let raw = Command::new("kcat")
        .args([
            "-L",
            "-b",
            &node.bootstrap,
            "-X",
            "broker.address.family=v4",
        ])
        .args([
            "-X",
            "api.version.request=false",
            "-X",
            "broker.version.fallback=0.10.0",
        ])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=PLAIN",
        ])
        .args(["-X", "sasl.username=bob", "-X", "sasl.password=bob-secret"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&raw.stdout);
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert!(said.contains("3 brokers"), "{said}");
    node.wait_for_log(&["connection closed", "principal=\"User:bob\""]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_authentication_keeps_a_busy_producer_going() {
    let node = passthrough_node();
    let topic = unique_topic("sasl-reauth");
    let alice = producer(&node, "SCRAM-SHA-512", "alice", "alice-secret");
    send(&alice, &topic, "first").await.unwrap();
    let logins = || node.metric("flotilla_requests_total", "api=\"SaslAuthenticate\"");
    let first_logins = logins();
    let (acked, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // Past two of the brokers' 10 s session lifetimes, every connection re-authenticates.
    let until = Instant::now() + Duration::from_secs(25);
    let mut i = 0u64;
    while Instant::now() < until {
        match send(&alice, &topic, &format!("r{i}")).await {
            Ok(()) => acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
        };
        i += 1;
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no send failed");
    assert!(acked.load(Ordering::Relaxed) > 100);
    wait_for(
        "re-authentications on the open connections",
        Duration::from_secs(5),
        || (logins() > first_logins).then_some(()),
    );
    assert_eq!(
        node.metric(
            "flotilla_connections_closed_total",
            "reason=\"upstream_closed\""
        ),
        0.0,
        "no broker closed a connection for an ended session"
    );
}
