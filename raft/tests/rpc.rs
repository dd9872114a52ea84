//! How the RPC client classifies failures matters to openraft: `Unreachable` makes it
//! back off, anything else is retried at once.

mod common;

use common::*;
use flotilla_raft::network::{NetworkFactory, PeerMembers};
use flotilla_raft::{ControlPlane, Member};
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::VoteRequest;
use openraft::Vote;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn vote(target: u64, raft_addr: &str) -> Result<(), String> {
    let mut factory = NetworkFactory::new(9, Duration::from_millis(300), None).unwrap();
    let mut client = factory
        .new_client(target, &Member::new(raft_addr, ""))
        .await;
    let req = VoteRequest::new(Vote::new(1, 9), None);
    let option = RPCOption::new(Duration::from_secs(1));
    match client.vote(req, option).await {
        Ok(_) => Ok(()),
        Err(RPCError::Unreachable(e)) => Err(format!("unreachable: {e}")),
        Err(e) => Err(format!("other: {e}")),
    }
}

#[tokio::test]
async fn rpc_errors_are_classified_for_backoff() {
    let closed = format!("127.0.0.1:{}", free_port());
    let err = vote(1, &closed).await.unwrap_err();
    assert!(err.starts_with("unreachable"), "{err}");

    let root = tempfile::tempdir().unwrap();
    let config = node_config(7, root.path());
    let node = ControlPlane::start(config.clone()).await.unwrap();
    vote(7, &config.advertise_raft_addr)
        .await
        .expect("vote answered");
    let err = vote(8, &config.advertise_raft_addr).await.unwrap_err();
    assert!(
        err.starts_with("unreachable") && err.contains("this is node 7"),
        "{err}"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_starting_node_reads_the_groups_members_from_a_peers_raft_listener() {
    let factory = NetworkFactory::new(9, Duration::from_millis(300), None).unwrap();
    let wait = Duration::from_secs(2);
    let closed = format!("127.0.0.1:{}", free_port());
    let unreachable = factory.members_of(1, &closed, wait).await;
    assert_eq!(unreachable, PeerMembers::Unreachable);

    let root = tempfile::tempdir().unwrap();
    let config = node_config(7, root.path());
    let node = ControlPlane::start(config.clone()).await.unwrap();
    let addr = &config.advertise_raft_addr;
    let before = factory.members_of(7, addr, wait).await;
    assert_eq!(
        before,
        PeerMembers::Known(Default::default()),
        "no group yet"
    );
    let members = members(std::slice::from_ref(&config));
    node.initialize(members.clone()).await.unwrap();
    let known = PeerMembers::Known(members);
    eventually_async("the group to show its member", WAIT, || async {
        (factory.members_of(7, addr, wait).await == known).then_some(())
    })
    .await;
    node.shutdown().await;
}
