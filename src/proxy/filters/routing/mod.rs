//! Several backend clusters behind one fleet: each request reaches the cluster the
//! committed routes give what it names, and every node id a client reads is a virtual
//! identity (see `flotilla_raft::routes`).
//!
//! Partition-directed requests (Produce, Fetch, ...) need nothing here to find their
//! cluster: they arrive on an identity connection, and an identity is one broker of one
//! cluster. What a client asks of "the cluster" is answered by asking the clusters
//! themselves over the proxy's own connections and merging (an `Exchange`): Metadata,
//! DescribeCluster, FindCoordinator (a group's or transactional id's cluster), and the
//! producer ids of idempotent producers (always the cluster `default`, so they are unique
//! across every cluster). The answers then go through the address rewrites like any
//! broker's.
//!
//! The filter is active only while the fleet has registered a cluster besides `default`:
//! a single-cluster fleet runs exactly as before.

mod admin;
mod coordinator;
mod describe_cluster;
mod metadata;
mod partitions;
mod producer_ids;
mod renumber;
mod transactions;

use std::sync::Arc;

use arc_swap::ArcSwap;
use flotilla_config::DEFAULT_CLUSTER;
use flotilla_raft::ControlState;
use kafka_protocol::messages::{ApiKey, BrokerId, RequestKind};
use kafka_protocol::protocol::Request as KafkaRequest;

use crate::backend::{Cluster, Clusters};
use crate::directory::Directory;
use crate::proxy::filter::{Env, Exchange, Filter, Listener, Session, Verdict};
use crate::proxy::message::{Request, Response};

pub struct Routing {
    clusters: Arc<Clusters>,
    directory: Arc<Directory>,
    control: Arc<ArcSwap<ControlState>>,
}

impl Routing {
    pub fn new(
        clusters: &Arc<Clusters>,
        directory: &Arc<Directory>,
        control: &Arc<ArcSwap<ControlState>>,
    ) -> Routing {
        Routing {
            clusters: clusters.clone(),
            directory: directory.clone(),
            control: control.clone(),
        }
    }

    /// The backend cluster behind a client's connection: its identity's, or `default`
    /// for a bootstrap connection.
    fn connection_cluster(&self, session: &Session) -> Arc<str> {
        match session.listener {
            Listener::Identity { slot } => self.directory.cluster_of_slot(slot),
            Listener::Bootstrap => None,
        }
        .unwrap_or_else(|| Arc::from(DEFAULT_CLUSTER))
    }

    /// A topic's name, from the request or (by id) from what this node has learned.
    fn resolve(&self, name: &str, id: uuid::Uuid) -> Option<String> {
        self.directory.topic_names.resolve(name, id)
    }

    /// What an exchange needs: the clusters, and the control state as it is now.
    fn context(&self) -> Routed {
        Routed {
            clusters: self.clusters.clone(),
            state: self.control.load_full(),
        }
    }
}

