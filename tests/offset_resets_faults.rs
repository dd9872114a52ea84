//! Offset resets survive the nodes carrying them out: kill -9 of the node serving the
//! group's coordinator connection, or of the Raft leader, in the middle of a reset. The
//! reset still completes, once: a running group reset to the earliest offsets receives
//! every record exactly once more, and no consumer is restarted.
//!
//! The groups are Java groups: librdkafka members that are rejoining when the node holding
//! their coordinator connection dies (as every member of a group under reset is) keep
//! reconnecting to the dead address, since FindCoordinator names the same broker id at
//! its new address and librdkafka does not re-point its coordinator connection after a
//! failed JoinGroup; that is a failover matter of its own, not the reset's, and the Raft
//! leader may well be that node.

mod support;

use std::time::{Duration, Instant};

use support::fleet::Fleet;
use support::groups::{
    committed, delivered, fill_partitions, proxyctl, wait_delivered, wait_reset_finished,
    JavaGroup, JavaGroupConsumer, RunningGroup,
};
use support::{kafka, unique_topic, wait_for};

const PARTITIONS: i32 = 6;
const PER_PARTITION: i64 = 100;

/// The broker id of `group`'s coordinator, from Kafka's own tool.
fn coordinator_of(group: &str) -> i32 {
    let out = support::run_tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &[
            "--bootstrap-server",
            kafka(),
            "--describe",
            "--group",
            group,
            "--state",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(group))
        .unwrap_or_else(|| panic!("no state line for {group}: {text}"));
    let id = line
        .split('(')
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no coordinator id in {line}"));
    id.trim().parse().unwrap()
}

/// Three consumers of a group through the fleet.
type StartGroup = fn(&Fleet, &str, &str) -> Box<dyn RunningGroup>;

fn java_group(fleet: &Fleet, topic: &str, group: &str) -> Box<dyn RunningGroup> {
    let start = || JavaGroupConsumer::start(&fleet.bootstrap(), topic, group, "classic", "");
    Box::new(JavaGroup(vec![start(), start(), start()]))
}

/// A group consumes everything; a reset to the earliest offsets starts through a node
/// other than `victim`'s pick, which is killed at once; the reset completes and every
/// record is delivered exactly once more.
async fn a_reset_survives_kill_of(
    start_group: StartGroup,
    pick_victim: impl Fn(&Fleet, &str) -> u64,
    what: &str,
) {
    let topic = unique_topic("reset-kill");
    support::rdkafka::create_topic(kafka(), &topic, PARTITIONS).await;
    fill_partitions(&topic, PARTITIONS, PER_PARTITION, "record").await;
    let mut fleet = Fleet::start(3, kafka(), "2s");
    let group_id = unique_topic("reset-kill-group");
    let group = start_group(&fleet, &topic, &group_id);
    wait_delivered(group.as_ref(), PARTITIONS, PER_PARTITION, 1);

    let victim = pick_victim(&fleet, &group_id);
    let survivor = if victim == 1 { 2 } else { 1 };
    let asked = Instant::now();
    proxyctl(
        fleet.node(survivor),
        &[
            "group",
            "reset",
            &group_id,
            "--topic",
            &topic,
            "--to-earliest",
        ],
    );
    fleet.node(victim).kill();
    println!("{what}: killed node {victim} after the reset was committed");

    let (reset, done) =
        wait_reset_finished(fleet.node(survivor), &group_id, Duration::from_secs(120));
    assert_eq!(reset.state, "done", "{reset:?}");
    assert!(reset.partitions.iter().all(|p| p.target == 0 && p.applied));
    wait_delivered(group.as_ref(), PARTITIONS, PER_PARTITION, 2);
    println!(
        "{what}: reset done {:?} and every record delivered again {:?} after it was asked",
        done - asked,
        asked.elapsed()
    );
    // Once the group has committed the end again, nothing is left to deliver.
    let end = vec![Some(PER_PARTITION); PARTITIONS as usize];
    wait_for(
        "the group committed the end",
        Duration::from_secs(60),
        || (committed(fleet.node(survivor), &group_id, &topic)? == end).then_some(()),
    );
    let expected = (PARTITIONS as i64 * PER_PARTITION) as usize;
    assert_eq!(
        delivered(group.as_ref(), 2),
        (expected, 0),
        "every record exactly twice: {}",
        group.summary()
    );
    println!("{what}: the application saw {}", group.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_survives_kill_of_the_coordinator_connections_node() {
    let pick = |fleet: &Fleet, group: &str| {
        let coordinator = coordinator_of(group);
        let status = fleet.status(1).expect("node 1 answers");
        let owner = status.identity(coordinator).and_then(|i| i.owner);
        owner.expect("the coordinator's identity has an owner")
    };
    a_reset_survives_kill_of(java_group, pick, "coordinator node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_survives_kill_of_the_raft_leader() {
    let pick = |fleet: &Fleet, _: &str| {
        let status = fleet.status(1).expect("node 1 answers");
        status.leader.expect("a leader")
    };
    a_reset_survives_kill_of(java_group, pick, "raft leader").await;
}
