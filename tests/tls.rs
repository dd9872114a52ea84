//! TLS between clients and a node: real clients (kcat, librdkafka, the Java client) over
//! TLS listeners beside the plaintext ones, client certificates, refusals that say why,
//! certificates checked at start, and certificates rotated on disk under load.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use support::certs::{Ca, Leaf};
use support::java::produce_with_properties;
use support::{kafka, next_host, unique_topic, wait_for, Node};

const TLS_BOOTSTRAP_PORT: u16 = 9193;
const TLS_IDENTITY_PORT_BASE: u16 = 9300;

/// The `[tls]` section of a node using `leaf`, with optional extra lines.
fn tls_section(leaf: &Leaf, extra: &str) -> String {
    format!(
        "[tls]\nbootstrap_port = {TLS_BOOTSTRAP_PORT}\nidentity_port_base = {TLS_IDENTITY_PORT_BASE}\n\
         cert = \"{}\"\nkey = \"{}\"\nreload_interval = \"200ms\"\n{extra}\n",
        leaf.cert.display(),
        leaf.key.display()
    )
}

fn tls_bootstrap(node: &Node) -> String {
    format!("{}:{TLS_BOOTSTRAP_PORT}", node.host)
}

/// kcat over TLS to `bootstrap`, trusting `ca`, with extra `-X` settings.
fn kcat_tls(bootstrap: &str, ca: &Path, extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new("kcat");
    command.args(["-b", bootstrap, "-X", "broker.address.family=v4"]);
    command.args(["-X", "security.protocol=SSL"]);
    command.args(["-X", &format!("ssl.ca.location={}", ca.display())]);
    for (key, value) in extra {
        command.args(["-X", &format!("{key}={value}")]);
    }
    command
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kcat failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn produce_lines(mut kcat: Command, topic: &str, lines: &[String]) {
    use std::io::Write;
    let mut child = kcat
        .args(["-P", "-t", topic])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.join("\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "kcat produce failed");
}

fn consume_lines(mut kcat: Command, topic: &str, count: usize) -> Vec<String> {
    let out = kcat
        .args(["-C", "-t", topic, "-e", "-q", "-c", &count.to_string()])
        .output()
        .unwrap();
    stdout_of(&out).lines().map(str::to_string).collect()
}

fn tls_node(dir: &Path, extra: &str) -> (Node, Ca) {
    let host = next_host();
    let ca = Ca::new(dir, "ca");
    let leaf = ca.server("node", &[&host], 30);
    let node = Node::spawn_as(1, &host, kafka(), &tls_section(&leaf, extra));
    node.wait_ready();
    (node, ca)
}

#[test]
fn tls_and_plaintext_clients_share_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let (node, ca) = tls_node(dir.path(), "");
    let tls = tls_bootstrap(&node);

    let listing = stdout_of(&kcat_tls(&tls, &ca.pem, &[]).arg("-L").output().unwrap());
    for slot in 0..3 {
        let address = format!("{}:{}", node.host, TLS_IDENTITY_PORT_BASE + slot);
        assert!(
            listing.contains(&address),
            "TLS clients get TLS ports:\n{listing}"
        );
    }
    assert!(
        !listing.contains(":920"),
        "no plaintext port for a TLS client:\n{listing}"
    );

    let topic = unique_topic("tls");
    let lines: Vec<String> = (0..300).map(|i| format!("tls-{i}")).collect();
    produce_lines(kcat_tls(&tls, &ca.pem, &[]), &topic, &lines);
    let mut plain = Command::new("kcat");
    plain.args(["-b", &node.bootstrap, "-X", "broker.address.family=v4"]);
    let mut read_back = consume_lines(plain, &topic, lines.len());
    read_back.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(
        read_back, expected,
        "records produced over TLS, read in plaintext"
    );
}

#[test]
fn wrong_clients_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _ca) = tls_node(dir.path(), "");
    let tls = tls_bootstrap(&node);

    let plaintext = Command::new("kcat")
        .args([
            "-b",
            &tls,
            "-X",
            "broker.address.family=v4",
            "-L",
            "-m",
            "3",
        ])
        .output()
        .unwrap();
    assert!(!plaintext.status.success());
    node.wait_for_log(&["plaintext client on a TLS port", "connection closed"]);

    let stranger = Ca::new(dir.path(), "stranger");
    let untrusted = kcat_tls(&tls, &stranger.pem, &[])
        .args(["-L", "-m", "3"])
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(said.contains("certificate verify failed"), "{said}");
    assert!(node.metric("flotilla_tls_handshake_failures_total", "") >= 2.0);

    // Nothing else is affected: the plaintext port still serves.
    let listing = Command::new("kcat")
        .args([
            "-b",
            &node.bootstrap,
            "-X",
            "broker.address.family=v4",
            "-L",
        ])
        .output()
        .unwrap();
    assert!(stdout_of(&listing).contains("3 brokers"));
}

