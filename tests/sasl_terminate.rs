//! SASL terminated by the fleet, over TLS: users kept in Raft (added through one node's
//! admin API, usable on every node), real clients logging in with SCRAM-SHA-512 and PLAIN
//! over SASL_SSL, and the fleet reaching Kafka's SASL_SSL listener with its own service
//! account (whose 10 s broker sessions it renews on every client connection).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use rdkafka::Message;
use support::certs::Ca;
use support::fleet::Fleet;
use support::java::produce_with_properties;
use support::wire::RawClient;
use support::{secure_kafka, unique_topic, wait_for, Launch};

const TLS_PORT: u16 = 9193;

/// A fleet of `count` terminating SASL on both listener kinds, clients' session lifetime 4 s.
fn secure_fleet(count: usize, dir: &Path) -> (Fleet, Ca) {
    let secure = secure_kafka();
    let ca = Ca::new(dir, "ca");
    let extra = |host: &str| {
        let leaf = ca.server(&format!("node-{host}"), &[host], 30);
        format!(
            "[tls]\nbootstrap_port = {TLS_PORT}\nidentity_port_base = 9300\ncert = \"{}\"\nkey = \"{}\"\n\
             [sasl]\nsession_lifetime = \"4s\"\n\
             [backend.tls]\nca = \"{}\"\n\
             [backend.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"flotilla\"\npassword = \"flotilla-secret\"\n",
            leaf.cert.display(),
            leaf.key.display(),
            secure.ca.display()
        )
    };
    let fleet = Fleet::start_configured(count, &secure.sasl_ssl, "2s", Launch::default(), extra);
    (fleet, ca)
}

/// Adds a SCRAM user through the admin API of `admin`, once the fleet accepts it (the
/// fleet raises its feature level to the one of users shortly after it starts).
fn add_user(admin: &str, name: &str, mechanism: &str, password: &str) {
    let body = serde_json::json!({ "name": name, "mechanism": mechanism, "password": password });
    wait_for(
        &format!("user {name} added"),
        Duration::from_secs(30),
        || {
            ureq::post(&format!("{admin}/api/v1/users"))
                .send_json(&body)
                .ok()
        },
    );
}

fn tls_bootstrap(fleet: &Fleet) -> String {
    let hosts: Vec<String> = fleet
        .nodes
        .iter()
        .map(|n| format!("{}:{TLS_PORT}", n.host))
        .collect();
    hosts.join(",")
}

fn client(bootstrap: &str, ca: &Ca, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    let mut config = support::rdkafka::client_config(bootstrap);
    config
        .set("security.protocol", "sasl_ssl")
        .set("ssl.ca.location", ca.pem.display().to_string())
        .set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password);
    config
}

