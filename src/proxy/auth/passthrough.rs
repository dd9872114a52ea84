//! SASL passed through to the broker: the proxy forwards every message of the exchange and
//! learns who the client is once the broker has accepted it.
//!
//! The name comes from the client's first message (PLAIN's user, SCRAM's `n=`,
//! OAUTHBEARER's `sub`), and counts only when the exchange has ended well: PLAIN and
//! OAUTHBEARER after the first accepted round, SCRAM after the broker's final message
//! (`v=...`). A SCRAM client that stops after the first round never becomes that user.
//! Re-authentication (KIP-368) is an exchange like the first and replaces the name.
//!
//! A v0 SaslHandshake is followed by raw SASL frames with no Kafka header, in both
//! directions. The proxy forwards them as they are, counting rounds per mechanism (PLAIN
//! and OAUTHBEARER one, SCRAM two), since nothing in a raw frame says which round it is.
//! Mechanisms with open-ended rounds (GSSAPI) cannot be followed that way and are refused.

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::Decodable;

use super::user_principal;
use crate::protocol::decode::decode_body;
use crate::protocol::header::RequestMeta;
use crate::sasl::claimed_user;

/// One connection's view of the exchange it forwards.
#[derive(Debug, Default)]
pub struct Passthrough {
    mechanism: Option<String>,
    claimed: Option<String>,
    /// Raw frames still to come after a v0 handshake: requests, then responses.
    raw_requests: u8,
    raw_responses: u8,
    /// A v0 handshake chose this mechanism, whose raw rounds cannot be counted.
    unfollowable: Option<String>,
}

/// What the request side must do with a frame while raw SASL frames are expected.
pub enum RawFrame {
    /// A raw SASL token: forward it as it is; its answer is a raw frame too.
    Token,
    /// A Kafka request as usual.
    Kafka,
}

impl Passthrough {
    /// Notes a forwarded SaslHandshake or SaslAuthenticate request.
    pub fn on_request(&mut self, meta: &RequestMeta, frame: &Bytes) {
        let body = frame.slice(meta.header_len..);
        match meta.api_key {
            ApiKey::SaslHandshake => {
                if let Ok(request) = decode_body::<SaslHandshakeRequest>(meta.api_version, &body) {
                    self.mechanism = Some(request.mechanism.to_string());
                    self.claimed = None;
                }
            }
            ApiKey::SaslAuthenticate => {
                if let Ok(request) = decode_body::<SaslAuthenticateRequest>(meta.api_version, &body)
                {
                    self.claim(&request.auth_bytes);
                }
            }
            _ => {}
        }
    }

    fn claim(&mut self, first_message: &[u8]) {
        if self.claimed.is_none() {
            let mechanism = self.mechanism.as_deref().unwrap_or_default();
            self.claimed = claimed_user(mechanism, first_message);
        }
    }

    /// Reads a broker's SaslHandshake or SaslAuthenticate response; returns the principal
    /// when it completes a successful login.
    pub fn on_response(&mut self, api_key: ApiKey, version: i16, frame: &Bytes) -> Option<String> {
        let mut bytes = frame.clone();
        ResponseHeader::decode(&mut bytes, api_key.response_header_version(version)).ok()?;
        match api_key {
            ApiKey::SaslHandshake => {
                // Only the error code is needed: the mechanism list is an array, whose
                // count kafka-protocol would allocate for before checking it.
                let error_code = bytes.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]))?;
                if version == 0 && error_code == 0 {
                    let rounds = self.raw_rounds();
                    (self.raw_requests, self.raw_responses) = (rounds, rounds);
                    if rounds == 0 {
                        self.unfollowable = self.mechanism.clone();
                    }
                }
                None
            }
            ApiKey::SaslAuthenticate => {
                let response = SaslAuthenticateResponse::decode(&mut bytes, version).ok()?;
                let finished = match self.mechanism.as_deref() {
                    Some("SCRAM-SHA-256" | "SCRAM-SHA-512") => {
                        response.auth_bytes.starts_with(b"v=")
                    }
                    _ => true,
                };
                (response.error_code == 0 && finished).then(|| self.accepted())?
            }
            _ => None,
        }
    }

    /// Rounds of raw frames the mechanism takes; 0 for one the proxy cannot follow.
    fn raw_rounds(&self) -> u8 {
        match self.mechanism.as_deref() {
            Some("PLAIN" | "OAUTHBEARER") => 1,
            Some("SCRAM-SHA-256" | "SCRAM-SHA-512") => 2,
            _ => 0,
        }
    }

    /// Whether the request side must read its next frame as a raw token; asked only after
    /// a v0 handshake was forwarded, since the client waits for its answer before sending
    /// the token. `Err` when the handshake chose a mechanism whose rounds cannot be counted.
    pub fn next_request(&mut self) -> Result<RawFrame, String> {
        if let Some(mechanism) = self.unfollowable.take() {
            return Err(format!(
                "raw SASL frames after a v0 SaslHandshake are passed through for PLAIN, SCRAM \
                 and OAUTHBEARER only, not {mechanism}"
            ));
        }
        if self.raw_requests == 0 {
            return Ok(RawFrame::Kafka);
        }
        self.raw_requests -= 1;
        Ok(RawFrame::Token)
    }

    /// Notes a raw token the client sent.
    pub fn on_raw_request(&mut self, token: &[u8]) {
        self.claim(token);
    }

    /// Notes a raw answer the broker sent; returns the principal after the last one (a
    /// failed raw login is never answered: the broker closes the connection).
    pub fn on_raw_response(&mut self) -> Option<String> {
        self.raw_responses = self.raw_responses.saturating_sub(1);
        (self.raw_responses == 0).then(|| self.accepted())?
    }

    fn accepted(&mut self) -> Option<String> {
        let user = self.claimed.take()?;
        Some(user_principal(&user))
    }
}
