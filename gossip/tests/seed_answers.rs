//! What counts as a seed's answer at start.
//!
//! A message from a seed is not yet the seed's knowledge: on a busy machine the socket can
//! hand chitchat a message it has not applied yet, and an `Ack` carries no digest at all.
//! Either way the new node holds a message from the seed and none of its state. The relay
//! below holds that gap open for a few rounds, so a check that trusts the message rather
//! than the state admits a duplicate node id every time, not once in a while.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chitchat::transport::{RecvOutcome, Socket, UdpSocket};
use chitchat::{ChitchatEnvelope, ChitchatMessage, ProtocolVersion};
use common::{state, CLUSTER};
use flotilla_gossip::{Gossip, GossipConfig, GossipError};

/// Messages of the newcomer's the relay drops, one a round while it knows nobody else: past
/// the admission check's first looks, well inside its ten-round wait (which must still
/// leave the incumbent time to be seen live).
const HELD_ROUNDS: usize = 2;
/// Longer than the default round: the test needs about five of the ten rounds start waits
/// at most, and on a busy machine rounds come late by an amount that does not scale.
const INTERVAL: Duration = Duration::from_millis(250);

fn config(listen: SocketAddr, seeds: Vec<String>) -> GossipConfig {
    GossipConfig {
        interval: INTERVAL,
        ..GossipConfig::new(CLUSTER, listen, seeds)
    }
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A port that was free a moment ago, for a node whose address must be known in advance.
fn free_port() -> u16 {
    let socket = std::net::UdpSocket::bind(localhost(0)).unwrap();
    socket.local_addr().unwrap().port()
}

/// Relays gossip between the node at `behind` and the first other sender (the newcomer).
/// The newcomer's first message is answered at once with an `Ack` whose delta is empty (a
/// message from the seed that tells nothing); its first [`HELD_ROUNDS`] messages are
/// dropped, and from then on everything is passed on both ways.
async fn relay(mut socket: UdpSocket, behind: SocketAddr) {
    let mut newcomer = None;
    let mut dropped = 0;
    while let Ok(RecvOutcome {
        from_addr,
        envelope,
        ..
    }) = socket.recv().await
    {
        let to = if from_addr == behind {
            newcomer
        } else if dropped < HELD_ROUNDS {
            if newcomer.replace(from_addr).is_none() {
                let _ = socket.send(from_addr, empty_ack()).await;
            }
            dropped += 1;
            None
        } else {
            Some(behind)
        };
        if let Some(to) = to {
            let _ = socket.send(to, envelope).await;
        }
    }
}

fn empty_ack() -> ChitchatEnvelope {
    ChitchatEnvelope {
        version: ProtocolVersion::V0,
        message: ChitchatMessage::Ack {
            delta: Default::default(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_is_refused_when_the_seed_says_nothing_at_first() {
    let socket = UdpSocket::open(localhost(0)).await.unwrap();
    let seed = socket.local_addr().unwrap();
    // The live node 1 is known, and reached, only at the relay's address.
    let listen = localhost(free_port());
    let incumbent_config = GossipConfig {
        advertise_addr: seed,
        ..config(listen, vec![])
    };
    let incumbent = Gossip::start(incumbent_config, state(1)).await.unwrap();
    let relay = tokio::spawn(relay(socket, listen));

    let config = config(localhost(0), vec![seed.to_string()]);
    let started = Instant::now();
    let result = Gossip::start(config, state(1)).await;
    println!("start returned after {:?}", started.elapsed());
    relay.abort();
    match result {
        Err(GossipError::DuplicateNodeId {
            node_id,
            other_addr,
        }) => assert_eq!((node_id.as_str(), other_addr), ("1", seed)),
        Err(other) => panic!("wrong error: {other}"),
        Ok(duplicate) => {
            duplicate.shutdown().await;
            panic!("a second node 1 was admitted");
        }
    }
    incumbent.shutdown().await;
}
