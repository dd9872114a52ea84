//! The proxy's own requests to one broker, typed: what the fleet asks Kafka in its own
//! name (a group's coordinator and members, partition offsets, an offset commit), as
//! opposed to the clients' requests it forwards.
//!
//! One connection per conversation, logged in like every connection of the proxy's own,
//! each exchange bounded by the link's timeout. Correlation ids are the client's only.

use anyhow::Context as _;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Request;

use super::link::{Link, Purpose};
use super::login::{exchange, Direct};
use crate::stream::Stream;

/// A connection to one broker for the proxy's own requests.
pub struct BrokerClient {
    stream: Stream,
    address: String,
    timeout: std::time::Duration,
    next_correlation_id: i32,
}

impl BrokerClient {
    /// Opens (and logs in) a connection to the broker at `address`.
    pub async fn connect(link: &Link, address: &str) -> anyhow::Result<BrokerClient> {
        let (stream, _) = link.connect(address, Purpose::Own).await?;
        Ok(BrokerClient {
            stream,
            address: address.to_string(),
            timeout: link.timeout(),
            next_correlation_id: 1,
        })
    }

    /// The broker's address, for messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `body` as version `version` of its API and decodes the answer.
    pub async fn call<Q: Request>(
        &mut self,
        version: i16,
        body: &Q,
    ) -> anyhow::Result<Q::Response> {
        let api_key =
            ApiKey::try_from(Q::KEY).map_err(|_| anyhow::anyhow!("unknown API key {}", Q::KEY))?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let answer = async {
            match &mut self.stream {
                Stream::Tcp(tcp) => {
                    exchange(&mut Direct(tcp), api_key, version, correlation_id, body).await
                }
                Stream::Tls(tls) => {
                    exchange(
                        &mut Direct(tls.as_mut()),
                        api_key,
                        version,
                        correlation_id,
                        body,
                    )
                    .await
                }
            }
        };
        tokio::time::timeout(self.timeout, answer)
            .await
            .map_err(|_| anyhow::anyhow!("no {api_key:?} answer within {:?}", self.timeout))?
            .with_context(|| format!("{api_key:?} to {}", self.address))
    }
}
