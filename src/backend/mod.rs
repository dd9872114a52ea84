//! The backend Kafka cluster as this node sees it: opening connections to brokers
//! ([`link`]), and keeping the broker list (and so the identity slots) current from the
//! cluster's own Metadata.

mod client;
pub mod clusters;
pub mod groups;
mod link;
mod login;

pub use client::BrokerClient;
pub use clusters::{Cluster, Clusters};
pub use link::{Link, Purpose};
pub use login::{Exchange, Login, Session};

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio_util::codec::FramedRead;

use crate::directory::{Broker, Directory};
use crate::metrics::Metrics;
use crate::protocol::frame::{write_frame, FrameCodec};
use crate::stream::connect_tcp;

/// Metadata v12 is understood by every Kafka release since 2.8.
const METADATA_VERSION: i16 = 12;

/// Whether a TCP connection to any of `addresses` opens within `timeout`; all are tried at
/// once, and the first success answers.
pub async fn reaches_any(addresses: &[String], timeout: Duration) -> bool {
    let attempts = addresses.iter().map(|a| Box::pin(connect_tcp(a, timeout)));
    futures::future::select_ok(attempts).await.is_ok()
}

/// Asks one broker for the cluster's broker list.
pub async fn fetch_brokers(link: &Link, address: &str) -> anyhow::Result<Vec<Broker>> {
    // An empty topic list asks for brokers only.
    let response = metadata(link, address, Some(Vec::new())).await?;
    Ok(response
        .brokers
        .iter()
        .map(|b| Broker {
            id: b.node_id.0,
            host: b.host.to_string(),
            port: u16::try_from(b.port).unwrap_or(0),
            rack: b.rack.as_ref().map(|r| r.to_string()),
        })
        .collect())
}

/// Asks the first of `addresses` that answers for every topic's id and name.
pub async fn fetch_topic_ids(
    link: &Link,
    addresses: &[String],
) -> anyhow::Result<Vec<(uuid::Uuid, StrBytes)>> {
    let mut last_error = anyhow::anyhow!("no broker address to ask");
    for address in addresses {
        match metadata(link, address, None).await {
            Ok(response) => {
                return Ok(response
                    .topics
                    .into_iter()
                    .filter_map(|t| Some((t.topic_id, t.name?.0)))
                    .collect())
            }
            Err(e) => last_error = e.context(format!("asking {address}")),
        }
    }
    Err(last_error)
}

/// One Metadata exchange with one broker, on a connection of its own.
async fn metadata(
    link: &Link,
    address: &str,
    topics: Option<Vec<MetadataRequestTopic>>,
) -> anyhow::Result<MetadataResponse> {
    let timeout = link.timeout();
    let exchange = async {
        let (stream, _) = link.connect(address, Purpose::Own).await?;
        let (read, mut write) = stream.split();
        write_frame(&mut write, metadata_request(topics)?).await?;
        let mut frames = FramedRead::new(read, FrameCodec::new(64 * 1024 * 1024));
        let mut frame = frames
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("broker closed the connection"))??;
        let header_version = ApiKey::Metadata.response_header_version(METADATA_VERSION);
        ResponseHeader::decode(&mut frame, header_version)?;
        let response = MetadataResponse::decode(&mut frame, METADATA_VERSION)?;
        anyhow::Ok(response)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no Metadata answer within {timeout:?}"))?
}

fn metadata_request(topics: Option<Vec<MetadataRequestTopic>>) -> anyhow::Result<bytes::Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(METADATA_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("flotilla")));
    let body = MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(false);
    let mut buf = BytesMut::new();
    header.encode(
        &mut buf,
        ApiKey::Metadata.request_header_version(METADATA_VERSION),
    )?;
    body.encode(&mut buf, METADATA_VERSION)?;
    Ok(buf.freeze())
}

/// Refreshes the cluster `default`'s broker list from the first broker that answers (the
/// known brokers first, then the configured bootstrap servers) into the directory.
pub async fn refresh(dir: &Directory, cluster: &Cluster) -> anyhow::Result<()> {
    let brokers = cluster.refresh().await?;
    dir.learn(&brokers)?;
    Ok(())
}

/// Keeps a cluster's broker list current for the life of the node; the cluster `default`'s
/// goes into the directory too.
pub async fn refresh_forever(
    dir: Arc<Directory>,
    metrics: Arc<Metrics>,
    cluster: Arc<Cluster>,
    every: Duration,
) {
    let mut failures = 0u32;
    let is_default = cluster.name == flotilla_config::DEFAULT_CLUSTER;
    loop {
        let refreshed = match is_default {
            true => refresh(&dir, &cluster).await,
            false => cluster.refresh().await.map(drop),
        };
        let name = [cluster.name.as_str()];
        match refreshed {
            Ok(()) => {
                let brokers = cluster.watch_brokers().borrow().len();
                metrics
                    .backend_brokers
                    .with_label_values(&name)
                    .set(brokers as i64);
                if failures > 0 {
                    tracing::info!(
                        cluster = %cluster.name,
                        "backend broker list refreshed again after {failures} failures"
                    );
                }
                failures = 0;
                metrics.identities.set(dir.identities().len() as i64);
            }
            Err(e) => {
                failures += 1;
                metrics
                    .backend_refresh_failures
                    .with_label_values(&name)
                    .inc();
                tracing::warn!(cluster = %cluster.name, "backend broker list refresh failed: {e:#}");
            }
        }
        // Retry soon while the backend is unreachable, then settle to the configured pace.
        let pause = if failures > 0 {
            Duration::from_secs(1).min(every)
        } else {
            every
        };
        tokio::time::sleep(pause).await;
    }
}
