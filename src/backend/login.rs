//! The proxy's own SASL login at a broker (`backend.sasl`): SaslHandshake v1, then
//! SaslAuthenticate rounds, on a fresh connection before anything else is sent on it.
//!
//! Used for the proxy's metadata connections always, and for the broker connection behind
//! each client where the fleet terminates SASL (the client never talks SASL to the
//! broker). Its requests use correlation ids no client sees: the client's own requests
//! follow on the same connection with their own ids, and a broker only ever echoes ids.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::{Bytes, BytesMut};
use flotilla_config::{SaslMechanism, ServiceCredentials};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sasl::scram::ScramClient;
use crate::sasl::{plain, scram_of};
use crate::stream::Duplex;

const HANDSHAKE_VERSION: i16 = 1;
const AUTHENTICATE_VERSION: i16 = 2;
/// Largest SASL answer the proxy accepts from a broker.
const MAX_ANSWER: usize = 1 << 20;

/// A service account, its password read once at start.
#[derive(Clone)]
pub struct Login {
    mechanism: SaslMechanism,
    user: String,
    password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} login as {}", self.mechanism.name(), self.user)
    }
}

/// What a successful login learned: how long the broker keeps the session (KIP-368).
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub lifetime: Option<Duration>,
}

impl Session {
    /// When to log in again: at 85% of the lifetime, as Kafka's clients do (they pick
    /// 85% to 95%), so the new session is in place before the broker would cut the old.
    pub fn renew_after(&self) -> Option<Duration> {
        self.lifetime.map(|l| l.mul_f64(0.85))
    }
}

/// Carries one request frame (header and body, no size prefix) to the broker and brings
/// its answer back: directly on a fresh connection, or through a running connection's two
/// sides when the proxy renews its session there.
pub trait Exchange {
    fn exchange(
        &mut self,
        request: Bytes,
    ) -> impl std::future::Future<Output = anyhow::Result<Bytes>> + Send;
}

/// A connection nobody else uses yet.
pub struct Direct<'a, S: ?Sized>(pub &'a mut S);

impl<S: Duplex + ?Sized> Exchange for Direct<'_, S> {
    async fn exchange(&mut self, request: Bytes) -> anyhow::Result<Bytes> {
        let size = u32::try_from(request.len()).context("request too large")?;
        self.0.write_all(&size.to_be_bytes()).await?;
        self.0.write_all(&request).await?;
        self.0.flush().await?;
        let size = self
            .0
            .read_u32()
            .await
            .context("the broker closed the connection")? as usize;
        if size > MAX_ANSWER {
            bail!("a SASL answer of {size} bytes");
        }
        let mut answer = vec![0u8; size];
        self.0.read_exact(&mut answer).await?;
        Ok(Bytes::from(answer))
    }
}

impl Login {
    pub fn new(credentials: &ServiceCredentials) -> anyhow::Result<Login> {
        Ok(Login {
            mechanism: credentials.mechanism,
            user: credentials.username.clone(),
            password: credentials.read_password()?,
        })
    }

    /// Logs in, or logs in again on a connection that is logged in (KIP-368: the same
    /// two requests renew a session).
    pub async fn run(&self, link: &mut impl Exchange) -> anyhow::Result<Session> {
        let mechanism = self.mechanism.name();
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let answer: SaslHandshakeResponse = exchange(
            link,
            ApiKey::SaslHandshake,
            HANDSHAKE_VERSION,
            -101,
            &handshake,
        )
        .await?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            bail!("the broker does not offer {mechanism} (it offers {offered:?})");
        }
        match scram_of(self.mechanism) {
            None => Ok(self
                .round(link, -102, plain::message(&self.user, &self.password))
                .await?
                .1),
            Some(scram) => {
                let (client, first) = ScramClient::start(scram, &self.user, &self.password);
                let (server_first, _) = self.round(link, -102, first).await?;
                let (last, expected) = client.respond(&server_first)?;
                let (server_final, session) = self.round(link, -103, last).await?;
                ScramClient::verify(&server_final, &expected)?;
                Ok(session)
            }
        }
    }

    async fn round(
        &self,
        link: &mut impl Exchange,
        correlation_id: i32,
        token: Vec<u8>,
    ) -> anyhow::Result<(Bytes, Session)> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let answer: SaslAuthenticateResponse = exchange(
            link,
            ApiKey::SaslAuthenticate,
            AUTHENTICATE_VERSION,
            correlation_id,
            &request,
        )
        .await?;
        if answer.error_code != 0 {
            let said = answer
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            bail!(
                "the broker refused {:?} (error {}): {said}",
                self,
                answer.error_code
            );
        }
        let lifetime = u64::try_from(answer.session_lifetime_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        Ok((answer.auth_bytes, Session { lifetime }))
    }
}

/// Sends one of the proxy's requests and decodes its answer.
pub(super) async fn exchange<Q, A>(
    link: &mut impl Exchange,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &Q,
) -> anyhow::Result<A>
where
    Q: Encodable,
    A: Decodable,
{
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("flotilla")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, api_key.request_header_version(version))?;
    body.encode(&mut buf, version)?;
    let mut answer = link.exchange(buf.freeze()).await?;
    let header = ResponseHeader::decode(&mut answer, api_key.response_header_version(version))?;
    if header.correlation_id != correlation_id {
        return Err(anyhow!(
            "{api_key:?} answered with correlation id {}",
            header.correlation_id
        ));
    }
    A::decode(&mut answer, version)
}
