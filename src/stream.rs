//! A byte stream to a client or a broker: plain TCP, or TLS over TCP.
//!
//! The connection loop reads and writes the two directions of a connection from separate
//! futures, so a stream is split in two. Plain TCP splits into owned halves that share no
//! lock, which keeps the plaintext hot path exactly as it was; a TLS session is one state
//! machine for both directions, so its halves share it through `tokio::io::split`.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::either::Either;

/// Anything that reads and writes bytes, boxed when its type does not matter (TLS).
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// How a client's bytes travel: in the clear, or over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plaintext,
    Tls,
}

pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<dyn Duplex>),
}

pub type ReadHalf = Either<OwnedReadHalf, tokio::io::ReadHalf<Box<dyn Duplex>>>;
pub type WriteHalf = Either<OwnedWriteHalf, tokio::io::WriteHalf<Box<dyn Duplex>>>;

impl Stream {
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(tcp) => {
                let (read, write) = tcp.into_split();
                (Either::Left(read), Either::Left(write))
            }
            Stream::Tls(tls) => {
                let (read, write) = tokio::io::split(tls);
                (Either::Right(read), Either::Right(write))
            }
        }
    }
}

/// Opens a TCP connection with Nagle off: the proxy writes whole frames and must not add
/// latency to small requests.
pub async fn connect_tcp(address: &str, timeout: std::time::Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            )
        })??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
