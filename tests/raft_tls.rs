//! Raft between real node processes over mutual TLS (`[cluster.tls]`): the fleet works as
//! over plain HTTP, strangers are refused at the handshake and counted, and a node whose
//! certificate is unusable does not start.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use support::certs::{Ca, Leaf};
use support::fleet::Fleet;
use support::{kafka, next_host, Launch, Node};

/// A `[cluster.tls]` table for a node holding `leaf`, trusting `ca`.
fn cluster_tls(ca: &Path, leaf: &Leaf) -> String {
    format!(
        "[cluster.tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        ca.display(),
        leaf.cert.display(),
        leaf.key.display()
    )
}

/// The certificate of node `id`: it names `node-<id>`.
fn node_leaf(ca: &Ca, id: u64, days: i64) -> Leaf {
    let name = format!("node-{id}");
    ca.server(&name, &[&name], days)
}

/// A Raft RPC POST to node `id` at `addr` over TLS, trusting `ca` and presenting
/// `client` if given. Ok with the answer's status line; Err if the exchange failed.
fn post_raft(addr: &str, id: u64, ca: &Path, client: Option<&Leaf>) -> Result<String, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(leaf) => {
            let chain = CertificateDer::pem_file_iter(&leaf.cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(&leaf.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(format!("node-{id}")).unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    let request = format!(
        "POST /raft/vote HTTP/1.1\r\nhost: node-{id}\r\nx-flotilla-raft-target: {id}\r\n\
         content-length: 0\r\nconnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer.lines().next().unwrap_or_default().to_string();
    if status.is_empty() {
        return Err("connection closed without an answer".into());
    }
    Ok(status)
}

#[test]
fn a_fleet_over_mutual_tls_elects_replicates_refuses_strangers_and_survives_its_leader() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "fleet-ca");
    let leaves: Vec<Leaf> = (1..=3).map(|id| node_leaf(&ca, id, 365)).collect();
    let ca_pem = ca.pem.clone();
    let mut fleet = Fleet::start_each(3, kafka(), "1s", Launch::default(), |id, _| {
        cluster_tls(&ca_pem, &leaves[id as usize - 1])
    });
    // Every node has applied the leader's first assignment: elected and replicated.
    let before = fleet.status(1).unwrap();
    let leader = before.leader.unwrap();
    for id in 1..=3 {
        let status = fleet.status(id).unwrap();
        assert_eq!(status.assignment_epoch, before.assignment_epoch);
        assert!(status
            .raft_members
            .iter()
            .all(|m| !m.raft_address.is_empty()));
    }

    let witness = if leader == 1 { 2 } else { 1 };
    let node = &fleet.nodes[witness as usize - 1];
    let raft_addr = format!("{}:7947", node.host);
    let genuine = post_raft(&raft_addr, witness, &ca.pem, Some(&leaves[2]))
        .expect("a fleet certificate gets an HTTP answer");
    assert!(genuine.starts_with("HTTP/1.1 400"), "empty body: {genuine}");
    let anonymous = post_raft(&raft_addr, witness, &ca.pem, None);
    assert!(anonymous.is_err(), "no certificate: {anonymous:?}");
    let other_dir = tempfile::tempdir().unwrap();
    let stranger = Ca::new(other_dir.path(), "other-ca").server("node-3", &["node-3"], 365);
    let foreign = post_raft(&raft_addr, witness, &ca.pem, Some(&stranger));
    assert!(foreign.is_err(), "another CA's certificate: {foreign:?}");
    support::wait_for("two refusals counted", Duration::from_secs(10), || {
        let refused = node.metric("flotilla_raft_rpc_tls_refusals_total", "handshake");
        (refused >= 2.0).then_some(())
    });
    node.wait_for_log(&["refused a Raft RPC connection", "peer=127."]);

    let (term, epoch) = (before.term, before.assignment_epoch);
    fleet.node(leader).kill();
    let after = fleet.wait_for_status(witness, "a new leader and a committed takeover", |s| {
        s.leader.is_some_and(|l| l != leader)
            && s.assignment_epoch > epoch
            && s.all_owned_by_live_nodes()
    });
    assert!(after.term > term);
    assert!(!after.degraded);
    let identity_refusals = fleet.nodes[witness as usize - 1]
        .metric("flotilla_raft_rpc_tls_refusals_total", "identity");
    assert_eq!(identity_refusals, 0.0, "fleet members are never refused");
}

/// A single fleet node's config with `[cluster.tls]` holding `leaf`.
fn lone_tls_node(ca: &Path, leaf: &Leaf) -> Node {
    let cluster = format!(
        "[cluster]\nid = \"test\"\ngossip_listen = \"{{host}}:7946\"\n\
         raft_listen = \"{{host}}:7947\"\ndata_dir = \"{{dir}}/data\"\ninitial_members = [1]\n{}",
        cluster_tls(ca, leaf)
    );
    Node::spawn_as(1, &next_host(), "127.0.0.1:1", &cluster)
}

#[test]
fn a_node_with_an_unusable_certificate_does_not_start_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "fleet-ca");
    let expired = node_leaf(&ca, 1, -1);
    let mut node = lone_tls_node(&ca.pem, &expired);
    assert!(!node.wait_exit().success());
    let line = node.wait_for_log(&["cluster.tls.cert"]);
    assert!(line.contains("not now"), "{line}");

    let other_dir = tempfile::tempdir().unwrap();
    let unsigned = Ca::new(other_dir.path(), "other-ca").server("node-1", &["node-1"], 30);
    let mut node = lone_tls_node(&ca.pem, &unsigned);
    assert!(!node.wait_exit().success());
    node.wait_for_log(&["cluster.tls.cert", "cluster.tls.ca"]);

    let unnamed = ca.server("node-9", &["node-9"], 30);
    let mut node = lone_tls_node(&ca.pem, &unnamed);
    assert!(!node.wait_exit().success());
    node.wait_for_log(&["cluster.tls.cert", "does not name node-1"]);

    let good = node_leaf(&ca, 1, 30);
    let mismatched = Leaf {
        cert: good.cert,
        key: unnamed.key,
    };
    let mut node = lone_tls_node(&ca.pem, &mismatched);
    assert!(!node.wait_exit().success());
    node.wait_for_log(&["cluster.tls.key", "does not fit"]);
}
