//! `proxyctl` against a real node: the table, the JSON that scripts rely on, and one-line
//! errors with a non-zero exit code.

mod support;

use std::process::{Command, Output};

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

    let json: Value = serde_json::from_str(&stdout(&proxyctl(
        &node.admin,
        &["cluster", "status", "-o", "json"],
    )))
    .unwrap();
    assert!(json.get("leader").is_some());
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["id"], 1);
    assert_eq!(nodes[0]["alive"], true);
    assert_eq!(nodes[0]["identities"].as_array().unwrap().len(), 3);
    let identities = json["identities"].as_array().unwrap();
    assert_eq!(identities.len(), 3);
    for identity in identities {
        assert_eq!(identity["owner"], 1);
        assert!(identity["address"]
            .as_str()
            .unwrap()
            .starts_with(&node.host));
        assert!(identity["id"].is_i64());
    }

    let listed: Value = serde_json::from_str(&stdout(&proxyctl(
        &node.admin,
        &["identities", "-o", "json"],
    )))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
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
}
