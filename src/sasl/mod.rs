//! SASL mechanisms, without any I/O: PLAIN and SCRAM-SHA-256/512 for both the server the
//! fleet runs when it terminates SASL and the client it logs in to brokers with, and what
//! a passthrough proxy can learn from a client's first message (who it claims to be).
//!
//! The Kafka side (SaslHandshake, SaslAuthenticate, KIP-368 session lifetimes) lives with
//! the connection; this module only turns messages into messages.

pub mod plain;
pub mod scram;

use flotilla_config::SaslMechanism;
use flotilla_raft::security::ScramMechanism;

/// The SCRAM hash of a mechanism, or `None` for PLAIN.
pub fn scram_of(mechanism: SaslMechanism) -> Option<ScramMechanism> {
    match mechanism {
        SaslMechanism::Plain => None,
        SaslMechanism::ScramSha256 => Some(ScramMechanism::Sha256),
        SaslMechanism::ScramSha512 => Some(ScramMechanism::Sha512),
    }
}

/// A mechanism by its SASL name, as a SaslHandshake request carries it.
pub fn mechanism_named(name: &str) -> Option<SaslMechanism> {
    SaslMechanism::ALL.into_iter().find(|m| m.name() == name)
}

/// The user a client's first SASL message names, for the mechanisms where it is visible:
/// PLAIN's authentication id, SCRAM's `n=`, and OAUTHBEARER's `sub` claim would need the
/// token decoded (`auth=Bearer <jwt>`), so it is read from the JWT's payload without
/// checking it (the broker checks it; the proxy only learns a name once the broker says
/// yes).
pub fn claimed_user(mechanism: &str, first_message: &[u8]) -> Option<String> {
    match mechanism {
        "PLAIN" => plain::user_of(first_message).map(str::to_string),
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => scram::user_of(first_message),
        "OAUTHBEARER" => oauth_subject(first_message),
        _ => None,
    }
}

/// `sub` of the JWT in an OAUTHBEARER initial response (RFC 7628: `n,,\x01auth=Bearer
/// <token>\x01...`).
fn oauth_subject(message: &[u8]) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let text = std::str::from_utf8(message).ok()?;
    let token = text
        .split('\x01')
        .find_map(|kv| kv.strip_prefix("auth="))?
        .trim()
        .strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?)
            .ok()?;
    claims.get("sub")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_users_come_from_each_mechanism() {
        assert_eq!(
            claimed_user("PLAIN", b"\0alice\0pw").as_deref(),
            Some("alice")
        );
        assert_eq!(
            claimed_user("SCRAM-SHA-512", b"n,,n=bo=2Cb,r=abc").as_deref(),
            Some("bo,b")
        );
        // {"alg":"none"} . {"sub":"carol"} . (no signature)
        let jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYXJvbCJ9.";
        let message = format!("n,,\x01auth=Bearer {jwt}\x01\x01");
        assert_eq!(
            claimed_user("OAUTHBEARER", message.as_bytes()).as_deref(),
            Some("carol")
        );
        assert_eq!(claimed_user("GSSAPI", b"anything"), None);
        assert_eq!(
            claimed_user("OAUTHBEARER", b"n,,\x01auth=Basic x\x01\x01"),
            None
        );
    }
}