impl Filter for Routing {
    fn name(&self) -> &'static str {
        "routing"
    }

    fn is_active(&self, control: &ControlState) -> bool {
        !control.backend_clusters.is_empty()
    }

    fn wants_request(&self, api_key: ApiKey, _version: i16) -> bool {
        matches!(
            api_key,
            ApiKey::Metadata
                | ApiKey::FindCoordinator
                | ApiKey::DescribeCluster
                | ApiKey::InitProducerId
                | ApiKey::AddPartitionsToTxn
                | ApiKey::AddOffsetsToTxn
        ) || is_partition_directed(api_key)
            || is_topic_admin(api_key)
    }

    /// Produce and Fetch, for the topics answered in the broker's place.
    fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
        matches!(api_key, ApiKey::Produce | ApiKey::Fetch)
    }

    fn on_request(&self, request: &mut Request, env: &Env) -> Verdict {
        if is_partition_directed(request.api_key()) {
            let own = self.connection_cluster(env.session);
            if &*own != DEFAULT_CLUSTER && request.api_key() == ApiKey::Fetch {
                renumber::note_request(request, env);
            }
            if !partitions::may_misroute(env.control, &own) {
                return Verdict::Forward;
            }
            return partitions::check(self, request, env, &own);
        }
        let version = request.version();
        let body = match request.body() {
            Ok(body) => body.clone(),
            Err(e) => return Verdict::Close(format!("undecodable request: {e}")),
        };
        match body {
            RequestKind::Metadata(body) => metadata::exchange(self.context(), body, version),
            RequestKind::FindCoordinator(body) => {
                coordinator::exchange(self.context(), body, version)
            }
            RequestKind::DescribeCluster(body) => {
                describe_cluster::exchange(self.context(), body, version)
            }
            RequestKind::InitProducerId(body) => {
                let own = self.connection_cluster(env.session);
                producer_ids::route(self.context(), &own, body, version)
            }
            RequestKind::AddPartitionsToTxn(body) => {
                transactions::add_partitions(env.control, &body, version)
            }
            RequestKind::AddOffsetsToTxn(body) => transactions::add_offsets(env.control, &body),
            body if is_topic_admin(request.api_key()) => {
                let own = self.connection_cluster(env.session);
                admin::route(self.context(), &own, body, version)
            }
            _ => Verdict::Forward,
        }
    }

    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        partitions::merge_back(response, env)?;
        let own = self.connection_cluster(env.session);
        if &*own == DEFAULT_CLUSTER {
            return Ok(());
        }
        renumber::response(response, env, &own)
    }
}

/// Requests that administer topics (or their configs), sent to any broker.
fn is_topic_admin(api_key: ApiKey) -> bool {
    matches!(
        api_key,
        ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::DescribeConfigs
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
    )
}

/// Requests a client sends to a partition's leader (or any replica), on its identity's
/// connection.
fn is_partition_directed(api_key: ApiKey) -> bool {
    matches!(
        api_key,
        ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::OffsetForLeaderEpoch
            | ApiKey::DeleteRecords
    )
}

/// The clusters and the state one exchange works with.
#[derive(Clone)]
struct Routed {
    clusters: Arc<Clusters>,
    state: Arc<ControlState>,
}

impl Routed {
    /// Every cluster the fleet has registered that this node is configured for, `default` first.
    fn configured(&self) -> Vec<Arc<Cluster>> {
        self.state
            .cluster_names()
            .iter()
            .filter_map(|name| self.clusters.get(name).cloned())
            .collect()
    }

    /// The cluster `name`, if this node is configured for it.
    fn cluster(&self, name: &str) -> Result<Arc<Cluster>, String> {
        self.clusters.get(name).cloned().ok_or_else(|| {
            format!("backend cluster {name} is not in this node's configuration ([backend.clusters.{name}])")
        })
    }

    fn virtual_id(&self, cluster: &str, id: BrokerId) -> BrokerId {
        virtual_id(&self.state, cluster, id)
    }
}

/// A broker id of `cluster` as clients see it; ids below 0 (no leader) stay as they are,
/// and a broker that has no identity becomes -1.
fn virtual_id(state: &ControlState, cluster: &str, id: BrokerId) -> BrokerId {
    if id.0 < 0 {
        return id;
    }
    BrokerId(state.virtual_id(cluster, id.0).unwrap_or(-1))
}

/// Sends `body` to `cluster` at `version`; an error names the cluster.
async fn call<Q: KafkaRequest>(
    cluster: &Cluster,
    version: i16,
    body: &Q,
) -> Result<Q::Response, String> {
    cluster
        .call(version, body)
        .await
        .map_err(|e| format!("backend cluster {}: {e:#}", cluster.name))
}

/// An exchange whose answer `build` makes.
fn exchanged<F>(build: F) -> Verdict
where
    F: std::future::Future<Output = Result<kafka_protocol::messages::ResponseKind, String>>
        + Send
        + 'static,
{
    Verdict::Exchange(Exchange::new(build))
}

#[cfg(test)]
mod tests;
