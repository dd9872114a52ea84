//! The fleet's promise, with real processes, real signals and a real Kafka cluster:
//! killing any node costs clients a short pause and nothing else.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla::api::{ClusterStatus, NodeState, RaftRole};
use futures::stream::{self, StreamExt};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use support::fleet::Fleet;
use support::rdkafka::{client_config as client, create_topic};
use support::{kafka, unique_topic, wait_for};

const TAKEOVER_AFTER: &str = "1s";

fn idempotent_producer(bootstrap: &str) -> FutureProducer {
    client(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "2")
        .create()
        .unwrap()
}

/// The broker id leading `partition`, as clients of the fleet see it.
fn leader_of(producer: &FutureProducer, topic: &str, partition: i32) -> i32 {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0].partitions()[partition as usize].leader()
}

/// Acknowledged offsets by value, and the time of each acknowledgement.
#[derive(Default)]
struct Acks {
    offsets: BTreeMap<String, i64>,
    times: Vec<Instant>,
}

/// Produces `count` records to `partition` with up to 50 in flight, recording each ack.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    count: usize,
    acks: &Mutex<Acks>,
) {
    stream::iter(0..count)
        .map(|i| async move {
            let value = format!("v-{i}");
            let record = FutureRecord::to(topic)
                .partition(partition)
                .key("k")
                .payload(&value);
            (
                value.clone(),
                producer.send(record, Duration::from_secs(60)).await,
            )
        })
        .buffer_unordered(50)
        .for_each(|(value, result)| async move {
            let delivery = result.unwrap_or_else(|(e, _)| panic!("{value} not acknowledged: {e}"));
            let mut acks = acks.lock().unwrap();
            assert!(acks.offsets.insert(value, delivery.offset).is_none());
            acks.times.push(Instant::now());
        })
        .await;
}

/// Every value in `partition`, read through `bootstrap` to the end.
fn consume_all(bootstrap: &str, topic: &str, partition: i32) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", unique_topic("check"))
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(20))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    wait_for(
        "reading the partition to its end",
        Duration::from_secs(60),
        || {
            while records.last().map_or(0, |(o, _)| o + 1) < high {
                match consumer.poll(Duration::from_millis(500))? {
                    Ok(m) => records.push((
                        m.offset(),
                        String::from_utf8_lossy(m.payload()?).to_string(),
                    )),
                    Err(e) => panic!("consumer error: {e}"),
                }
            }
            Some(())
        },
    );
    records
}

/// The longest time without an acknowledgement after `from`.
fn longest_gap_after(times: &[Instant], from: Instant) -> Duration {
    let mut sorted: Vec<Instant> = times.to_vec();
    sorted.sort();
    let mut previous = from;
    let mut longest = Duration::ZERO;
    for t in sorted.into_iter().filter(|t| *t > from) {
        longest = longest.max(t - previous);
        previous = t;
    }
    longest
}

