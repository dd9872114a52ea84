//! The fleet follows its backend cluster: a broker an operator adds gets an identity, a
//! port on every node and the same place in every node's Metadata; a broker removed from
//! the cluster leaves every node's Metadata. The test changes the shared Kafka cluster,
//! so it is the only test in its binary (cargo runs test binaries one at a time).

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::fleet::Fleet;
use support::wire::RawClient;
use support::{kafka, repo_root, run_tool, unique_topic, wait_for};

const ADDED: i32 = 4;

/// A broker added to the shared cluster, removed again even if the test fails.
struct AddedBroker {
    removed: bool,
}

impl AddedBroker {
    fn add() -> AddedBroker {
        cluster_script("add-broker");
        AddedBroker { removed: false }
    }

    fn remove(mut self) {
        self.removed = true;
        cluster_script("remove-broker");
    }
}

impl Drop for AddedBroker {
    fn drop(&mut self) {
        if !self.removed {
            cluster_script("remove-broker");
        }
    }
}

fn cluster_script(command: &str) {
    let status = Command::new(repo_root().join("scripts/kafka-cluster.sh"))
        .args([command, &ADDED.to_string()])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "kafka-cluster.sh {command} {ADDED} failed"
    );
}

/// Where a node's Metadata advertises identity `id`, if it lists it.
fn advertised(bootstrap: &str, id: i32) -> Option<(String, i32)> {
    let metadata = RawClient::connect(bootstrap).metadata();
    let broker = metadata.brokers.iter().find(|b| b.node_id.0 == id)?;
    Some((broker.host.to_string(), broker.port))
}

fn kcat(bootstrap: &str) -> Command {
    let mut command = Command::new("kcat");
    command.args(["-b", bootstrap, "-X", "broker.address.family=v4"]);
    command
}

#[test]
fn brokers_added_to_and_removed_from_the_backend_are_followed() {
    let fleet = Fleet::start(3, kafka(), "1s");
    let broker = AddedBroker::add();

    let addresses: Vec<(String, i32)> = fleet
        .nodes
        .iter()
        .map(|node| {
            wait_for(
                "the new broker in Metadata",
                Duration::from_secs(60),
                || advertised(&node.bootstrap, ADDED),
            )
        })
        .collect();
    assert!(
        addresses.iter().all(|a| *a == addresses[0]),
        "every node advertises the new identity at the same address: {addresses:?}"
    );
    let hosts: Vec<&str> = fleet.nodes.iter().map(|n| n.host.as_str()).collect();
    assert!(
        hosts.contains(&addresses[0].0.as_str()),
        "{addresses:?} is at a node"
    );

    // The data path through the new identity: a partition whose only replica is on it.
    let topic = unique_topic("added-broker");
    let via = fleet.nodes[0].bootstrap.clone();
    run_tool(
        "org.apache.kafka.tools.TopicCommand",
        &[
            "--bootstrap-server",
            &via,
            "--create",
            "--topic",
            &topic,
            "--replica-assignment",
            &ADDED.to_string(),
        ],
    );
    let mut produce = kcat(&via)
        .args(["-P", "-t", &topic, "-p", "0"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    produce
        .stdin
        .take()
        .unwrap()
        .write_all(b"through the new broker\n")
        .unwrap();
    assert!(produce.wait().unwrap().success());
    let consumed = kcat(&fleet.nodes[1].bootstrap)
        .args(["-C", "-t", &topic, "-o", "beginning", "-c", "1", "-e", "-q"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&consumed.stdout).trim(),
        "through the new broker"
    );
    run_tool(
        "org.apache.kafka.tools.TopicCommand",
        &["--bootstrap-server", &via, "--delete", "--topic", &topic],
    );

    broker.remove();
    for node in &fleet.nodes {
        wait_for(
            "the removed broker gone from Metadata",
            Duration::from_secs(60),
            || advertised(&node.bootstrap, ADDED).is_none().then_some(()),
        );
    }
    let status = fleet.status(1).unwrap();
    assert!(!status.degraded);
}
