//! kcat (Debian's package, on librdkafka 2.0) through one node: the broker list it sees,
//! and a produce and consume.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{kafka, unique_topic, Node, IDENTITY_PORT_BASE};

fn kcat(node: &Node) -> Command {
    let mut command = Command::new("kcat");
    command.args(["-b", &node.bootstrap, "-X", "broker.address.family=v4"]);
    command
}

#[test]
fn metadata_lists_only_the_node_addresses() {
    let node = Node::start(kafka());
    let out = kcat(&node)
        .arg("-L")
        .output()
        .expect("kcat is installed by scripts/install-deps.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let brokers: Vec<&str> = listing
        .lines()
        .filter(|l| l.trim_start().starts_with("broker "))
        .collect();
    assert_eq!(brokers.len(), 3, "{listing}");
    for line in &brokers {
        assert!(line.contains(&format!("at {}:", node.host)), "{line}");
    }
    for slot in 0..3 {
        assert!(
            listing.contains(&format!("{}:{}", node.host, IDENTITY_PORT_BASE + slot)),
            "{listing}"
        );
    }
    let real_ports: Vec<String> = kafka()
        .split(',')
        .map(|a| a.rsplit(':').next().unwrap().to_string())
        .collect();
    for port in real_ports {
        assert!(
            !listing.contains(&format!(":{port}")),
            "real broker port {port} leaked:\n{listing}"
        );
    }
}

#[test]
fn produce_and_consume() {
    let node = Node::start(kafka());
    let topic = unique_topic("kcat");
    let lines: Vec<String> = (0..500).map(|i| format!("kcat-{i}")).collect();
    let mut producer = kcat(&node)
        .args(["-P", "-t", &topic, "-X", "acks=all"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    producer
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    assert!(producer.wait().unwrap().success());

    let out = kcat(&node)
        .args(["-C", "-t", &topic, "-o", "beginning", "-e", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut consumed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    consumed.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(consumed, expected);
}
