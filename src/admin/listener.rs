//! The admin API's connections, over plain TCP or TLS, and what the authentication layer
//! learns about each one: the peer's address (for logs) and the subject of a client
//! certificate the configured client CA signed (an admin credential).
//!
//! The TLS side is a small axum `Listener` over tokio-rustls rather than a server crate:
//! it shares the client listeners' rustls set-up (ring provider, certificate checks at
//! start, reload on change) and hands each request the verified client certificate,
//! which the usual server crates keep to themselves. Handshakes run concurrently, each
//! with a deadline, so a client that stalls its handshake holds up nobody.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::tls::{principal_of, ServerTls};

/// Handshakes under way at once; connections beyond are closed at once.
const MAX_PENDING_HANDSHAKES: usize = 256;

/// Who is on the other end of an admin API connection.
#[derive(Debug, Clone)]
pub struct AdminPeer {
    pub addr: SocketAddr,
    /// `User:CN=...` of a client certificate the client CA signed.
    pub certificate: Option<String>,
}

impl Connected<IncomingStream<'_, TcpListener>> for AdminPeer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        AdminPeer {
            addr: *stream.remote_addr(),
            certificate: None,
        }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for AdminPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

type Handshake = Pin<Box<dyn Future<Output = Option<(TlsStream<TcpStream>, AdminPeer)>> + Send>>;

pub struct TlsListener {
    tcp: TcpListener,
    tls: Arc<ServerTls>,
    handshakes: FuturesUnordered<Handshake>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, tls: Arc<ServerTls>) -> TlsListener {
        TlsListener {
            tcp,
            tls,
            handshakes: FuturesUnordered::new(),
        }
    }

    fn start_handshake(&mut self, stream: TcpStream, addr: SocketAddr) {
        if self.handshakes.len() >= MAX_PENDING_HANDSHAKES {
            tracing::warn!(peer = %addr, "admin API: too many TLS handshakes under way; closing");
            return;
        }
        let acceptor = self.tls.acceptor();
        let deadline = self.tls.handshake_timeout();
        self.handshakes.push(Box::pin(async move {
            match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(principal_of);
                    Some((tls, AdminPeer { addr, certificate }))
                }
                Ok(Err(e)) => {
                    tracing::info!(peer = %addr, "admin API: TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::info!(peer = %addr, "admin API: TLS handshake timed out");
                    None
                }
            }
        }));
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = AdminPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, addr)) => self.start_handshake(stream, addr),
                    Err(e) => {
                        // Out of file descriptors, most likely: let some close.
                        tracing::warn!("admin API: cannot accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(done) = self.handshakes.next(), if !self.handshakes.is_empty() => {
                    if let Some(connection) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(AdminPeer {
            addr: self.tcp.local_addr()?,
            certificate: None,
        })
    }
}
