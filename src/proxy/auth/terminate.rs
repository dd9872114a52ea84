//! SASL terminated by the fleet: the server side of SaslHandshake and SaslAuthenticate.
//!
//! Each connection's state lives on its request side only, so a login takes no lock and
//! costs requests after it one comparison (two with a session lifetime). Credentials are
//! read from the committed control state at the moment of the login: a user added through
//! Raft can log in on every node at once, and a deleted one cannot start a new session.
//!
//! KIP-368: a successful login tells the client its session lifetime; the client logs in
//! again on the same connection before it ends (other requests keep flowing meanwhile),
//! under the same principal. A request after the end, with no new login, closes the
//! connection, as the broker does.

use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use flotilla_config::{SaslMechanism, SaslTermination};
use flotilla_raft::security::{ScramCredential, ScramMechanism};
use flotilla_raft::ControlState;
use kafka_protocol::messages::{
    ApiKey, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{user_principal, Gate};
use crate::metrics::Metrics;
use crate::protocol::decode::decode_body;
use crate::protocol::error_response::encode_response;
use crate::protocol::header::RequestMeta;
use crate::sasl::scram::{ScramServer, ServerStep};
use crate::sasl::{mechanism_named, plain, scram, scram_of};

/// Where a login stands.
enum Exchange {
    Idle,
    /// SaslHandshake chose this mechanism; SaslAuthenticate comes next.
    Chosen(SaslMechanism),
    /// A SCRAM server waiting for the client's final message.
    Scram(SaslMechanism, ScramServer),
}

/// One connection's SASL server.
pub struct Terminator<'a> {
    settings: &'a SaslTermination,
    control: &'a ArcSwap<ControlState>,
    metrics: &'a Metrics,
    exchange: Exchange,
    /// The principal of the last successful login, and when its session ends.
    session: Option<(String, Option<Instant>)>,
}

/// A failed login: what the client is told, and what the log says.
struct Refusal {
    error: ResponseError,
    message: String,
    log: String,
}

impl<'a> Terminator<'a> {
    pub fn new(
        settings: &'a SaslTermination,
        control: &'a ArcSwap<ControlState>,
        metrics: &'a Metrics,
    ) -> Self {
        Terminator {
            settings,
            control,
            metrics,
            exchange: Exchange::Idle,
            session: None,
        }
    }

    /// Decides a request that is not part of a login, at once; `None` for SaslHandshake
    /// and SaslAuthenticate, which [`Terminator::gate`] answers.
    pub fn admits(&self, api_key: ApiKey) -> Option<Gate> {
        match api_key {
            ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => None,
            ApiKey::ApiVersions => Some(Gate::Pass),
            api_key => Some(self.admit(api_key)),
        }
    }

    /// Decides one request; a successful login's principal is returned beside the gate.
    pub async fn gate(&mut self, meta: &RequestMeta, frame: &Bytes) -> (Gate, Option<String>) {
        match meta.api_key {
            ApiKey::SaslHandshake => (self.handshake(meta, frame), None),
            ApiKey::SaslAuthenticate => self.authenticate(meta, frame).await,
            ApiKey::ApiVersions => (Gate::Pass, None),
            api_key => (self.admit(api_key), None),
        }
    }

    fn admit(&self, api_key: ApiKey) -> Gate {
        match &self.session {
            None => Gate::Close(format!(
                "{api_key:?} before SASL authentication (only ApiVersions, SaslHandshake and \
                 SaslAuthenticate are accepted until then)"
            )),
            Some((_, Some(ends))) if Instant::now() > *ends => Gate::Close(
                "the SASL session ended (sasl.session_lifetime) and the client did not \
                 re-authenticate"
                    .to_string(),
            ),
            Some(_) => Gate::Pass,
        }
    }

