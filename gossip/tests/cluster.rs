//! Real gossip between instances on 127.0.0.1, each on a port of its own.
//!
//! Waits go through `Gossip::watch` with a deadline, never a fixed sleep: the watch channel
//! is itself under test, and a wait that passes proves it delivered the change.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{state, CLUSTER};
use flotilla_gossip::{Gossip, GossipConfig, GossipError, Lifecycle, Member, NodeState};

const DEADLINE: Duration = Duration::from_secs(5);

fn config(cluster: &str, listen: SocketAddr, seeds: &[&Gossip]) -> GossipConfig {
    let seeds = seeds.iter().map(|g| g.gossip_addr().to_string()).collect();
    GossipConfig::new(cluster, listen, seeds)
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn node(node_id: u64, seeds: &[&Gossip]) -> Gossip {
    Gossip::start(config(CLUSTER, any_port(), seeds), state(node_id))
        .await
        .unwrap_or_else(|e| panic!("node {node_id} did not start: {e}"))
}

/// Waits until `gossip`'s member list satisfies `condition`; returns how long it took.
async fn wait_for(
    gossip: &Gossip,
    what: &str,
    condition: impl FnMut(&Vec<Member>) -> bool,
) -> Duration {
    let started = Instant::now();
    let mut watch = gossip.watch();
    let waited = tokio::time::timeout(DEADLINE, watch.wait_for(condition)).await;
    match waited {
        Ok(Ok(_)) => started.elapsed(),
        _ => panic!(
            "node {} did not see {what} within {DEADLINE:?}; members: {:#?}",
            gossip.self_id(),
            gossip.members()
        ),
    }
}

fn member(members: &[Member], node_id: u64) -> Option<&Member> {
    members.iter().find(|m| m.state.node_id == node_id)
}

fn alive(members: &[Member], node_id: u64) -> bool {
    member(members, node_id).is_some_and(|m| m.alive)
}

fn dead(members: &[Member], node_id: u64) -> bool {
    member(members, node_id).is_some_and(|m| !m.alive)
}

fn all_alive(members: &[Member], ids: &[u64]) -> bool {
    ids.iter().all(|id| alive(members, *id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_see_each_other_and_a_dead_one() {
    let a = node(1, &[]).await;
    let b = node(2, &[&a]).await;
    let c = node(3, &[&a, &b]).await;
    for g in [&a, &b, &c] {
        wait_for(g, "all three live", |m| all_alive(m, &[1, 2, 3])).await;
        let members = g.members();
        let states: Vec<&NodeState> = members.iter().map(|m| &m.state).collect();
        assert_eq!(states, vec![&state(1), &state(2), &state(3)]);
        let selves: Vec<u64> = members
            .iter()
            .filter(|m| m.is_self)
            .map(|m| m.state.node_id)
            .collect();
        assert_eq!(selves, vec![g.self_id()]);
        assert_eq!((g.live_count(), g.dead_count()), (3, 0));
    }

    let c_addr = c.gossip_addr();
    c.shutdown().await;
    let (seen_by_a, seen_by_b) = tokio::join!(
        wait_for(&a, "node 3 dead", |m| dead(m, 3)),
        wait_for(&b, "node 3 dead", |m| dead(m, 3)),
    );
    println!(
        "failure detection of {c_addr}: node 1 after {seen_by_a:?}, node 2 after {seen_by_b:?}"
    );
    for g in [&a, &b] {
        assert_eq!((g.live_count(), g.dead_count()), (2, 1));
        let survivors = g.members();
        assert!(all_alive(&survivors, &[1, 2]), "{survivors:#?}");
        assert_eq!(member(&survivors, 3).map(|m| &m.state), Some(&state(3)));
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_propagate() {
    let a = node(1, &[]).await;
    let b = node(2, &[&a]).await;
    wait_for(&b, "node 1 live", |m| alive(m, 1)).await;

    a.set_lifecycle(Lifecycle::Draining).await;
    let own = member(&a.members(), 1).cloned().unwrap();
    assert_eq!(
        own.state.lifecycle,
        Lifecycle::Draining,
        "self view updates at once"
    );
    wait_for(&b, "node 1 draining", |m| {
        member(m, 1).is_some_and(|n| n.state.lifecycle == Lifecycle::Draining)
    })
    .await;

    a.set_load(1234).await;
    wait_for(&b, "node 1 load 1234", |m| {
        member(m, 1).is_some_and(|n| n.state.load == 1234)
    })
    .await;
    assert!(alive(&b.members(), 1));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_node_id_is_refused() {
    let a = node(1, &[]).await;
    let b = node(2, &[&a]).await;
    wait_for(&a, "node 2 live", |m| alive(m, 2)).await;

    let started = Instant::now();
    let result = Gossip::start(config(CLUSTER, any_port(), &[&a]), state(2)).await;
    let error = result.err().expect("a second node 2 must be refused");
    println!("duplicate refused after {:?}: {error}", started.elapsed());
    match &error {
        GossipError::DuplicateNodeId {
            node_id,
            other_addr,
        } => {
            assert_eq!((node_id.as_str(), *other_addr), ("2", b.gossip_addr()));
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(error.to_string().contains(&b.gossip_addr().to_string()));

    // The refused impostor neither displaces nor disturbs the real node 2.
    let seen = member(&a.members(), 2).cloned().unwrap();
    assert_eq!((seen.gossip_addr, seen.alive), (b.gossip_addr(), true));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_address_is_refused_by_name() {
    let a = node(1, &[]).await;
    let result = Gossip::start(config(CLUSTER, a.gossip_addr(), &[]), state(2)).await;
    let error = result.err().expect("binding a taken address must fail");
    assert!(matches!(error, GossipError::Bind { addr, .. } if addr == a.gossip_addr()));
    let message = error.to_string();
    assert!(message.contains(&a.gossip_addr().to_string()), "{message}");
    println!("{message}");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_of_another_cluster_is_refused() {
    let a = node(1, &[]).await;
    let result = Gossip::start(config("other-cluster", any_port(), &[&a]), state(2)).await;
    let error = result
        .err()
        .expect("a seed of another cluster must be refused");
    match &error {
        GossipError::ClusterMismatch { seed, cluster_id } => {
            assert_eq!(
                (*seed, cluster_id.as_str()),
                (a.gossip_addr(), "other-cluster")
            );
        }
        other => panic!("wrong error: {other}"),
    }
    println!("{error}");
    assert_eq!(a.members().len(), 1, "the stranger never joined");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_seeds_delay_start_but_do_not_prevent_it() {
    // A bound socket nobody reads: gossip sent there is never answered.
    let silent = std::net::UdpSocket::bind(any_port()).unwrap();
    let seed = silent.local_addr().unwrap().to_string();
    let cfg = GossipConfig::new(CLUSTER, any_port(), vec![seed]);
    let started = Instant::now();
    let a = Gossip::start(cfg, state(1)).await.unwrap();
    let waited = started.elapsed();
    println!("started without a silent seed after {waited:?}");
    assert!(waited < DEADLINE);
    assert_eq!((a.live_count(), a.dead_count()), (1, 0));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_is_seen_alive_again() {
    let a = node(1, &[]).await;
    let b = node(2, &[&a]).await;
    wait_for(&a, "node 2 live", |m| alive(m, 2)).await;
    let (old_addr, old_generation) = (b.gossip_addr(), b.generation());
    b.shutdown().await;
    wait_for(&a, "node 2 dead", |m| dead(m, 2)).await;

    // Same id, same address: the socket is free again once the old incarnation is gone.
    let b = Gossip::start(config(CLUSTER, old_addr, &[&a]), state(2))
        .await
        .unwrap();
    assert!(b.generation() > old_generation);
    let generation = b.generation();
    wait_for(&a, "node 2 back", |m| {
        member(m, 2).is_some_and(|n| n.alive && n.generation == generation)
    })
    .await;
    assert_eq!((a.live_count(), a.dead_count()), (2, 0));
    b.shutdown().await;
    wait_for(&a, "node 2 dead again", |m| dead(m, 2)).await;

    // Same id on another port: the dead earlier incarnations do not count as duplicates.
    let b = node(2, &[&a]).await;
    let (addr, generation) = (b.gossip_addr(), b.generation());
    assert_ne!(addr, old_addr);
    wait_for(&a, "node 2 back on a new port", |m| {
        member(m, 2).is_some_and(|n| n.alive && n.generation == generation && n.gossip_addr == addr)
    })
    .await;
    b.shutdown().await;
    a.shutdown().await;
}

/// Polls `check` until it holds, failing with `what` after the deadline.
async fn poll(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < DEADLINE,
            "no {what} within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_of_a_raft_member_never_makes_it_look_alive() {
    let a = node(1, &[]).await;
    let b = node(2, &[&a]).await;
    wait_for(&a, "node 2 live", |m| alive(m, 2)).await;
    let recorded =
        std::collections::BTreeMap::from([(1, state(1).raft_addr), (2, state(2).raft_addr)]);
    a.set_raft_addrs(recorded.clone()).await;
    b.shutdown().await;
    wait_for(&a, "node 2 dead", |m| dead(m, 2)).await;

    let forged = NodeState {
        raft_addr: "127.0.0.66:9700".into(),
        ..state(2)
    };
    let impostor = Gossip::start(config(CLUSTER, any_port(), &[&a]), forged)
        .await
        .unwrap();
    poll("impostor found", || a.impostors().len() == 1).await;
    let found = &a.impostors()[0];
    assert_eq!(
        (found.published.as_str(), found.recorded.as_str()),
        ("127.0.0.66:9700", "127.0.0.2:9700")
    );
    wait_for(&impostor, "node 1 live at the impostor", |m| alive(m, 1)).await;
    assert!(
        dead(&a.members(), 2),
        "the impostor makes node 2 look alive"
    );
    assert_eq!(
        member(&a.members(), 2).unwrap().state.raft_addr,
        "127.0.0.2:9700"
    );

    // The same gossip, unvetted, would have taken it for node 2.
    a.set_raft_addrs(Default::default()).await;
    wait_for(&a, "the unvetted impostor live", |m| alive(m, 2)).await;
    a.set_raft_addrs(recorded).await;
    assert!(dead(&a.members(), 2));
    assert_eq!(a.impostors_detected(), 1, "one incarnation, counted once");
    impostor.shutdown().await;
    a.shutdown().await;
}
