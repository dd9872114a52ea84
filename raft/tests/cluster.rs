//! A three-node group on loopback: bootstrap, replication, forwarding hints, optimistic
//! concurrency, leader failover and a restart from the data dir.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use flotilla_raft::{
    Command, CommandResult, ControlPlane, ProposeError, RaftConfig, RaftError, Role,
};

const WAIT: Duration = Duration::from_secs(10);

async fn start_all(configs: &[RaftConfig]) -> BTreeMap<u64, ControlPlane> {
    let mut nodes = BTreeMap::new();
    for c in configs {
        nodes.insert(
            c.node_id,
            ControlPlane::start(c.clone()).await.expect("start"),
        );
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_fail_over_and_rejoin() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let configs: Vec<_> = (1..=3)
        .map(|id| node_config(id, &root.path().join(format!("n{id}"))))
        .collect();
    let members = members(&configs);
    let mut nodes = start_all(&configs).await;

    // Every initial member bootstraps; only one bootstrap takes effect.
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        nodes[&1].initialize(members.clone()),
        nodes[&2].initialize(members.clone()),
        nodes[&3].initialize(members.clone()),
    );
    a.and(b).and(c).expect("initialize");
    let leader = eventually("a leader", WAIT, || agreed_leader(nodes.values())).await;
    println!("initial leader {leader} elected in {:?}", started.elapsed());
    let voters: BTreeSet<u64> = [1, 2, 3].into();
    assert_eq!(nodes[&leader].status().voters, voters);

    // Commands proposed on the leader are applied everywhere.
    let sync = Command::SyncBrokers {
        brokers: vec![(1, broker(9091)), (2, broker(9092)), (3, broker(9093))],
    };
    assert_eq!(
        nodes[&leader].propose(sync).await.unwrap(),
        CommandResult::Ok
    );
    let assign = Command::Assign {
        expected_epoch: 0,
        owners: vec![(1, 1), (2, 2), (3, 3)],
    };
    assert_eq!(
        nodes[&leader].propose(assign).await.unwrap(),
        CommandResult::Ok
    );
    let expected = state_of(&nodes[&leader]);
    assert_eq!(expected.assignment_epoch, 1);
    assert_eq!(expected.identities[&2].owner, Some(2));
    eventually("all nodes applied", WAIT, || {
        all_have(nodes.values(), &expected).then_some(())
    })
    .await;

    // A follower refuses and names the leader so the caller can forward.
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    let drain = Command::SetDrained {
        node: 3,
        drained: true,
    };
    match nodes[&follower].propose(drain).await {
        Err(ProposeError::NotLeader {
            leader: Some((id, member)),
        }) => {
            assert_eq!(id, leader);
            assert_eq!(member, members[&leader]);
        }
        other => panic!("expected NotLeader with the leader's address, got {other:?}"),
    }

    // A stale epoch is refused and changes nothing.
    let stale = Command::Assign {
        expected_epoch: 0,
        owners: vec![(1, 3)],
    };
    let result = nodes[&leader].propose(stale).await.unwrap();
    assert_eq!(result, CommandResult::StaleEpoch { current: 1 });
    assert_eq!(state_of(&nodes[&leader]), expected);

    assert!(nodes[&leader].is_leader_confirmed().await);
    assert!(!nodes[&follower].is_leader_confirmed().await);

    // Kill the leader: the other two elect a new one and accept proposals.
    let old = nodes.remove(&leader).unwrap();
    old.shutdown().await;
    let killed = Instant::now();
    let new_leader = eventually("a new leader", WAIT, || agreed_leader(nodes.values())).await;
    println!(
        "leader {leader} killed; {new_leader} elected in {:?}",
        killed.elapsed()
    );
    assert_ne!(new_leader, leader);
    let reassign = Command::Assign {
        expected_epoch: 1,
        owners: vec![(leader as i32, new_leader)],
    };
    assert_eq!(
        nodes[&new_leader].propose(reassign).await.unwrap(),
        CommandResult::Ok
    );
    println!(
        "first proposal after the kill committed {:?} after the kill",
        killed.elapsed()
    );

    // Restart the old leader from its data dir: it recovers locally, then catches up.
    let config = configs[leader as usize - 1].clone();
    let restarted = ControlPlane::start(config).await.expect("restart");
    assert_eq!(
        state_of(&restarted).identities.len(),
        3,
        "recovered from its own log"
    );
    restarted
        .initialize(members.clone())
        .await
        .expect("re-initialize is a no-op");
    nodes.insert(leader, restarted);
    let latest = state_of(&nodes[&new_leader]);
    assert_eq!(latest.assignment_epoch, 2);
    eventually("restarted node caught up", WAIT, || {
        all_have(nodes.values(), &latest).then_some(())
    })
    .await;
    let status = nodes[&leader].status();
    assert_eq!(status.role, Role::Follower);
    assert_eq!(status.leader, Some(new_leader));
    assert_eq!(status.voters, voters);

    for (_, node) in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_recovers_from_snapshot_and_log_after_restart() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let mut config = node_config(1, root.path());
    config.snapshot_every = 5;
    config.keep_logs_after_snapshot = 0;
    let node = ControlPlane::start(config.clone()).await.unwrap();
    node.initialize(members(std::slice::from_ref(&config)))
        .await
        .unwrap();
    eventually("self-election", WAIT, || agreed_leader([&node])).await;
    for epoch in 0..12u64 {
        let brokers = vec![(epoch as i32, broker(9000 + epoch as u16))];
        node.propose(Command::SyncBrokers { brokers })
            .await
            .unwrap();
        let owners = vec![(epoch as i32, epoch % 3)];
        let r = node
            .propose(Command::Assign {
                expected_epoch: epoch,
                owners,
            })
            .await;
        assert_eq!(r.unwrap(), CommandResult::Ok);
    }
    eventually("a snapshot", WAIT, || node.status().snapshot_index).await;
    let before = state_of(&node);
    node.shutdown().await;

    let node = ControlPlane::start(config).await.unwrap();
    assert_eq!(state_of(&node), before, "state right after restart");
    eventually("self-election after restart", WAIT, || {
        agreed_leader([&node])
    })
    .await;
    let r = node
        .propose(Command::Assign {
            expected_epoch: 12,
            owners: vec![],
        })
        .await;
    assert_eq!(r.unwrap(), CommandResult::Ok);
    node.shutdown().await;
}

#[tokio::test]
async fn start_refuses_another_nodes_data_dir() {
    let root = tempfile::tempdir().unwrap();
    let node = ControlPlane::start(node_config(1, root.path()))
        .await
        .unwrap();
    node.shutdown().await;
    match ControlPlane::start(node_config(2, root.path())).await {
        Err(
            e @ RaftError::ForeignDataDir {
                found: 1,
                expected: 2,
                ..
            },
        ) => {
            assert!(e.to_string().contains("belongs to node 1"), "{e}");
        }
        Err(other) => panic!("expected ForeignDataDir, got {other}"),
        Ok(_) => panic!("expected ForeignDataDir, got a running node"),
    }
}

#[tokio::test]
async fn start_names_the_address_it_cannot_bind() {
    let root = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = node_config(1, root.path());
    config.listen = taken.local_addr().unwrap();
    match ControlPlane::start(config).await {
        Err(e @ RaftError::Bind { .. }) => {
            let addr = taken.local_addr().unwrap().to_string();
            assert!(e.to_string().contains(&addr), "{e}");
        }
        Err(other) => panic!("expected Bind, got {other}"),
        Ok(_) => panic!("expected Bind, got a running node"),
    }
}
