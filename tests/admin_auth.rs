//! The authenticated admin API against real fleets: tokens from the configuration and
//! from Raft, read and admin scopes, writes forwarded to the leader with the caller's
//! credentials, the fleet's users, ACLs and tokens through `proxyctl -o json`, and the
//! API over HTTPS with client certificates.

mod support;

use std::process::Output;
use std::time::Duration;

use flotilla::api::{
    Acl, AclsAdded, AclsRemoved, ClusterStatus, CreatedToken, NodeState, TokenSource, TokenSummary,
    UserSummary,
};
use support::certs::Ca;
use support::fleet::Fleet;
use support::{kafka, wait_for, AdminAccess, Launch, Node};

const ADMIN_TOKEN: &str = "admin-token-of-the-test";
const READ_TOKEN: &str = "read-token-of-the-test";

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `[admin]` with an admin and a read token (`extra` goes into the section).
fn admin_section(extra: &str) -> String {
    format!(
        "[admin]\ntokens = [{{ name = \"ops\", scope = \"admin\", sha256 = \"{}\" }},\n\
         {{ name = \"grafana\", scope = \"read\", sha256 = \"{}\" }}]\n{extra}",
        sha256_hex(ADMIN_TOKEN),
        sha256_hex(READ_TOKEN)
    )
}

/// `proxyctl` against `node` with `access`'s credentials, `stdin` fed to it.
fn proxyctl(node: &Node, access: &AdminAccess, args: &[&str], stdin: &str) -> Output {
    access.proxyctl(node, args, stdin)
}