#[test]
fn client_certificates_are_required_and_name_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let host = next_host();
    let ca = Ca::new(dir.path(), "ca");
    let leaf = ca.server("node", &[&host], 30);
    let client_ca = format!("client_ca = \"{}\"", ca.pem.display());
    let node = Node::spawn_as(1, &host, kafka(), &tls_section(&leaf, &client_ca));
    node.wait_ready();
    let tls = tls_bootstrap(&node);

    let alice = ca.client("alice");
    let (cert, key) = (
        alice.cert.display().to_string(),
        alice.key.display().to_string(),
    );
    let with_cert = [
        ("ssl.certificate.location", cert.as_str()),
        ("ssl.key.location", key.as_str()),
    ];
    let listing = kcat_tls(&tls, &ca.pem, &with_cert)
        .arg("-L")
        .output()
        .unwrap();
    assert!(stdout_of(&listing).contains("3 brokers"));
    node.wait_for_log(&["connection closed", "principal=\"User:CN=alice\""]);

    let without = kcat_tls(&tls, &ca.pem, &[])
        .args(["-L", "-m", "3"])
        .output()
        .unwrap();
    assert!(
        !without.status.success(),
        "no client certificate, no service"
    );
}

#[test]
fn bad_certificates_stop_the_node_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let host = next_host();
    let ca = Ca::new(dir.path(), "ca");
    let expired = ca.server("expired", &[&host], -1);
    let mut node = Node::spawn_as(1, &host, kafka(), &tls_section(&expired, ""));
    assert!(!node.wait_exit().success());
    let line = node.wait_for_log(&["tls.cert"]);
    assert!(line.contains("not now"), "{line}");

    let good = ca.server("good", &[&host], 30);
    let other = ca.server("other", &[&host], 30);
    let mismatched = Leaf {
        cert: good.cert,
        key: other.key,
    };
    let mut node = Node::spawn_as(1, &host, kafka(), &tls_section(&mismatched, ""));
    assert!(!node.wait_exit().success());
    node.wait_for_log(&["tls.key", "does not fit"]);
}

/// The subject of the certificate a TLS server at `address` presents now.
fn presented_subject(address: &str, ca: &Path) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", address, "-CAfile"])
        .arg(ca)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // OpenSSL 3 writes `subject=CN = node`; spaces dropped, it reads `subject=CN=node`.
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_default()
        .replace(' ', "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificates_serve_new_connections_while_old_ones_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let host = next_host();
    let ca = Ca::new(dir.path(), "ca");
    let first = ca.server("node", &[&host], 30);
    let node = Node::spawn_as(1, &host, kafka(), &tls_section(&first, ""));
    node.wait_ready();
    let tls = tls_bootstrap(&node);
    assert!(presented_subject(&tls, &ca.pem).contains("CN=node"));

    let topic = unique_topic("tls-rotation");
    let producer: FutureProducer = support::rdkafka::client_config(&tls)
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca.pem.display().to_string())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load = {
        let (acked, failed, topic) = (acked.clone(), failed.clone(), topic.clone());
        tokio::spawn(async move {
            for i in 0u64.. {
                let payload = format!("r{i}");
                let record = FutureRecord::<(), _>::to(&topic).payload(&payload);
                match producer.send(record, Duration::from_secs(30)).await {
                    Ok(_) => acked.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    wait_for(
        "records acknowledged over TLS",
        Duration::from_secs(30),
        || (acked.load(Ordering::Relaxed) > 50).then_some(()),
    );

    // Replace the files in place, as a certificate manager renews them.
    let renewed = ca.server("renewed", &[&host], 60);
    std::fs::copy(&renewed.key, &first.key).unwrap();
    std::fs::copy(&renewed.cert, &first.cert).unwrap();
    node.wait_for_log(&["TLS certificate reloaded"]);
    let before = acked.load(Ordering::Relaxed);
    wait_for(
        "new connections see the renewed certificate",
        Duration::from_secs(10),
        || {
            presented_subject(&tls, &ca.pem)
                .contains("CN=renewed")
                .then_some(())
        },
    );
    wait_for(
        "the old connections keep producing",
        Duration::from_secs(30),
        || (acked.load(Ordering::Relaxed) > before + 50).then_some(()),
    );
    load.abort();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no send failed");
    assert_eq!(
        node.metric("flotilla_connections_closed_total", "tls_handshake"),
        0.0,
        "no client connection was cut"
    );
}

#[test]
fn the_java_client_produces_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (node, ca) = tls_node(dir.path(), "");
    let tls = tls_bootstrap(&node);
    let topic = unique_topic("tls-java");
    let properties = format!(
        "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
        ca.pem.display()
    );
    let acked = produce_with_properties(&tls, &topic, 500, &properties, dir.path());
    assert_eq!(acked, 500, "every send acknowledged over TLS");
}