async fn produce(producer: &FutureProducer, topic: &str, count: usize) {
    for i in 0..count {
        let payload = format!("r{i}");
        let record = FutureRecord::<(), _>::to(topic).payload(&payload);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .unwrap_or_else(|(e, _)| panic!("send {i}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_log_in_with_the_fleet_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, ca) = secure_fleet(2, dir.path());
    add_user(
        &fleet.nodes[0].admin,
        "alice",
        "SCRAM-SHA-512",
        "alice-secret",
    );
    add_user(
        &fleet.nodes[0].admin,
        "alice",
        "SCRAM-SHA-256",
        "alice-secret",
    );
    // Users live in Raft: node 2 knows alice as soon as it has applied the commands.
    let second = format!("{}:{TLS_PORT}", fleet.nodes[1].host);
    let topic = unique_topic("sasl-term");
    // Created on the same cluster's plaintext listener: this admin client has no login.
    support::rdkafka::create_topic(support::kafka(), &topic, 3).await;

    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let producer: FutureProducer = client(&second, &ca, mechanism, "alice", "alice-secret")
            .set("enable.idempotence", "true")
            .create()
            .unwrap();
        produce(&producer, &topic, 100).await;
    }
    let consumer: StreamConsumer = client(
        &tls_bootstrap(&fleet),
        &ca,
        "SCRAM-SHA-512",
        "alice",
        "alice-secret",
    )
    .set("group.id", "sasl-term")
    .set("auto.offset.reset", "earliest")
    .create()
    .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    for _ in 0..300 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await;
        message
            .expect("a record within 30 s")
            .expect("no consumer error")
            .payload()
            .unwrap();
    }
    fleet.nodes[1].wait_for_log(&["connection closed", "principal=\"User:alice\""]);

    // A wrong password: refused with Kafka's words, logged, counted; nothing else affected.
    let wrong: FutureProducer = client(&second, &ca, "SCRAM-SHA-512", "alice", "guess")
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    let refused = wrong
        .send(
            FutureRecord::<(), _>::to(&topic).payload("x"),
            Duration::from_secs(10),
        )
        .await;
    assert!(refused.is_err(), "a wrong password produces nothing");
    fleet.nodes[1].wait_for_log(&["SASL login refused"]);
    assert!(fleet.nodes[1].metric("flotilla_authentications_total", "result=\"failed\"") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_renewed_on_both_sides_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, ca) = secure_fleet(1, dir.path());
    add_user(
        &fleet.nodes[0].admin,
        "alice",
        "SCRAM-SHA-512",
        "alice-secret",
    );
    let node = &fleet.nodes[0];
    let topic = unique_topic("sasl-renew");
    let producer: FutureProducer = client(
        &tls_bootstrap(&fleet),
        &ca,
        "SCRAM-SHA-512",
        "alice",
        "alice-secret",
    )
    .set("enable.idempotence", "true")
    .create()
    .unwrap();
    produce(&producer, &topic, 1).await;
    let logins = || node.metric("flotilla_authentications_total", "result=\"ok\"");
    let first = logins();
    // 4 s client sessions and 10 s broker sessions: 25 s of load crosses both, twice.
    let until = Instant::now() + Duration::from_secs(25);
    let mut sent = 0;
    while Instant::now() < until {
        produce(&producer, &topic, 10).await;
        sent += 10;
    }
    assert!(sent > 100);
    assert!(logins() > first, "clients re-authenticated with the fleet");
    for reason in [
        "unauthenticated",
        "login_failed",
        "upstream_login",
        "upstream_closed",
    ] {
        let closed = node.metric(
            "flotilla_connections_closed_total",
            &format!("reason=\"{reason}\""),
        );
        assert_eq!(closed, 0.0, "no connection closed for {reason}");
    }
}

#[test]
fn nothing_but_api_versions_before_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, ca) = secure_fleet(1, dir.path());
    let node = &fleet.nodes[0];
    let mut raw = RawClient::connect(&node.bootstrap);
    raw.api_versions(); // allowed before a login
    let metadata = raw.encode(
        kafka_protocol::messages::ApiKey::Metadata,
        12,
        &kafka_protocol::messages::MetadataRequest::default(),
    );
    raw.send_frame(&metadata);
    raw.assert_closed_within(Duration::from_secs(10));
    node.wait_for_log(&["before SASL authentication"]);

    // The Java client and kcat over SASL_SSL, with a user added now.
    add_user(&node.admin, "bob", "SCRAM-SHA-512", "bob-secret");
    let tls = tls_bootstrap(&fleet);
    let properties = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nssl.truststore.type=PEM\n\
         ssl.truststore.location={}\nsasl.jaas.config=org.apache.kafka.common.security.scram.\
         ScramLoginModule required username=\"bob\" password=\"bob-secret\";\n",
        ca.pem.display()
    );
    let topic = unique_topic("sasl-java");
    let acked = produce_with_properties(&tls, &topic, 200, &properties, dir.path());
    assert_eq!(acked, 200, "the Java client produced over SASL_SSL");

    // Debian's kcat (librdkafka 2.0) with both mechanisms; its SCRAM has a nonce quirk
    // that Kafka 4 no longer accepts and the fleet still does.
    for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
        let kcat = Command::new("kcat")
            .args(["-L", "-b", &tls, "-X", "broker.address.family=v4"])
            .args(["-X", "security.protocol=SASL_SSL"])
            .args(["-X", &format!("ssl.ca.location={}", ca.pem.display())])
            .args(["-X", &format!("sasl.mechanisms={mechanism}")])
            .args(["-X", "sasl.username=bob", "-X", "sasl.password=bob-secret"])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&kcat.stdout);
        assert!(
            listing.contains("3 brokers"),
            "{mechanism}: {}",
            String::from_utf8_lossy(&kcat.stderr)
        );
    }
}

/// Users live in Raft: killing the leader (kill -9) loses none, survivors keep logging
/// clients in, and a user added after the kill, through a survivor, works at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_outlive_a_killed_raft_leader() {
    let dir = tempfile::tempdir().unwrap();
    let (mut fleet, ca) = secure_fleet(3, dir.path());
    add_user(
        &fleet.nodes[0].admin,
        "alice",
        "SCRAM-SHA-512",
        "alice-secret",
    );
    let leader = fleet.status(1).and_then(|s| s.leader).expect("a leader");
    let survivor = if leader == 1 { 2 } else { 1 };
    wait_for(
        "alice replicated to every node",
        Duration::from_secs(10),
        || {
            let listed =
                support::http_get(&format!("{}/api/v1/users", fleet.node(survivor).admin)).ok()?;
            listed.contains("alice").then_some(())
        },
    );
    fleet.node(leader).kill();
    fleet.wait_for_status(survivor, "a new leader", |s| {
        s.leader.is_some_and(|l| l != leader)
    });

    let topic = unique_topic("sasl-leader-kill");
    support::rdkafka::create_topic(support::kafka(), &topic, 3).await;
    let at_survivor = format!("{}:{TLS_PORT}", fleet.node(survivor).host);
    let alice: FutureProducer = client(&at_survivor, &ca, "SCRAM-SHA-512", "alice", "alice-secret")
        .create()
        .unwrap();
    produce(&alice, &topic, 10).await;

    add_user(
        &fleet.node(survivor).admin,
        "carol",
        "SCRAM-SHA-512",
        "carol-secret",
    );
    let carol: FutureProducer = client(&at_survivor, &ca, "SCRAM-SHA-512", "carol", "carol-secret")
        .create()
        .unwrap();
    produce(&carol, &topic, 10).await;
}