    fn handshake(&mut self, meta: &RequestMeta, frame: &Bytes) -> Gate {
        if meta.api_version == 0 {
            return Gate::Close(
                "SaslHandshake v0 (raw SASL frames) is not supported where the fleet terminates \
                 SASL; clients since Kafka 1.0 use v1"
                    .to_string(),
            );
        }
        let body = frame.slice(meta.header_len..);
        let request: SaslHandshakeRequest = match decode_body(meta.api_version, &body) {
            Ok(request) => request,
            Err(e) => return Gate::Close(format!("undecodable SaslHandshake: {e}")),
        };
        let offered = mechanism_named(request.mechanism.as_str())
            .filter(|m| self.settings.mechanisms.contains(m));
        let error_code = match offered {
            Some(mechanism) => {
                self.exchange = Exchange::Chosen(mechanism);
                0
            }
            None => {
                self.exchange = Exchange::Idle;
                ResponseError::UnsupportedSaslMechanism.code()
            }
        };
        let mechanisms = self
            .settings
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let response = SaslHandshakeResponse::default()
            .with_error_code(error_code)
            .with_mechanisms(mechanisms);
        answer(meta, ResponseKind::SaslHandshake(response))
    }

    async fn authenticate(&mut self, meta: &RequestMeta, frame: &Bytes) -> (Gate, Option<String>) {
        let body = frame.slice(meta.header_len..);
        let request: SaslAuthenticateRequest = match decode_body(meta.api_version, &body) {
            Ok(request) => request,
            Err(e) => {
                return (
                    Gate::Close(format!("undecodable SaslAuthenticate: {e}")),
                    None,
                )
            }
        };
        let exchange = std::mem::replace(&mut self.exchange, Exchange::Idle);
        let mechanism = match &exchange {
            Exchange::Idle => {
                let refusal = Refusal {
                    error: ResponseError::IllegalSaslState,
                    message: "SaslAuthenticate without a SaslHandshake first".to_string(),
                    log: "SaslAuthenticate without a SaslHandshake first".to_string(),
                };
                return (self.refuse(meta, None, refusal), None);
            }
            Exchange::Chosen(m) | Exchange::Scram(m, _) => *m,
        };
        let step = self.step(exchange, &request.auth_bytes).await;
        match step {
            Ok(Step::Challenge(bytes)) => (self.reply(meta, bytes, 0), None),
            Ok(Step::Done(user, bytes)) => self.logged_in(meta, mechanism, user, bytes),
            Err(refusal) => (self.refuse(meta, Some(mechanism), refusal), None),
        }
    }

    async fn step(&mut self, exchange: Exchange, token: &Bytes) -> Result<Step, Refusal> {
        match exchange {
            Exchange::Idle => unreachable!("checked by the caller"),
            Exchange::Chosen(SaslMechanism::Plain) => self.plain(token.clone()).await,
            Exchange::Chosen(mechanism) => {
                let scram = scram_of(mechanism).expect("every mechanism but PLAIN is SCRAM");
                self.scram(mechanism, ScramServer::new(scram), token)
            }
            Exchange::Scram(mechanism, server) => self.scram(mechanism, server, token),
        }
    }

    fn scram(
        &mut self,
        mechanism: SaslMechanism,
        server: ScramServer,
        token: &[u8],
    ) -> Result<Step, Refusal> {
        let scram = scram_of(mechanism).expect("a SCRAM exchange");
        let state = self.control.load();
        match server.step(token, |user| state.scram_credential(user, scram).cloned()) {
            Ok(ServerStep::Challenge(bytes, next)) => {
                self.exchange = Exchange::Scram(mechanism, next);
                Ok(Step::Challenge(bytes))
            }
            Ok(ServerStep::Done { user, server_final }) => Ok(Step::Done(user, server_final)),
            Err(e) => Err(invalid_credentials(mechanism, e.to_string())),
        }
    }

