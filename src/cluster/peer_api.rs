//! Calls from this node to another node's admin API: admin writes forwarded to the Raft
//! leader, and the look at the fleet a node of an older release needs before joining.
//! One pooled async client (the same reqwest stack the Raft RPC uses), so these calls
//! never hold a thread.
//!
//! A forwarded write carries the caller's `Authorization` header, so the leader checks
//! the caller's token itself. When this node serves its admin API over HTTPS it expects
//! the other nodes to do the same (one fleet, one setting) and, with a client CA
//! configured, shows its own admin certificate: that lets a caller who authenticated
//! with a client certificate (and so has no header to pass on) be forwarded too.

use std::time::Duration;

use anyhow::Context as _;
use flotilla_config::Config;
use serde::de::DeserializeOwned;

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
    http: reqwest::Client,
    scheme: &'static str,
}

impl PeerApi {
    pub fn new(config: &Config) -> anyhow::Result<PeerApi> {
        let builder = reqwest::Client::builder().no_proxy().timeout(TIMEOUT);
        let tls = config.admin.as_ref().and_then(|a| a.tls.as_ref());
        let (builder, scheme) = match tls {
            Some(tls) => {
                let client = crate::tls::admin_peer_client(tls)?;
                (builder.tls_backend_preconfigured(client), "https")
            }
            None => (builder, "http"),
        };
        let http = builder
            .build()
            .context("cannot build the client for other nodes' admin APIs")?;
        Ok(PeerApi { http, scheme })
    }

    /// The URL of `path` on the admin API at `admin_addr`.
    pub fn url(&self, admin_addr: &str, path: &str) -> String {
        format!("{}://{admin_addr}{path}", self.scheme)
    }

    /// Replays an admin write at the node whose admin API listens on `admin_addr`, and
    /// returns its answer, or relays its refusal.
    pub async fn forward<T: DeserializeOwned>(
        &self,
        admin_addr: &str,
        replay: &Replay,
    ) -> Result<T, ClusterError> {
        let url = self.url(admin_addr, &replay.path);
        let mut request = match replay.method {
            Write::Post => self.http.post(&url),
            Write::Delete => self.http.delete(&url),
        };
        if let Some(authorization) = &replay.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        if let Some(body) = &replay.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let unreachable = |e: reqwest::Error| ClusterError::LeaderUnreachable {
            leader: admin_addr.to_string(),
            error: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| ClusterError::LeaderUnreachable {
                leader: admin_addr.to_string(),
                error: format!("unexpected answer: {e}"),
            });
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
        let url = self.url(admin_addr, path);
        let response = self.http.get(&url).timeout(timeout).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }
}
