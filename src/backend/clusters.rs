//! Every backend cluster this node is configured for, by name: how to reach its brokers
//! (its own TLS and login), the brokers its own Metadata lists, and a few idle connections
//! of the proxy's own for what a filter must ask a cluster other than the one behind a
//! client's connection (merging Metadata, finding a group's coordinator).
//!
//! The cluster `default` is `[backend]` itself; a node without `[backend.clusters]` has
//! only it, and nothing here is used per request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_config::{BackendConfig, DEFAULT_CLUSTER};
use kafka_protocol::protocol::Request;
use tokio::sync::watch;

use super::{fetch_brokers, BrokerClient, Link};
use crate::directory::Broker;

/// Idle connections kept per cluster for the proxy's own requests.
const IDLE_CONNECTIONS: usize = 4;

/// One backend cluster as this node reaches it.
pub struct Cluster {
    pub name: String,
    pub link: Arc<Link>,
    bootstrap: Vec<String>,
    brokers: watch::Sender<Vec<Broker>>,
    idle: Mutex<Vec<BrokerClient>>,
    next: AtomicUsize,
}

impl Cluster {
    fn new(name: &str, link: Arc<Link>, bootstrap: Vec<String>) -> Cluster {
        Cluster {
            name: name.to_string(),
            link,
            bootstrap,
            brokers: watch::Sender::new(Vec::new()),
            idle: Mutex::default(),
            next: AtomicUsize::new(0),
        }
    }

    /// The brokers the cluster's own Metadata listed last; empty until it first answers.
    pub fn watch_brokers(&self) -> watch::Receiver<Vec<Broker>> {
        self.brokers.subscribe()
    }

    /// Brokers to try, the known ones first from a rotating position (so the proxy's own
    /// load spreads), then the configured bootstrap servers.
    pub fn candidates(&self) -> Vec<String> {
        let mut known: Vec<String> = self.brokers.borrow().iter().map(Broker::address).collect();
        if !known.is_empty() {
            let start = self.next.fetch_add(1, Ordering::Relaxed) % known.len();
            known.rotate_left(start);
        }
        known.extend(self.bootstrap.iter().cloned());
        known
    }

    /// Asks the first broker that answers for the broker list, and publishes it.
    pub async fn refresh(&self) -> anyhow::Result<Vec<Broker>> {
        let mut last_error = anyhow::anyhow!("no broker address to ask");
        for address in self.candidates() {
            match fetch_brokers(&self.link, &address).await {
                Ok(brokers) if !brokers.is_empty() => {
                    self.brokers.send_if_modified(|known| {
                        let changed = *known != brokers;
                        if changed {
                            known.clone_from(&brokers);
                        }
                        changed
                    });
                    return Ok(brokers);
                }
                Ok(_) => last_error = anyhow::anyhow!("{address} listed no brokers"),
                Err(e) => last_error = e.context(format!("asking {address}")),
            }
        }
        Err(last_error.context(format!("backend cluster {}", self.name)))
    }

    /// Sends `body` to any broker of the cluster over a connection of the proxy's own and
    /// decodes the answer. A pooled connection that fails (the broker closed it while
    /// idle) is dropped and the request tried once more on a new one.
    pub async fn call<Q: Request>(&self, version: i16, body: &Q) -> anyhow::Result<Q::Response> {
        let pooled = self.take_idle();
        let reused = pooled.is_some();
        let mut client = match pooled {
            Some(client) => client,
            None => self.connect().await?,
        };
        match client.call(version, body).await {
            Ok(answer) => {
                self.give_back(client);
                Ok(answer)
            }
            Err(_) if reused => {
                let mut fresh = self.connect().await?;
                let answer = fresh.call(version, body).await?;
                self.give_back(fresh);
                Ok(answer)
            }
            Err(e) => Err(e),
        }
    }

    async fn connect(&self) -> anyhow::Result<BrokerClient> {
        let mut last_error = anyhow::anyhow!("no broker address to try");
        for address in self.candidates() {
            match BrokerClient::connect(&self.link, &address).await {
                Ok(client) => return Ok(client),
                Err(e) => last_error = e.context(format!("connecting to {address}")),
            }
        }
        Err(last_error.context(format!("backend cluster {}", self.name)))
    }

    fn take_idle(&self) -> Option<BrokerClient> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, client: BrokerClient) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(client);
        }
    }
}

/// Every configured backend cluster, by name.
pub struct Clusters {
    by_name: BTreeMap<String, Arc<Cluster>>,
}

impl Clusters {
    /// The clusters of `backend`, with the links already loaded for them.
    pub fn new(backend: &BackendConfig, mut links: BTreeMap<String, Arc<Link>>) -> Clusters {
        let by_name = backend
            .all_clusters()
            .into_iter()
            .filter_map(|(name, cluster)| {
                let link = links.remove(&name)?;
                let handle = Cluster::new(&name, link, cluster.bootstrap_servers);
                Some((name, Arc::new(handle)))
            })
            .collect();
        Clusters { by_name }
    }

    /// Loads the TLS and login of every cluster of `backend`; fails naming the cluster.
    pub fn links(
        backend: &BackendConfig,
        timeout: Duration,
    ) -> anyhow::Result<BTreeMap<String, Arc<Link>>> {
        backend
            .all_clusters()
            .into_iter()
            .map(|(name, cluster)| {
                let link = Link::new(&cluster, timeout)
                    .map_err(|e| e.context(format!("backend cluster {name}")))?;
                Ok((name, Arc::new(link)))
            })
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.by_name.get(name)
    }

    /// The cluster `[backend]` describes; always configured.
    pub fn default_cluster(&self) -> &Arc<Cluster> {
        &self.by_name[DEFAULT_CLUSTER]
    }

    /// Every cluster but `default`.
    pub fn others(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.by_name.values().filter(|c| c.name != DEFAULT_CLUSTER)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
