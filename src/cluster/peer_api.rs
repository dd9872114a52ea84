//! Calls from this node to another node's admin API: admin writes forwarded to the Raft
//! leader, the look at the fleet a node of an older release needs before joining, and
//! fleet-wide reads (traffic, clients) that sum what every node reports.
//!
//! A forwarded write carries the caller's `Authorization` header, so the leader checks
//! the caller's token itself. When this node serves its admin API over HTTPS it expects
//! the other nodes to do the same (one fleet, one setting) and, with a client CA
//! configured, shows its own admin certificate: that lets a caller who authenticated
//! with a client certificate (and so has no header to pass on) be forwarded too.
//!
//! Each call is one HTTP/1 exchange on a connection of its own (hyper over TCP or
//! tokio-rustls with the ring provider): admin writes are rare, and the TLS set-up (which
//! CA to trust, which certificate to show) stays the node's, named in `tls`.

use std::time::Duration;

use bytes::Bytes;
use flotilla_config::Config;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::error::ClusterError;
use crate::api::ApiError;

/// Longest wait for another node's admin API.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An admin write replayed at the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Post,
    Delete,
}

/// A request as the caller sent it, to replay at the leader.
#[derive(Clone)]
pub struct Replay {
    pub method: Write,
    /// Path and query.
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Vec<u8>>,
    /// The caller's `Authorization` header, passed on untouched.
    pub authorization: Option<String>,
}

/// The body and credentials stay out of logs.
impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct PeerApi {
    /// Present when the admin APIs speak HTTPS.
    tls: Option<TlsConnector>,
}

impl PeerApi {
    pub fn new(config: &Config) -> anyhow::Result<PeerApi> {
        let tls = match config.admin.as_ref().and_then(|a| a.tls.as_ref()) {
            Some(tls) => Some(TlsConnector::from(std::sync::Arc::new(
                crate::tls::admin_peer_client(tls)?,
            ))),
            None => None,
        };
        Ok(PeerApi { tls })
    }

    /// The URL of `path` on the admin API at `admin_addr`.
    pub fn url(&self, admin_addr: &str, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{admin_addr}{path}")
    }

    /// Replays an admin write at the node whose admin API listens on `admin_addr`, and
    /// returns its answer, or relays its refusal.
    pub async fn forward<T: DeserializeOwned>(
        &self,
        admin_addr: &str,
        replay: &Replay,
    ) -> Result<T, ClusterError> {
        let method = match replay.method {
            Write::Post => Method::POST,
            Write::Delete => Method::DELETE,
        };
        let mut request = Request::builder().method(method).uri(&replay.path);
        if let Some(authorization) = &replay.authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        if replay.body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let body = Bytes::from(replay.body.clone().unwrap_or_default());
        let unreachable = |error: String| ClusterError::LeaderUnreachable {
            leader: admin_addr.to_string(),
            error,
        };
        let request = request.body(body).map_err(|e| unreachable(e.to_string()))?;
        let (status, body) = self
            .exchange(admin_addr, request, TIMEOUT)
            .await
            .map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| unreachable(format!("unexpected answer: {e}")));
        }
        let text = String::from_utf8_lossy(&body).to_string();
        let error = serde_json::from_str::<ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or(text);
        Err(ClusterError::LeaderRefused {
            leader: admin_addr.to_string(),
            status: status.as_u16(),
            error,
        })
    }

    /// `GET path` on another node's admin API, decoded; `None` when it cannot be had within
    /// `timeout` (the node is still starting, or gone).
    pub async fn get<T: DeserializeOwned>(
        &self,
        admin_addr: &str,
        path: &str,
        timeout: Duration,
    ) -> Option<T> {
        self.get_as(admin_addr, path, None, timeout).await
    }

    /// Like [`PeerApi::get`], with the caller's `Authorization` header passed on: a read
    /// fanned out to every node needs the caller's credentials at each of them.
    pub async fn get_as<T: DeserializeOwned>(
        &self,
        admin_addr: &str,
        path: &str,
        authorization: Option<&str>,
        timeout: Duration,
    ) -> Option<T> {
        let mut request = Request::get(path);
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let request = request.body(Bytes::new()).ok()?;
        let (status, body) = self.exchange(admin_addr, request, timeout).await.ok()?;
        if !status.is_success() {
            return None;
        }
        serde_json::from_slice(&body).ok()
    }

    /// One request on a new connection, within `timeout`.
    async fn exchange(
        &self,
        admin_addr: &str,
        request: Request<Bytes>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), String> {
        let exchange = async {
            let tcp = TcpStream::connect(admin_addr)
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let request = addressed(request, admin_addr)?;
            match &self.tls {
                None => send(tcp, request).await,
                Some(connector) => {
                    let name = server_name(admin_addr)?;
                    let tls = connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| format!("TLS handshake failed: {e}"))?;
                    send(tls, request).await
                }
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
    }
}

/// The request as an HTTP/1 client sends it: `Host`, and the connection closed after.
fn addressed(request: Request<Bytes>, admin_addr: &str) -> Result<Request<Full<Bytes>>, String> {
    let (mut parts, body) = request.into_parts();
    let host = admin_addr
        .parse()
        .map_err(|e| format!("bad address: {e}"))?;
    parts.headers.insert(HOST, host);
    parts
        .headers
        .insert(CONNECTION, hyper::header::HeaderValue::from_static("close"));
    Ok(Request::from_parts(parts, Full::new(body)))
}

/// The name the peer's certificate must carry: the host of its admin address.
fn server_name(admin_addr: &str) -> Result<ServerName<'static>, String> {
    let host = admin_addr
        .rsplit_once(':')
        .map_or(admin_addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("bad host {host:?}: {e}"))
}

async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let exchange = async move {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    };
    let (answer, _) = tokio::join!(exchange, connection);
    answer.map_err(|e| e.to_string())
}
