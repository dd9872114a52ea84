//! Calls from this node to another node's admin API: admin writes forwarded to the Raft
//! leader, and the look at the fleet a node takes before it joins Raft. One pooled async
//! client (the same reqwest stack the Raft RPC uses), so these calls never hold a thread.

use std::time::Duration;

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

#[derive(Clone)]
pub struct PeerApi {
    http: reqwest::Client,
}

impl PeerApi {
    pub fn new() -> anyhow::Result<PeerApi> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .build()?;
        Ok(PeerApi { http })
    }

    /// Replays an admin write (`method` on `path`) at the node whose admin API listens on
    /// `admin_addr`, and relays its refusal if it refuses.
    pub async fn forward(
        &self,
        admin_addr: &str,
        method: Write,
        path: &str,
    ) -> Result<(), ClusterError> {
        let url = format!("http://{admin_addr}{path}");
        let request = match method {
            Write::Post => self.http.post(&url),
            Write::Delete => self.http.delete(&url),
        };
        let unreachable = |e: reqwest::Error| ClusterError::LeaderUnreachable {
            leader: admin_addr.to_string(),
            error: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let error = serde_json::from_str::<ApiError>(&body)
            .map(|e| e.error)
            .unwrap_or(body);
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
        let url = format!("http://{admin_addr}{path}");
        let response = self.http.get(&url).timeout(timeout).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }
}
