//! Who a client is, and whether it may send what it sends.
//!
//! Two ways, chosen by the node's configuration:
//! - [`terminate`]: the fleet runs SASL itself (PLAIN, SCRAM-SHA-256/512 against the
//!   verifiers in Raft), answers SaslHandshake and SaslAuthenticate, refuses everything but
//!   ApiVersions before a login, and enforces the session lifetime of KIP-368. The broker
//!   connection behind it is the proxy's own login (`backend.sasl`).
//! - [`passthrough`]: SASL is between the client and its broker. The proxy forwards the
//!   exchange untouched, including the raw frames that follow a v0 SaslHandshake, and
//!   learns the principal once the broker has said yes.
//!
//! A client certificate (mutual TLS) names a principal before either of them; a SASL
//! login then replaces it, as Kafka's SASL_SSL listeners do.

pub mod passthrough;
pub mod terminate;

use bytes::Bytes;

/// What authentication decides about one request before the filters see it.
#[derive(Debug)]
pub enum Gate {
    /// On to the filters, then the broker.
    Pass,
    /// The proxy answers (an encoded response) in the request's turn.
    Answer(Bytes),
    /// The proxy answers, then closes once everything owed is sent, as Kafka closes a
    /// connection whose login failed.
    AnswerThenClose(Bytes, String),
    /// Close now.
    Close(String),
}

/// Kafka's name for a user principal.
pub fn user_principal(user: &str) -> String {
    format!("User:{user}")
}
