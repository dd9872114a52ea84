//! Joining a fleet, at the level of node processes: a node serves clients only once it
//! has the fleet's identity table, and a node that would corrupt the fleet (a second copy
//! of a node id, a seed from another cluster) refuses to start and says why.

mod support;

use std::time::Duration;

use flotilla::api::{ClusterStatus, RaftMemberSummary};
use support::fleet::Fleet;
use support::wire::RawClient;
use support::{http_get_status, kafka, next_host, wait_for, Node};

fn cluster_toml(cluster_id: &str, seeds: &[&str], initial_members: &[u64]) -> String {
    let seeds: Vec<String> = seeds.iter().map(|s| format!("\"{s}:7946\"")).collect();
    let members: Vec<String> = initial_members.iter().map(u64::to_string).collect();
    format!(
        "[cluster]\nid = \"{cluster_id}\"\ngossip_listen = \"{{host}}:7946\"\nseeds = [{}]\n\
         raft_listen = \"{{host}}:7947\"\ndata_dir = \"{{dir}}/data\"\ninitial_members = [{}]\n",
        seeds.join(", "),
        members.join(", ")
    )
}

/// Starts a one-node fleet and waits until it serves.
fn single_node_fleet(cluster_id: &str) -> Node {
    let node = Node::spawn_as(
        1,
        &next_host(),
        kafka(),
        &cluster_toml(cluster_id, &[], &[1]),
    );
    node.wait_ready();
    node
}

#[test]
fn a_node_refuses_clients_until_it_has_the_fleets_identity_table() {
    let first_host = next_host();
    // Node 1 waits for node 2 before the Raft group can be initialized.
    let first = Node::spawn_as(1, &first_host, kafka(), &cluster_toml("join", &[], &[1, 2]));
    let (status, reason) = wait_for("the admin listener", Duration::from_secs(20), || {
        http_get_status(&format!("{}/readyz", first.admin)).ok()
    });
    assert_eq!(
        status, 503,
        "readyz before the table was replicated: {reason}"
    );
    assert!(reason.contains("not been replicated"), "{reason}");

    let mut client = RawClient::connect(&first.bootstrap);
    client.assert_closed_within(Duration::from_secs(5));
    first.wait_for_log(&["closing a client connection: not ready"]);
    assert!(first.metric("flotilla_connections_closed_total", "not_ready") >= 1.0);

    let _second = Node::spawn_as(
        2,
        &next_host(),
        kafka(),
        &cluster_toml("join", &[&first_host], &[1, 2]),
    );
    first.wait_ready();
    let metadata = RawClient::connect(&first.bootstrap).metadata();
    assert!(!metadata.brokers.is_empty(), "a ready node lists brokers");
    for broker in &metadata.brokers {
        assert!(
            broker.port >= 9200,
            "broker {} advertised at {}:{}, not at an identity port",
            broker.node_id.0,
            broker.host,
            broker.port
        );
    }
}

/// Starts node `id` seeded at `first` with `cluster_id`, and checks that it exits with an
/// error whose log line contains `why`, while `first` keeps serving.
fn assert_refused(first: &Node, id: u64, cluster_id: &str, why: &str) {
    let toml = cluster_toml(cluster_id, &[&first.host], &[id]);
    let mut refused = Node::spawn_as(id, &next_host(), kafka(), &toml);
    assert!(
        !refused.wait_exit().success(),
        "the node must exit with an error"
    );
    let log = refused.log();
    assert!(log.contains(why), "the log says why ({why}):\n{log}");
    first.wait_ready();
}

#[test]
fn a_second_node_with_the_same_id_is_refused() {
    let first = single_node_fleet("dup");
    assert_refused(
        &first,
        1,
        "dup",
        "node id 1 is already in use by a live node",
    );
}

#[test]
fn a_seed_from_another_cluster_is_refused() {
    let first = single_node_fleet("blue");
    assert_refused(
        &first,
        2,
        "green",
        "belongs to another cluster (ours is `green`)",
    );
}

/// `proxyctl --endpoint ADMIN args...`: success, stdout and stderr.
fn proxyctl(admin: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxyctl"))
        .arg("--endpoint")
        .arg(admin)
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn raft_member(status: &ClusterStatus, id: u64) -> Option<&RaftMemberSummary> {
    status.raft_members.iter().find(|m| m.id == id)
}

#[test]
fn a_wiped_node_rejoins_as_a_new_member_only_after_an_operator_removes_the_old_one() {
    let mut fleet = Fleet::start(3, kafka(), "1s");
    let admin = fleet.node(1).admin.clone();
    let before = fleet.status(1).unwrap();
    let old = raft_member(&before, 3).expect("node 3 is a Raft member");

    let (ok, _, error) = proxyctl(&admin, &["node", "remove", "2"]);
    assert!(!ok, "removing a live node must be refused");
    assert!(error.contains("node 2 is alive"), "{error}");

    fleet.node(3).kill();
    fleet.node(3).wipe_data();
    fleet.wait_for_status(1, "node 3 dead and its identities taken over", |s| {
        s.all_owned_by_live_nodes() && s.node(3).is_some_and(|n| !n.alive)
    });
    fleet.node(3).restart();
    assert!(
        !fleet.node(3).wait_exit().success(),
        "a wiped node must not take its old seat"
    );
    let log = fleet.node(3).log();
    assert!(
        log.contains("starts with a new data directory") && log.contains("node remove 3"),
        "the refusal says what to do:\n{log}"
    );

    // The refused start was alive in gossip for a moment; removal waits until it is dead.
    let removed = wait_for("proxyctl node remove 3", Duration::from_secs(20), || {
        let (ok, out, _) = proxyctl(&admin, &["node", "remove", "3"]);
        ok.then_some(out)
    });
    assert!(removed.contains("node 3 is removed"), "{removed}");
    fleet.wait_for_status(1, "node 3 out of the Raft group", |s| {
        raft_member(s, 3).is_none()
    });

    fleet.node(3).restart();
    fleet.node(3).wait_ready();
    let status = fleet.wait_for_status(1, "node 3 back as a voter owning identities", |s| {
        raft_member(s, 3).is_some_and(|m| m.voter)
            && s.node(3)
                .is_some_and(|n| n.alive && !n.identities.is_empty())
    });
    let new = raft_member(&status, 3).unwrap();
    assert_ne!(
        new.incarnation, old.incarnation,
        "node 3 joined with its new data directory"
    );
}
