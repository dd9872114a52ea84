//! A node added after the leader has snapshotted and purged its log can only catch up by
//! installing the snapshot; then it follows the log like any learner, and can be removed.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use flotilla_raft::{Command, CommandResult, ControlPlane, RaftConfig, Role};

const WAIT: Duration = Duration::from_secs(15);

fn snapshotting_config(id: u64, root: &std::path::Path) -> RaftConfig {
    let mut config = node_config(id, &root.join(format!("n{id}")));
    config.snapshot_every = 20;
    config.keep_logs_after_snapshot = 0;
    config
}

async fn propose_history(leader: &ControlPlane, rounds: u64) {
    for epoch in 0..rounds {
        let brokers = (0..=epoch as i32)
            .map(|id| (id, broker(9000 + id as u16)))
            .collect();
        let r = leader
            .propose(Command::SyncBrokers { brokers })
            .await
            .unwrap();
        assert_eq!(r, CommandResult::Ok);
        let owners = vec![(epoch as i32, 1 + epoch % 3)];
        let r = leader
            .propose(Command::Assign {
                expected_epoch: epoch,
                owners,
            })
            .await;
        assert_eq!(r.unwrap(), CommandResult::Ok);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_catches_up_from_snapshot_after_logs_are_purged() {
    init_tracing();
    let root = tempfile::tempdir().unwrap();
    let configs: Vec<_> = (1..=3)
        .map(|id| snapshotting_config(id, root.path()))
        .collect();
    let mut nodes = BTreeMap::new();
    for c in &configs {
        let node = ControlPlane::start(c.clone()).await.unwrap();
        node.initialize(members(&configs)).await.unwrap();
        nodes.insert(c.node_id, node);
    }
    let leader = eventually("a leader", WAIT, || agreed_leader(nodes.values())).await;
    propose_history(&nodes[&leader], 30).await;
    let purged = eventually("leader purged its log", WAIT, || {
        let s = nodes[&leader].status();
        s.purged_index.filter(|p| *p >= 40)
    })
    .await;

    let learner_config = snapshotting_config(4, root.path());
    let learner = ControlPlane::start(learner_config.clone()).await.unwrap();
    let added = Instant::now();
    nodes[&leader]
        .add_learner(4, learner_config.member())
        .await
        .unwrap();
    let expected = state_of(&nodes[&leader]);
    eventually("learner has the leader's state", WAIT, || {
        (*state_of(&learner) == *expected).then_some(())
    })
    .await;
    println!(
        "learner caught up {:?} after add_learner (leader purged up to {purged})",
        added.elapsed()
    );
    let status = learner.status();
    assert_eq!(status.role, Role::Learner);
    let installed = status.snapshot_index.expect("learner installed a snapshot");
    assert!(
        installed >= purged,
        "snapshot at {installed}, purged up to {purged}"
    );
    assert!(nodes[&leader].status().learners.contains(&4));

    // After the snapshot the learner follows the log.
    let r = nodes[&leader]
        .propose(Command::SetDrained {
            node: 2,
            drained: true,
        })
        .await;
    assert_eq!(r.unwrap(), CommandResult::Ok);
    eventually("learner applied a later entry", WAIT, || {
        state_of(&learner).drained.contains(&2).then_some(())
    })
    .await;

    // Re-adding with the same addresses is a no-op; new addresses replace the old ones.
    let before = nodes[&leader].status().last_log_index;
    nodes[&leader]
        .add_learner(4, learner_config.member())
        .await
        .unwrap();
    assert_eq!(nodes[&leader].status().last_log_index, before);
    let mut moved = learner_config.member();
    moved.admin_addr = "127.0.0.1:1".into();
    nodes[&leader].add_learner(4, moved.clone()).await.unwrap();
    assert_eq!(nodes[&leader].status().members[&4], moved);

    nodes[&leader].remove_node(4).await.unwrap();
    let status = nodes[&leader].status();
    assert!(!status.learners.contains(&4) && !status.members.contains_key(&4));

    learner.shutdown().await;
    for (_, node) in nodes {
        node.shutdown().await;
    }
}
