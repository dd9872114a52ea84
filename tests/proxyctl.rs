//! `proxyctl` against a real node: the table, the JSON that scripts rely on, and one-line
//! errors with a non-zero exit code.

mod support;

use std::process::{Command, Output};

use flotilla::api::{ClusterStatus, IdentitySummary};
use serde_json::Value;
use support::{kafka, Node};

fn proxyctl(endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proxyctl"))
        .args(["--endpoint", endpoint])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn cluster_status_as_table_and_json() {
    let node = Node::start(kafka());
    let table = stdout(&proxyctl(&node.admin, &["cluster", "status"]));
    assert!(
        table.contains("NODE") && table.contains("IDENTITY"),
        "{table}"
    );
    assert!(table.contains(&format!("{}:9192", node.host)), "{table}");
    assert_eq!(
        table.matches(&format!("{}:920", node.host)).count(),
        3,
        "{table}"
    );

    let text = stdout(&proxyctl(&node.admin, &["cluster", "status", "-o", "json"]));
    let json: ClusterStatus = serde_json::from_str(&text).unwrap();
    // Scripts read `leader` even when it is null; a typed read cannot tell a missing key.
    let raw: Value = serde_json::from_str(&text).unwrap();
    assert!(raw.get("leader").is_some());
    assert_eq!(json.nodes.len(), 1);
    assert_eq!(json.nodes[0].id, 1);
    assert!(json.nodes[0].alive);
    assert_eq!(json.nodes[0].identities.len(), 3);
    assert_eq!(json.identities.len(), 3);
    for identity in &json.identities {
        assert_eq!(identity.owner, Some(1));
        assert!(identity.address.starts_with(&node.host));
    }

    let listed: Vec<IdentitySummary> = serde_json::from_str(&stdout(&proxyctl(
        &node.admin,
        &["identities", "-o", "json"],
    )))
    .unwrap();
    assert_eq!(listed.len(), 3);
}

#[test]
fn errors_are_one_line_and_fail() {
    let unreachable = proxyctl("http://127.0.0.1:1", &["cluster", "status"]);
    assert!(!unreachable.status.success());
    let message = String::from_utf8(unreachable.stderr).unwrap();
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(message.starts_with("proxyctl: cannot reach"), "{message}");

    let node = Node::start(kafka());
    let drain = proxyctl(&node.admin, &["node", "drain", "1"]);
    assert!(!drain.status.success());
    let message = String::from_utf8(drain.stderr).unwrap();
    assert!(message.contains("standalone"), "{message}");

    let user = proxyctl(&node.admin, &["user", "add", "alice", "--password", "p"]);
    let message = String::from_utf8(user.stderr).unwrap();
    assert!(message.contains("standalone"), "{message}");
    let users = stdout(&proxyctl(&node.admin, &["user", "list", "-o", "json"]));
    assert_eq!(users.trim(), "[]");
}
