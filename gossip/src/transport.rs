//! chitchat's UDP transport, bound by us and watched on the way in.
//!
//! Two things chitchat does not offer are needed at start: the port actually bound when
//! asked for port 0 (the chitchat id, which carries the advertised address, must be built
//! before chitchat opens its socket), and whether a peer has answered, or answered that it
//! belongs to another cluster (chitchat only logs its `BadCluster` reply). Binding the
//! socket ourselves and handing it to chitchat through a one-shot [`Transport`] solves the
//! first; wrapping that socket to note who sent and who was sent what solves the second.
//!
//! A peer has answered once chitchat has replied to its `Syn` or `SynAck`, not once its
//! message arrived. Admission wants the peer's knowledge, and a message on the socket is
//! not that yet: chitchat applies it only after `recv` returns, later still on a busy
//! machine, and an `Ack` carries no digest at all. A reply is worked out while the message
//! is applied, so when chitchat sends it, the peer's digest (every node the peer knows,
//! a live node with our id included) is in chitchat's state. Noting the reply, rather than
//! looking in that state for the seed's own entry, also works for a seed listed under an
//! address other than the one it advertises, which would otherwise never count as having
//! answered and would hold start for the whole wait.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpSocket};
use chitchat::{ChitchatEnvelope, ChitchatMessage};

/// Peers that have answered since start, as seen by the socket.
#[derive(Debug, Default)]
pub(crate) struct PeerLog {
    answered: HashSet<SocketAddr>,
    bad_cluster: HashSet<SocketAddr>,
}

impl PeerLog {
    /// Whether chitchat has applied a digest of `addr`'s (see the module docs).
    pub(crate) fn has_answered(&self, addr: &SocketAddr) -> bool {
        self.answered.contains(addr)
    }

    /// Whether `addr` rejected us as belonging to another cluster.
    pub(crate) fn rejected_us(&self, addr: &SocketAddr) -> bool {
        self.bad_cluster.contains(addr)
    }

    /// Notes a rejection, which is final as it arrives: there is nothing in it to apply.
    fn received(&mut self, from: SocketAddr, message: &ChitchatMessage) {
        if matches!(message, ChitchatMessage::BadCluster) {
            self.bad_cluster.insert(from);
        }
    }

    /// Notes a reply: chitchat sends a `SynAck` or an `Ack` only to a peer whose `Syn` or
    /// `SynAck` it has just applied (the `Syn`s it starts rounds with answer nothing).
    fn sent(&mut self, to: SocketAddr, message: &ChitchatMessage) {
        if matches!(
            message,
            ChitchatMessage::SynAck { .. } | ChitchatMessage::Ack { .. }
        ) {
            self.answered.insert(to);
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

/// chitchat's UDP socket, noting rejections received and replies sent.
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
        // Noted before sending: the digest is applied even if the reply is lost.
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sent(to, &envelope.message);
        self.inner.send(to, envelope).await
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        let outcome = self.inner.recv().await?;
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.received(outcome.from_addr, &outcome.envelope.message);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> SocketAddr {
        "127.0.0.1:7946".parse().unwrap()
    }

    fn syn_ack() -> ChitchatMessage {
        ChitchatMessage::SynAck {
            digest: Default::default(),
            delta: Default::default(),
        }
    }

    #[test]
    fn a_message_on_the_socket_is_not_yet_an_answer() {
        let mut log = PeerLog::default();
        log.received(seed(), &syn_ack());
        let own_round = ChitchatMessage::Syn {
            cluster_id: "c".into(),
            digest: Default::default(),
        };
        log.sent(seed(), &own_round);
        assert!(
            !log.has_answered(&seed()),
            "chitchat has not applied it yet"
        );
        log.sent(
            seed(),
            &ChitchatMessage::Ack {
                delta: Default::default(),
            },
        );
        assert!(log.has_answered(&seed()));
        assert!(!log.rejected_us(&seed()));
    }

    #[test]
    fn a_rejection_counts_as_it_arrives() {
        let mut log = PeerLog::default();
        log.received(seed(), &ChitchatMessage::BadCluster);
        assert!(log.rejected_us(&seed()));
    }
}
