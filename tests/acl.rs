//! ACLs enforced by the fleet, through real clients: alice may write every topic named
//! `orders.*` and read group `readers`, nothing else; she gets Kafka's own authorization errors for the rest,
//! from librdkafka and the Java client alike, and never sees `payments` in a listing.

mod support;

use std::process::Output;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use support::admin::AdminAccess;
use support::fleet::Fleet;
use support::java::produce_with_properties;
use support::{kafka, unique_topic, wait_for, Launch};

fn proxyctl(fleet: &Fleet, args: &[&str], stdin: &str) -> Output {
    AdminAccess::default().proxyctl(&fleet.nodes[0], args, stdin)
}

/// A one-node fleet terminating SASL, enforcing ACLs, with users alice and admin.
fn guarded_fleet() -> Fleet {
    let extra = |_: &str| "[sasl]\n[acl]\nsuper_users = [\"User:admin\"]\n".to_string();
    let fleet = Fleet::start_configured(1, kafka(), "2s", Launch::default(), extra);
    for (user, password) in [("alice", "alice-secret"), ("admin", "admin-secret")] {
        let add = ["user", "add", user, "--password-stdin"];
        wait_for(
            &format!("user {user} added"),
            Duration::from_secs(30),
            || {
                proxyctl(&fleet, &add, password)
                    .status
                    .success()
                    .then_some(())
            },
        );
    }
    let write_orders = [
        "acl",
        "add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "orders.",
        "--resource-pattern-type",
        "prefixed",
    ];
    let read_group = [
        "acl",
        "add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--group",
        "readers",
    ];
    for acl in [&write_orders[..], &read_group[..]] {
        let added = proxyctl(&fleet, acl, "");
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    fleet
}

fn client(fleet: &Fleet, user: &str, password: &str) -> ClientConfig {
    let mut config = support::rdkafka::client_config(&fleet.bootstrap());
    config
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanisms", "SCRAM-SHA-512")
        .set("sasl.username", user)
        .set("sasl.password", password);
    config
}

async fn send(producer: &FutureProducer, topic: &str) -> Result<(), KafkaError> {
    let record = FutureRecord::<(), _>::to(topic).payload("x");
    producer
        .send(record, Duration::from_secs(20))
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_writes_orders_and_nothing_else() {
    let (orders, payments) = (unique_topic("orders."), unique_topic("payments"));
    support::rdkafka::create_topic(kafka(), &orders, 1).await;
    support::rdkafka::create_topic(kafka(), &payments, 1).await;
    let fleet = guarded_fleet();

    let alice: FutureProducer = client(&fleet, "alice", "alice-secret")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    send(&alice, &orders)
        .await
        .expect("alice may write orders.*");
    let denied = send(&alice, &payments).await.unwrap_err();
    assert_eq!(
        denied.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{denied}"
    );
    let admin: FutureProducer = client(&fleet, "admin", "admin-secret").create().unwrap();
    send(&admin, &payments)
        .await
        .expect("a super user may write anything");

    // Reading payments: Kafka's TOPIC_AUTHORIZATION_FAILED, as the consumer reports it.
    let reader: BaseConsumer = client(&fleet, "alice", "alice-secret")
        .set("group.id", "readers")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    reader.subscribe(&[&payments]).unwrap();
    let error = wait_for("a fetch error", Duration::from_secs(30), || {
        match reader.poll(Duration::from_millis(500)) {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    });
    assert_eq!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{error}"
    );

    // A listing shows orders.*, not payments.
    let metadata = reader
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    assert!(names.contains(&orders.as_str()), "{names:?}");
    assert!(!names.contains(&payments.as_str()), "{names:?}");
    assert!(fleet.nodes[0].metric("flotilla_acl_decisions_total", "decision=\"denied\"") > 0.0);

    // The Java client: the same answers.
    let dir = tempfile::tempdir().unwrap();
    let properties = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n\
        sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
        username=\"alice\" password=\"alice-secret\";\n";
    let bootstrap = fleet.bootstrap();
    assert_eq!(
        produce_with_properties(&bootstrap, &orders, 100, properties, dir.path()),
        100
    );
    assert_eq!(
        produce_with_properties(&bootstrap, &payments, 10, properties, dir.path()),
        0
    );
}
