//! Helpers for tests that run real ControlPlanes on loopback.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_raft::{BrokerAddr, ControlPlane, ControlState, Member, RaftConfig, Role};

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().unwrap().port()
}

/// A config on fresh loopback ports, with its data in `dir`.
pub fn node_config(id: u64, dir: &Path) -> RaftConfig {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}").parse().unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    RaftConfig::new(id, listen, format!("127.0.0.1:{port}"), admin, dir)
}

pub fn members(configs: &[RaftConfig]) -> BTreeMap<u64, Member> {
    configs.iter().map(|c| (c.node_id, c.member())).collect()
}

pub fn broker(port: u16) -> BrokerAddr {
    BrokerAddr {
        host: "127.0.0.1".into(),
        port,
        rack: None,
    }
}

/// Polls `probe` until it yields a value or `within` elapses.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Like [`eventually`] for probes that must await.
pub async fn eventually_async<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The leader every node in `nodes` agrees on, if that node is among them and leads.
pub fn agreed_leader<'a>(nodes: impl IntoIterator<Item = &'a ControlPlane>) -> Option<u64> {
    let statuses: Vec<_> = nodes.into_iter().map(|n| n.status()).collect();
    let leader = statuses.first()?.leader?;
    let all_agree = statuses.iter().all(|s| s.leader == Some(leader));
    let leads = statuses
        .iter()
        .any(|s| s.node_id == leader && s.role == Role::Leader);
    (all_agree && leads).then_some(leader)
}

pub fn state_of(node: &ControlPlane) -> Arc<ControlState> {
    node.state().borrow().clone()
}

/// True when every node has applied exactly `expected`.
pub fn all_have<'a>(
    nodes: impl IntoIterator<Item = &'a ControlPlane>,
    expected: &ControlState,
) -> bool {
    nodes.into_iter().all(|n| *state_of(n) == *expected)
}
