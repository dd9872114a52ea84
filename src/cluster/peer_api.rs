//! Calls from this node to another node's admin API: admin writes forwarded to the Raft
//! leader, and the look at the fleet a node with a new data directory takes before it
//! joins Raft. Blocking `ureq` on the blocking pool keeps the node free of a second HTTP
//! client stack; these calls are rare and bounded by a timeout.

use std::time::Duration;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// Longest wait for another node's admin API.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Replays an admin write (`POST` or `DELETE` on `path`) at the node whose admin API
/// listens on `admin_addr`, and relays its error answer if it fails.
pub async fn forward(
    admin_addr: &str,
    method: &'static str,
    path: &str,
) -> Result<(), (StatusCode, String)> {
    let url = format!("http://{admin_addr}{path}");
    let leader = admin_addr.to_string();
    blocking(move || {
        let agent = agent(TIMEOUT);
        let sent = match method {
            "DELETE" => agent.delete(&url).call(),
            _ => agent.post(&url).send_empty(),
        };
        match sent {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(mut response) => {
                let status = StatusCode::from_u16(response.status().as_u16())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                let body = response.body_mut().read_to_string().unwrap_or_default();
                let error = serde_json::from_str::<crate::admin::ApiError>(&body)
                    .map(|e| e.error)
                    .unwrap_or(body);
                Err((status, format!("the leader at {leader} answered: {error}")))
            }
            Err(e) => Err((
                StatusCode::BAD_GATEWAY,
                format!("forwarding to the leader at {url}: {e}"),
            )),
        }
    })
    .await
}

/// `GET path` on another node's admin API, decoded; `None` when it cannot be had within
/// `timeout` (the node is still starting, or gone).
pub async fn get<T: DeserializeOwned + Send + 'static>(
    admin_addr: &str,
    path: &str,
    timeout: Duration,
) -> Option<T> {
    let url = format!("http://{admin_addr}{path}");
    blocking(move || {
        agent(timeout)
            .get(&url)
            .call()
            .ok()?
            .body_mut()
            .read_json()
            .ok()
    })
    .await
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

async fn blocking<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(call)
        .await
        .expect("admin API call panicked")
}
