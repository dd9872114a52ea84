//! How this node reaches a broker: TCP, then TLS if `backend.tls` is set, then the proxy's
//! own SASL login if `backend.sasl` is set and the connection is the proxy's to
//! authenticate.
//!
//! The proxy's own connections (metadata refreshes) always log in. A client's upstream
//! connection logs in only when the fleet terminates SASL; otherwise the client
//! authenticates with the broker itself, through the proxy.

use std::time::Duration;

use anyhow::Context as _;
use flotilla_config::BackendCluster;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::login::{Direct, Login, Session};
use crate::stream::{connect_tcp, Stream};

/// Everything needed to open a connection to any broker of the backend cluster.
pub struct Link {
    tls: Option<TlsConnector>,
    login: Option<Login>,
    timeout: Duration,
}

/// Whose connection it is, which decides whether the proxy logs in on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The proxy's own requests (metadata): it logs in if it has credentials.
    Own,
    /// A client's requests, with the client doing its own SASL (passthrough).
    ClientAuthenticates,
    /// A client's requests, the fleet having authenticated the client (termination).
    ProxyAuthenticates,
}

impl Link {
    /// Reads the TLS files named for `backend`; fails on anything unusable.
    pub fn new(backend: &BackendCluster, timeout: Duration) -> anyhow::Result<Link> {
        let tls = match &backend.tls {
            Some(tls) => Some(crate::tls::connector(tls)?),
            None => None,
        };
        let login = match &backend.sasl {
            Some(credentials) => Some(Login::new(credentials)?),
            None => None,
        };
        Ok(Link {
            tls,
            login,
            timeout,
        })
    }

    /// The deadline of each step of opening a connection.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A connection to the broker at `address` (`host:port`), ready for Kafka requests,
    /// and the proxy's login session on it if it logged in.
    pub async fn connect(
        &self,
        address: &str,
        purpose: Purpose,
    ) -> anyhow::Result<(Stream, Option<Session>)> {
        let mut stream = self.open(address).await?;
        let Some(login) = self.login_for(purpose) else {
            return Ok((stream, None));
        };
        let logging_in = async {
            match &mut stream {
                Stream::Tcp(tcp) => login.run(&mut Direct(tcp)).await,
                Stream::Tls(tls) => login.run(&mut Direct(tls.as_mut())).await,
            }
        };
        // Boxed: a login's future is large, and a connection without one need not carry it.
        let session = tokio::time::timeout(self.timeout, Box::pin(logging_in))
            .await
            .with_context(|| format!("no SASL login within {:?}", self.timeout))?
            .context("SASL login (backend.sasl)")?;
        Ok((stream, Some(session)))
    }

    /// The proxy's login, if it logs in on connections of this purpose.
    pub fn login_for(&self, purpose: Purpose) -> Option<&Login> {
        match purpose {
            Purpose::ClientAuthenticates => None,
            Purpose::Own | Purpose::ProxyAuthenticates => self.login.as_ref(),
        }
    }

    /// TCP, then TLS if configured.
    async fn open(&self, address: &str) -> anyhow::Result<Stream> {
        let tcp = connect_tcp(address, self.timeout).await?;
        let Some(tls) = &self.tls else {
            return Ok(Stream::Tcp(tcp));
        };
        let name = server_name(address)?;
        let handshake = tokio::time::timeout(self.timeout, tls.connect(name, tcp))
            .await
            .with_context(|| format!("no TLS handshake within {:?}", self.timeout))?
            .context("TLS handshake")?;
        Ok(Stream::Tls(Box::new(handshake)))
    }
}

/// The name a broker's certificate must carry: the host part of its address.
fn server_name(address: &str) -> anyhow::Result<ServerName<'static>> {
    let (host, _port) = flotilla_config::parse_host_port(address)
        .map_err(|e| anyhow::anyhow!("broker address `{address}`: {e}"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    ServerName::try_from(host)
        .with_context(|| format!("broker address `{address}`: not a valid TLS server name"))
}