/// Every acknowledged record is in the log at its acknowledged offset, exactly once.
fn assert_no_loss_no_duplicates(acks: &Acks, log: &[(i64, String)]) {
    let mut seen = BTreeMap::new();
    for (offset, value) in log {
        assert!(
            seen.insert(value.clone(), *offset).is_none(),
            "{value} appears twice"
        );
    }
    for (value, offset) in &acks.offsets {
        assert_eq!(
            seen.get(value),
            Some(offset),
            "acknowledged {value} at {offset} is missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_owner_of_a_hot_partition_loses_no_acknowledged_record() {
    let mut fleet = Fleet::start(3, kafka(), TAKEOVER_AFTER);
    let bootstrap = fleet.bootstrap();
    let topic = unique_topic("hot");
    create_topic(&bootstrap, &topic, 6).await;
    let producer = idempotent_producer(&bootstrap);
    let leader = leader_of(&producer, &topic, 0);
    let status = fleet.status(1).unwrap();
    let victim = status
        .identity(leader)
        .and_then(|i| i.owner)
        .expect("the leader identity has an owner");
    let survivor = if victim == 1 { 2 } else { 1 };

    let acks = Arc::new(Mutex::new(Acks::default()));
    let producing = {
        let (producer, topic, acks) = (producer.clone(), topic.clone(), acks.clone());
        tokio::spawn(async move { produce(&producer, &topic, 0, 6_000, &acks).await })
    };
    wait_for("1,000 acknowledgements", Duration::from_secs(60), || {
        (acks.lock().unwrap().times.len() >= 1_000).then_some(())
    });
    fleet.node(victim).kill();
    let killed_at = Instant::now();
    producing.await.unwrap();

    let acks = acks.lock().unwrap();
    let pause = longest_gap_after(&acks.times, killed_at);
    eprintln!("killed node {victim} (owner of identity {leader}); longest pause in acks {pause:?}");
    assert_eq!(acks.offsets.len(), 6_000);
    fleet.wait_for_status(survivor, "the takeover committed by Raft", |s| {
        s.all_owned_by_live_nodes()
            && s.identity(leader).and_then(|i| i.owner) != Some(victim)
            && !s.degraded
            && s.assignment_epoch >= 2
    });
    let survivor_bootstrap = fleet.node(survivor).bootstrap.clone();
    assert_no_loss_no_duplicates(&acks, &consume_all(&survivor_bootstrap, &topic, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_raft_leader_elects_a_new_one_that_takes_over() {
    let mut fleet = Fleet::start(3, kafka(), TAKEOVER_AFTER);
    let level = flotilla_raft::FEATURE_LEVEL;
    let before = fleet.wait_for_status(1, "the fleet feature level raised", |s| {
        s.feature_level == level
    });
    let leader = before.leader.unwrap();
    let (term, epoch) = (before.term, before.assignment_epoch);
    fleet.node(leader).kill();
    let witness = if leader == 1 { 2 } else { 1 };
    let after = fleet.wait_for_status(witness, "a new leader and a committed takeover", |s| {
        s.leader.is_some_and(|l| l != leader)
            && s.assignment_epoch > epoch
            && s.all_owned_by_live_nodes()
    });
    assert!(after.term > term);
    assert!(!after.degraded);
    assert_eq!(
        after.feature_level, level,
        "a committed level outlives its leader"
    );

    let new_leader = fleet.node(after.leader.unwrap());
    wait_for("the new leader's metrics", Duration::from_secs(10), || {
        let takeovers = new_leader.metric("flotilla_takeovers_total", "");
        let leader = new_leader.metric("flotilla_raft_is_leader", "");
        let dead = new_leader.metric("flotilla_gossip_dead_nodes", "");
        (takeovers >= 1.0 && leader == 1.0 && dead == 1.0).then_some(())
    });
}

#[test]
fn draining_a_node_through_any_node_moves_its_identities_away() {
    let fleet = Fleet::start(3, kafka(), TAKEOVER_AFTER);
    let leader = fleet.status(1).unwrap().leader.unwrap();
    let (via, drained) = match leader {
        1 => (2, 3),
        2 => (3, 1),
        _ => (1, 2),
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_proxyctl"))
        .args([
            "--endpoint",
            &fleet.nodes[via as usize - 1].admin,
            "node",
            "drain",
        ])
        .arg(drained.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = fleet.wait_for_status(via, "the drained node owning nothing, draining", |s| {
        s.all_owned_by_live_nodes()
            && owned_by(s, drained) == 0
            && s.node(drained).unwrap().state == NodeState::Draining
    });
    assert!(status.node(drained).unwrap().alive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_quorum_lost_the_survivor_still_serves_everything() {
    let mut fleet = Fleet::start(3, kafka(), TAKEOVER_AFTER);
    fleet.node(2).kill();
    fleet.node(3).kill();
    let status = fleet.wait_for_status(1, "degraded mode with every identity at node 1", |s| {
        s.degraded && s.identities.iter().all(|i| i.owner == Some(1))
    });
    for identity in &status.identities {
        assert!(identity.address.starts_with(&fleet.node(1).host));
    }

    let bootstrap = fleet.node(1).bootstrap.clone();
    let topic = unique_topic("degraded");
    let producer = idempotent_producer(&bootstrap);
    let acks = Mutex::new(Acks::default());
    produce(&producer, &topic, 0, 500, &acks).await;
    assert_no_loss_no_duplicates(&acks.lock().unwrap(), &consume_all(&bootstrap, &topic, 0));
}

/// Identities owned by `node` in a cluster status.
fn owned_by(status: &ClusterStatus, node: u64) -> usize {
    status
        .identities
        .iter()
        .filter(|i| i.owner == Some(node))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_rejoins_and_gets_identities_back_while_clients_work() {
    let mut fleet = Fleet::start(3, kafka(), TAKEOVER_AFTER);
    fleet.node(3).kill();
    fleet.wait_for_status(1, "node 3's identities committed elsewhere", |s| {
        !s.degraded && s.all_owned_by_live_nodes() && owned_by(s, 3) == 0
    });

    let bootstrap = format!("{},{}", fleet.nodes[0].bootstrap, fleet.nodes[1].bootstrap);
    let topic = unique_topic("rejoin");
    let producer = idempotent_producer(&bootstrap);
    let acks = Arc::new(Mutex::new(Acks::default()));
    let producing = {
        let (producer, topic, acks) = (producer.clone(), topic.clone(), acks.clone());
        tokio::spawn(async move { produce(&producer, &topic, 0, 4_000, &acks).await })
    };
    fleet.node(3).restart();
    let status = fleet.wait_for_status(1, "every node owning one identity again", |s| {
        s.all_owned_by_live_nodes() && (1..=3).all(|n| owned_by(s, n) == 1)
    });
    let node3 = status.node(3).unwrap();
    assert!(node3.alive);
    assert_ne!(
        node3.raft_role,
        RaftRole::None,
        "node 3 is back in the Raft group"
    );

    producing.await.unwrap();
    let acks = acks.lock().unwrap();
    assert_eq!(acks.offsets.len(), 4_000);
    assert_no_loss_no_duplicates(&acks, &consume_all(&bootstrap, &topic, 0));
}