/// The JSON `proxyctl` printed, failing the test with its error if it failed.
fn json_of<T: serde::de::DeserializeOwned>(output: Output) -> T {
    assert!(
        output.status.success(),
        "proxyctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The one-line error of a `proxyctl` that failed.
fn error_of(output: Output) -> String {
    assert!(!output.status.success(), "proxyctl succeeded");
    let message = String::from_utf8(output.stderr).unwrap();
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    message
}

/// Drains the leader through `node` (a follower) with `access`, and waits until the
/// follower sees it draining.
fn drain_through(fleet: &Fleet, node: &Node, access: &AdminAccess, (leader, follower): (u64, u64)) {
    let drained = proxyctl(node, access, &["node", "drain", &leader.to_string()], "");
    assert!(
        drained.status.success(),
        "{}",
        String::from_utf8_lossy(&drained.stderr)
    );
    fleet.wait_for_status(follower, "the drained node draining", |s| {
        s.node(leader)
            .is_some_and(|n| n.state == NodeState::Draining)
    });
}

fn leader_and_follower(fleet: &Fleet) -> (u64, u64) {
    let status = fleet.wait_for_status(1, "a leader", |s| s.leader.is_some());
    let leader = status.leader.unwrap();
    let follower = status.nodes.iter().map(|n| n.id).find(|id| *id != leader);
    (leader, follower.unwrap())
}

#[test]
fn config_tokens_guard_the_api_and_travel_with_forwarded_writes() {
    let admin = AdminAccess::token(ADMIN_TOKEN);
    let section = |_: u64, _: &str| admin_section("");
    let fleet = Fleet::start_secured(3, kafka(), "2s", Launch::default(), &section, admin.clone());
    let (leader, follower) = leader_and_follower(&fleet);
    let node = &fleet.nodes[follower as usize - 1];
    let cluster = format!("{}/api/v1/cluster", node.admin);

    let anonymous = AdminAccess::default();
    let refused = anonymous.call("GET", &cluster).unwrap();
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(
        refused.www_authenticate.as_deref(),
        Some(r#"Bearer realm="flotilla""#)
    );
    let unknown = AdminAccess::token("guess").call("GET", &cluster).unwrap();
    assert_eq!(unknown.status, 401, "{}", unknown.body);
    for open in ["/healthz", "/readyz", "/metrics"] {
        let url = format!("{}{open}", node.admin);
        assert_eq!(anonymous.call("GET", &url).unwrap().status, 200, "{open}");
    }
    let error = error_of(proxyctl(node, &anonymous, &["cluster", "status"], ""));
    assert!(error.contains("needs a token"), "{error}");

    let read = AdminAccess::token(READ_TOKEN);
    let status: ClusterStatus = json_of(proxyctl(
        node,
        &read,
        &["cluster", "status", "-o", "json"],
        "",
    ));
    assert_eq!(status.nodes.len(), 3);
    let error = error_of(proxyctl(
        node,
        &read,
        &["node", "drain", &leader.to_string()],
        "",
    ));
    assert!(error.contains("read-only"), "{error}");

    // Sent to a follower: forwarded to the leader, which checks the same token.
    drain_through(&fleet, node, &admin, (leader, follower));
    let leader_log = fleet.nodes[leader as usize - 1].wait_for_log(&["admin write", "token ops"]);
    assert!(leader_log.contains("/drain"), "{leader_log}");

    assert!(node.metric("flotilla_admin_requests_total", "unauthenticated") >= 2.0);
    assert!(node.metric("flotilla_admin_requests_total", "forbidden") >= 1.0);
    assert!(node.metric("flotilla_admin_requests_total", "result=\"ok\"") >= 1.0);
    for node in &fleet.nodes {
        assert!(!node.log().contains(ADMIN_TOKEN), "a token reached a log");
    }
}

#[test]
fn an_open_fleet_is_secured_by_its_first_token_and_manages_users_and_acls() {
    let mut fleet = Fleet::start(3, kafka(), "2s");
    fleet.wait_for_status(1, "the fleet feature level 2", |s| s.feature_level >= 2);
    let open = AdminAccess::default();
    let created: CreatedToken = json_of(proxyctl(
        &fleet.nodes[1],
        &open,
        &["token", "add", "first", "--scope", "admin", "-o", "json"],
        "",
    ));
    assert_eq!(created.scope, "admin");
    let admin = AdminAccess::token(&created.token);
    for node in &mut fleet.nodes {
        node.access = admin.clone();
    }
    let url = format!("{}/api/v1/cluster", fleet.nodes[2].admin);
    wait_for(
        "the fleet's token asked for on node 3",
        Duration::from_secs(10),
        || (open.call("GET", &url).ok()?.status == 401).then_some(()),
    );
    assert_eq!(admin.call("GET", &url).unwrap().status, 200);

    let tokens: Vec<TokenSummary> = json_of(proxyctl(
        &fleet.nodes[0],
        &admin,
        &["token", "list", "-o", "json"],
        "",
    ));
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        (tokens[0].name.as_str(), tokens[0].source),
        ("first", TokenSource::Fleet)
    );

    users_through_proxyctl(&fleet, &admin);
    acls_through_proxyctl(&fleet, &admin);
    read_token_through_proxyctl(&fleet, &admin);
}

fn users_through_proxyctl(fleet: &Fleet, admin: &AdminAccess) {
    let (n1, n3) = (&fleet.nodes[0], &fleet.nodes[2]);
    let password = "correct horse battery staple";
    let add = [
        "user",
        "add",
        "alice",
        "--mechanism",
        "SCRAM-SHA-256",
        "--password-stdin",
        "-o",
        "json",
    ];
    let saved: serde_json::Value = json_of(proxyctl(n1, admin, &add, &format!("{password}\n")));
    assert_eq!(saved["mechanism"], "SCRAM-SHA-256");
    let add_512 = [
        "user",
        "add",
        "alice",
        "--mechanism",
        "scram-sha-512",
        "--password",
        password,
        "--iterations",
        "8192",
        "-o",
        "json",
    ];
    json_of::<serde_json::Value>(proxyctl(n1, admin, &add_512, ""));
    let listed = wait_for(
        "alice's two credentials on node 3",
        Duration::from_secs(10),
        || {
            let out = proxyctl(n3, admin, &["user", "list", "-o", "json"], "");
            let users: Vec<UserSummary> = json_of(out);
            users
                .into_iter()
                .find(|u| u.name == "alice" && u.credentials.len() == 2)
        },
    );
    let mechanisms: Vec<(&str, u32)> = listed
        .credentials
        .iter()
        .map(|c| (c.mechanism.as_str(), c.iterations))
        .collect();
    assert_eq!(
        mechanisms,
        [("SCRAM-SHA-256", 4096), ("SCRAM-SHA-512", 8192)]
    );
    let raw = proxyctl(n3, admin, &["user", "list", "-o", "json"], "");
    let text = String::from_utf8(raw.stdout).unwrap();
    assert!(!text.contains("key") && !text.contains("salt"), "{text}");

    let bad = error_of(proxyctl(
        n1,
        admin,
        &[
            "user",
            "add",
            "bob",
            "--mechanism",
            "MD5",
            "--password",
            "x",
        ],
        "",
    ));
    assert!(bad.contains("SCRAM mechanism"), "{bad}");
    json_of::<serde_json::Value>(proxyctl(
        n3,
        admin,
        &[
            "user",
            "delete",
            "alice",
            "--mechanism",
            "SCRAM-SHA-256",
            "-o",
            "json",
        ],
        "",
    ));
    wait_for(
        "one credential left on node 1",
        Duration::from_secs(10),
        || {
            let users: Vec<UserSummary> =
                json_of(proxyctl(n1, admin, &["user", "list", "-o", "json"], ""));
            (users.len() == 1 && users[0].credentials.len() == 1).then_some(())
        },
    );
    let gone = error_of(proxyctl(n1, admin, &["user", "delete", "nobody"], ""));
    assert!(gone.contains("no user"), "{gone}");
    for node in &fleet.nodes {
        assert!(!node.log().contains(password), "the password reached a log");
    }
}

fn acls_through_proxyctl(fleet: &Fleet, admin: &AdminAccess) {
    let (n2, n3) = (&fleet.nodes[1], &fleet.nodes[2]);
    let add = [
        "acl",
        "add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--operation",
        "Describe",
        "--topic",
        "orders",
        "-o",
        "json",
    ];
    let added: AclsAdded = json_of(proxyctl(n2, admin, &add, ""));
    assert_eq!(added.added.len(), 2);
    let deny = [
        "acl",
        "add",
        "--deny-principal",
        "User:mallory",
        "--deny-host",
        "10.0.0.9",
        "--operation",
        "Write",
        "--topic",
        "orders-",
        "--resource-pattern-type",
        "prefixed",
    ];
    assert!(proxyctl(n2, admin, &deny, "").status.success());
    let list = ["acl", "list", "--topic", "orders", "-o", "json"];
    let listed: Vec<Acl> = wait_for("alice's ACLs on node 3", Duration::from_secs(10), || {
        let acls: Vec<Acl> = json_of(proxyctl(n3, admin, &list, ""));
        (acls.len() == 2).then_some(acls)
    });
    assert!(listed
        .iter()
        .all(|a| a.principal == "User:alice" && a.permission == "ALLOW"));
    let mallory: Vec<Acl> = json_of(proxyctl(
        n3,
        admin,
        &["acl", "list", "--principal", "User:mallory", "-o", "json"],
        "",
    ));
    assert_eq!(mallory.len(), 1);
    assert_eq!(
        (mallory[0].pattern_type.as_str(), mallory[0].host.as_str()),
        ("PREFIXED", "10.0.0.9")
    );

    let invalid = error_of(proxyctl(
        n2,
        admin,
        &["acl", "add", "--allow-principal", "alice", "--topic", "t"],
        "",
    ));
    assert!(invalid.contains("User:name"), "{invalid}");

    let remove = [
        "acl",
        "remove",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--topic",
        "orders",
        "-o",
        "json",
    ];
    let removed: AclsRemoved = json_of(proxyctl(n3, admin, &remove, ""));
    assert_eq!(removed.removed.len(), 1);
    assert_eq!(removed.removed[0].operation, "READ");
    wait_for(
        "one ACL of orders left on node 2",
        Duration::from_secs(10),
        || {
            let acls: Vec<Acl> = json_of(proxyctl(n2, admin, &list, ""));
            (acls.len() == 1 && acls[0].operation == "DESCRIBE").then_some(())
        },
    );
}

fn read_token_through_proxyctl(fleet: &Fleet, admin: &AdminAccess) {
    let (n1, n2) = (&fleet.nodes[0], &fleet.nodes[1]);
    let created: CreatedToken = json_of(proxyctl(
        n1,
        admin,
        &["token", "add", "ci", "--scope", "read", "-o", "json"],
        "",
    ));
    let read = AdminAccess::token(&created.token);
    let status: ClusterStatus = wait_for(
        "the read token accepted on node 2",
        Duration::from_secs(10),
        || {
            let out = proxyctl(n2, &read, &["cluster", "status", "-o", "json"], "");
            out.status.success().then(|| json_of(out))
        },
    );
    assert_eq!(status.nodes.len(), 3);
    let error = error_of(proxyctl(
        n2,
        &read,
        &["acl", "remove", "--topic", "orders"],
        "",
    ));
    assert!(error.contains("read-only"), "{error}");
    let taken = error_of(proxyctl(
        n2,
        admin,
        &["token", "add", "ci", "--scope", "admin"],
        "",
    ));
    assert!(taken.contains("exists"), "{taken}");

    assert!(proxyctl(n2, admin, &["token", "delete", "ci"], "")
        .status
        .success());
    wait_for(
        "the deleted token refused on node 1",
        Duration::from_secs(10),
        || {
            let out = proxyctl(n1, &read, &["cluster", "status"], "");
            let refused = !out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("does not accept");
            refused.then_some(())
        },
    );
}

#[test]
fn the_admin_api_over_https_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "admin-ca");
    let operator = ca.client("operator");
    let section = |_: u64, host: &str| {
        let leaf = ca.server(host, &[host], 30);
        admin_section(&format!(
            "[admin.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
            leaf.cert.display(),
            leaf.key.display(),
            ca.pem.display()
        ))
    };
    let tls = AdminAccess {
        ca: Some(ca.pem.clone()),
        ..AdminAccess::default()
    };
    let fleet = Fleet::start_secured(
        2,
        kafka(),
        "2s",
        Launch::default(),
        &section,
        tls.with_token(ADMIN_TOKEN),
    );
    let (leader, follower) = leader_and_follower(&fleet);
    let node = &fleet.nodes[follower as usize - 1];
    let cluster = format!("{}/api/v1/cluster", node.admin);

    let plain = AdminAccess::default().call("GET", &cluster.replacen("https", "http", 1));
    assert!(
        plain.is_err() || plain.unwrap().status >= 400,
        "plain HTTP answered"
    );
    assert_eq!(tls.call("GET", &cluster).unwrap().status, 401);
    let healthz = format!("{}/healthz", node.admin);
    assert_eq!(tls.call("GET", &healthz).unwrap().status, 200);
    let status: ClusterStatus = json_of(proxyctl(
        node,
        &tls.with_token(READ_TOKEN),
        &["cluster", "status", "-o", "json"],
        "",
    ));
    assert_eq!(status.nodes.len(), 2);

    // A client certificate is an admin; the follower forwards with its own certificate.
    let certified = AdminAccess {
        client: Some((operator.cert.clone(), operator.key.clone())),
        ..tls.clone()
    };
    drain_through(&fleet, node, &certified, (leader, follower));
    fleet.nodes[leader as usize - 1].wait_for_log(&["admin write", "certificate User:CN="]);

    let stranger_ca = Ca::new(dir.path(), "stranger-ca");
    let stranger = stranger_ca.client("stranger");
    let untrusted = AdminAccess {
        client: Some((stranger.cert.clone(), stranger.key.clone())),
        ..tls.clone()
    };
    assert!(!proxyctl(node, &untrusted, &["cluster", "status"], "")
        .status
        .success());
}

#[test]
fn a_wiped_node_of_a_secured_fleet_is_still_refused_its_old_seat() {
    // A starting node has no token; it reads the Raft group from its peers' Raft listeners.
    let section = |_: u64, _: &str| admin_section("");
    let admin = AdminAccess::token(ADMIN_TOKEN);
    let mut fleet = Fleet::start_secured(3, kafka(), "1s", Launch::default(), &section, admin);
    fleet.node(3).kill();
    fleet.node(3).wipe_data();
    fleet.wait_for_status(1, "node 3 dead", |s| s.node(3).is_some_and(|n| !n.alive));
    fleet.node(3).restart();
    assert!(
        !fleet.node(3).wait_exit().success(),
        "a wiped node must not take its old seat"
    );
    let log = fleet.node(3).log();
    assert!(log.contains("starts with a new data directory"), "{log}");
}
