//! chitchat's UDP transport, bound by us and watched on the way in.
//!
//! Two things chitchat does not offer are needed at start: the port actually bound when
//! asked for port 0 (the chitchat id, which carries the advertised address, must be built
//! before chitchat opens its socket), and whether a peer has answered at all, or answered
//! that it belongs to another cluster (chitchat only logs its `BadCluster` reply). Binding
//! the socket ourselves and handing it to chitchat through a one-shot [`Transport`] solves
//! the first; wrapping that socket to note who sent what solves the second.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpSocket};
use chitchat::{ChitchatEnvelope, ChitchatMessage};

/// Peers heard from since start, as seen by the socket.
#[derive(Debug, Default)]
pub(crate) struct PeerLog {
    answered: HashSet<SocketAddr>,
    bad_cluster: HashSet<SocketAddr>,
}

impl PeerLog {
    /// Whether `addr` has sent us anything, a rejection included.
    pub(crate) fn has_answered(&self, addr: &SocketAddr) -> bool {
        self.answered.contains(addr)
    }

    /// Whether `addr` rejected us as belonging to another cluster.
    pub(crate) fn rejected_us(&self, addr: &SocketAddr) -> bool {
        self.bad_cluster.contains(addr)
    }

    fn record(&mut self, from: SocketAddr, message: &ChitchatMessage) {
        self.answered.insert(from);
        if matches!(message, ChitchatMessage::BadCluster) {
            self.bad_cluster.insert(from);
        }
    }
}

pub(crate) type SharedPeerLog = Arc<Mutex<PeerLog>>;

/// A transport that hands chitchat one socket we bound beforehand.
pub(crate) struct BoundTransport {
    socket: Mutex<Option<Box<dyn Socket>>>,
}

impl BoundTransport {
    /// Binds `addr` and returns the transport, the bound address, and the log of peers.
    pub(crate) async fn bind(
        addr: SocketAddr,
    ) -> anyhow::Result<(BoundTransport, SocketAddr, SharedPeerLog)> {
        let udp = UdpSocket::open(addr).await?;
        let bound = udp.local_addr()?;
        let peers = SharedPeerLog::default();
        let socket = LoggingSocket {
            inner: udp,
            peers: peers.clone(),
        };
        let transport = BoundTransport {
            socket: Mutex::new(Some(Box::new(socket))),
        };
        Ok((transport, bound, peers))
    }
}

#[async_trait]
impl Transport for BoundTransport {
    async fn open(&self, _listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = self.socket.lock().unwrap_or_else(|e| e.into_inner()).take();
        socket.ok_or_else(|| anyhow::anyhow!("the gossip socket was already handed out"))
    }
}

/// chitchat's UDP socket, noting the sender and kind of every message received.
struct LoggingSocket {
    inner: UdpSocket,
    peers: SharedPeerLog,
}

#[async_trait]
impl Socket for LoggingSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.inner.local_addr()
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        self.inner.send(to, envelope).await
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        let outcome = self.inner.recv().await?;
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.record(outcome.from_addr, &outcome.envelope.message);
        Ok(outcome)
    }
}