    /// PLAIN costs a PBKDF2 derivation, so it runs off the connection's thread.
    async fn plain(&self, token: Bytes) -> Result<Step, Refusal> {
        let login = plain::parse(&token)
            .map_err(|e| invalid_credentials(SaslMechanism::Plain, e.to_string()))?;
        let user = login.user.to_string();
        let credential = strongest_credential(&self.control.load(), &user);
        let check = move || {
            let (mechanism, credential) = credential?;
            let password = plain::parse(&token).ok()?.password;
            scram::password_matches(mechanism, &credential, password).then_some(())
        };
        match tokio::task::spawn_blocking(check).await {
            Ok(Some(())) => Ok(Step::Done(user, Vec::new())),
            _ => Err(invalid_credentials(
                SaslMechanism::Plain,
                format!("unknown user or wrong password for `{user}`"),
            )),
        }
    }

    fn logged_in(
        &mut self,
        meta: &RequestMeta,
        mechanism: SaslMechanism,
        user: String,
        bytes: Vec<u8>,
    ) -> (Gate, Option<String>) {
        let principal = user_principal(&user);
        if let Some((earlier, _)) = &self.session {
            if *earlier != principal {
                let refusal = Refusal {
                    error: ResponseError::SaslAuthenticationFailed,
                    message: "re-authentication must keep the same principal".to_string(),
                    log: format!("re-authentication as {principal} on a session of {earlier}"),
                };
                return (self.refuse(meta, Some(mechanism), refusal), None);
            }
        }
        let lifetime = self.settings.session_lifetime;
        let ends = (!lifetime.is_zero()).then(|| Instant::now() + lifetime);
        self.session = Some((principal.clone(), ends));
        self.count(mechanism, "ok");
        let lifetime_ms = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
        (self.reply(meta, bytes, lifetime_ms), Some(principal))
    }

    fn reply(&self, meta: &RequestMeta, bytes: Vec<u8>, session_lifetime_ms: i64) -> Gate {
        let response = SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from(bytes))
            .with_session_lifetime_ms(session_lifetime_ms);
        answer(meta, ResponseKind::SaslAuthenticate(response))
    }

    fn refuse(
        &self,
        meta: &RequestMeta,
        mechanism: Option<SaslMechanism>,
        refusal: Refusal,
    ) -> Gate {
        if let Some(mechanism) = mechanism {
            self.count(mechanism, "failed");
        }
        let response = SaslAuthenticateResponse::default()
            .with_error_code(refusal.error.code())
            .with_error_message(Some(StrBytes::from_string(refusal.message)));
        match answer(meta, ResponseKind::SaslAuthenticate(response)) {
            Gate::Answer(bytes) => {
                Gate::AnswerThenClose(bytes, format!("SASL login refused: {}", refusal.log))
            }
            other => other,
        }
    }

    fn count(&self, mechanism: SaslMechanism, result: &str) {
        self.metrics
            .security
            .authentications
            .with_label_values(&[mechanism.name(), result])
            .inc();
    }
}

enum Step {
    Challenge(Vec<u8>),
    Done(String, Vec<u8>),
}

/// Kafka's answer to any failed login: the same words whatever went wrong, so a client
/// learns nothing about which users exist.
fn invalid_credentials(mechanism: SaslMechanism, log: String) -> Refusal {
    Refusal {
        error: ResponseError::SaslAuthenticationFailed,
        message: format!(
            "Authentication failed during authentication due to invalid credentials with SASL \
             mechanism {}",
            mechanism.name()
        ),
        log,
    }
}

/// The verifiers a PLAIN password is checked against: SHA-512's if the user has them.
fn strongest_credential(
    state: &ControlState,
    user: &str,
) -> Option<(ScramMechanism, ScramCredential)> {
    [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|m| Some((m, state.scram_credential(user, m)?.clone())))
}

fn answer(meta: &RequestMeta, response: ResponseKind) -> Gate {
    match encode_response(
        meta.correlation_id,
        meta.api_key,
        meta.api_version,
        &response,
    ) {
        Ok(bytes) => Gate::Answer(bytes),
        Err(e) => Gate::Close(format!("cannot encode the {:?} answer: {e}", meta.api_key)),
    }
}
