//! Raft RPC over mutual TLS, in process: a group whose nodes hold certificates of one
//! CA works as over plain HTTP, and the listener refuses peers without such a
//! certificate and requests whose sender the peer's certificate does not name.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use flotilla_raft::network::NetworkFactory;
use flotilla_raft::{Command, CommandResult, ControlPlane, Member, RaftConfig, RaftTls};
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::VoteRequest;
use openraft::Vote;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

const WAIT: Duration = Duration::from_secs(10);

struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.0.der().clone()).unwrap();
        Arc::new(roots)
    }

    /// A certificate this CA signed naming `names`, and its key.
    fn leaf(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.0)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], key)
    }

    /// Mutual TLS for a node whose certificate names `names`.
    fn tls_for(&self, names: &[&str]) -> RaftTls {
        let (chain, key) = self.leaf(names);
        tls_config(self.roots(), chain, key)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> RaftTls {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .unwrap();
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .unwrap();
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    RaftTls {
        server: Arc::new(server),
        client,
    }
}

fn tls_node_config(ca: &Ca, id: u64, dir: &std::path::Path) -> RaftConfig {
    let mut config = node_config(id, dir);
    config.tls = Some(ca.tls_for(&[&format!("node-{id}")]));
    config
}

/// A vote request claiming to come from `candidate`, sent as `from_id` with `tls`.
async fn vote_as(
    from_id: u64,
    candidate: u64,
    tls: Option<ClientConfig>,
    target: u64,
    raft_addr: &str,
) -> Result<(), String> {
    let mut factory = NetworkFactory::new(from_id, Duration::from_millis(300), tls).unwrap();
    let mut client = factory
        .new_client(target, &Member::new(raft_addr, ""))
        .await;
    let req = VoteRequest::new(Vote::new(1, candidate), None);
    let option = RPCOption::new(Duration::from_secs(2));
    match client.vote(req, option).await {
        Ok(_) => Ok(()),
        Err(RPCError::Unreachable(e)) => Err(format!("unreachable: {e}")),
        Err(e) => Err(format!("other: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_over_mutual_tls_elects_and_replicates() {
    init_tracing();
    let ca = Ca::new();
    let root = tempfile::tempdir().unwrap();
    let configs: Vec<_> = (1..=3)
        .map(|id| tls_node_config(&ca, id, &root.path().join(format!("n{id}"))))
        .collect();
    let mut nodes = Vec::new();
    for c in &configs {
        nodes.push(ControlPlane::start(c.clone()).await.unwrap());
    }
    nodes[0].initialize(members(&configs)).await.unwrap();
    let leader = eventually("a leader", WAIT, || agreed_leader(&nodes)).await;
    let sync = Command::SyncBrokers {
        brokers: vec![(1, broker(9091))],
    };
    let leader_node = nodes.iter().find(|n| n.node_id() == leader).unwrap();
    assert_eq!(leader_node.propose(sync).await.unwrap(), CommandResult::Ok);
    let expected = state_of(leader_node);
    eventually("all nodes applied", WAIT, || {
        all_have(&nodes, &expected).then_some(())
    })
    .await;
    for node in &nodes {
        assert_eq!(node.rpc_refusals().handshake, 0);
        assert_eq!(node.rpc_refusals().identity, 0);
    }
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_without_the_fleet_certificate_or_naming_another_node_are_refused() {
    init_tracing();
    let ca = Ca::new();
    let root = tempfile::tempdir().unwrap();
    let config = tls_node_config(&ca, 1, root.path());
    let node = ControlPlane::start(config.clone()).await.unwrap();
    let addr = config.advertise_raft_addr.clone();

    let genuine = ca.tls_for(&["node-2"]).client;
    vote_as(2, 2, Some(genuine.clone()), 1, &addr)
        .await
        .expect("a fleet member naming itself is heard");

    vote_as(2, 2, None, 1, &addr)
        .await
        .expect_err("plain HTTP is refused");
    let (chain, key) = Ca::new().leaf(&["node-2"]);
    let stranger = tls_config(ca.roots(), chain, key).client;
    vote_as(2, 2, Some(stranger), 1, &addr)
        .await
        .expect_err("a certificate of another CA is refused");
    let handshakes = eventually("two refused handshakes", WAIT, || {
        let n = node.rpc_refusals().handshake;
        (n >= 2).then_some(n)
    })
    .await;
    assert!(handshakes >= 2);

    // Node 2's certificate, speaking as node 3.
    let err = vote_as(3, 3, Some(genuine.clone()), 1, &addr)
        .await
        .unwrap_err();
    assert!(err.contains("does not name node-3"), "{err}");
    let err = vote_as(2, 3, Some(genuine), 1, &addr).await.unwrap_err();
    assert!(err.contains("sender header"), "{err}");
    assert_eq!(node.rpc_refusals().identity, 1);

    let unnamed = ca.tls_for(&["somebody"]).client;
    let err = vote_as(2, 2, Some(unnamed), 1, &addr).await.unwrap_err();
    assert!(err.contains("does not name node-2"), "{err}");
    assert_eq!(node.rpc_refusals().identity, 2);

    let err = vote_as(2, 2, Some(ca.tls_for(&["node-2"]).client), 5, &addr)
        .await
        .unwrap_err();
    assert!(
        !err.contains("this is node"),
        "a server whose certificate does not name the node we meant is never asked: {err}"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_fleet_members_read_the_group_over_mutual_tls() {
    use flotilla_raft::network::PeerMembers;
    let ca = Ca::new();
    let root = tempfile::tempdir().unwrap();
    let config = tls_node_config(&ca, 1, root.path());
    let node = ControlPlane::start(config.clone()).await.unwrap();
    let addr = config.advertise_raft_addr.clone();
    let wait = Duration::from_secs(2);
    let member = Some(ca.tls_for(&["node-2"]).client);
    let factory = NetworkFactory::new(2, Duration::from_millis(300), member).unwrap();
    let seen = factory.members_of(1, &addr, wait).await;
    assert_eq!(seen, PeerMembers::Known(Default::default()));
    let plain = NetworkFactory::new(2, Duration::from_millis(300), None).unwrap();
    let refused = plain.members_of(1, &addr, wait).await;
    assert_eq!(refused, PeerMembers::Unreachable);
    node.shutdown().await;
}
