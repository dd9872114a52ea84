//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), both sides: the server that
//! checks a client against the salted verifiers kept in Raft, and the client the proxy uses
//! to log in to brokers with its service account.
//!
//! Built on `ring`'s PBKDF2, HMAC and SHA-2, already in the build for TLS. The one crate
//! with a SHA-512 server is source-available rather than open source, and the open one
//! covers SHA-256 only; the exchange itself is four short messages.
//!
//! As Kafka does, a client-first message may carry extensions (`tokenauth=true` for
//! delegation tokens, which the fleet does not issue, so such a login fails), and no
//! channel binding (`n,,` only: Kafka has none).

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use flotilla_raft::security::{ScramCredential, ScramMechanism};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use subtle::ConstantTimeEq;

/// Iterations for new credentials: Kafka's minimum and its tools' default.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Why an exchange failed; the text goes to logs, never the detail to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("unknown user or wrong password")]
    InvalidCredentials,
    #[error("the server's final message does not prove it knows the password")]
    ServerNotProven,
    #[error("the server refused: {0}")]
    ServerError(String),
}

fn algorithms(
    mechanism: ScramMechanism,
) -> (
    pbkdf2::Algorithm,
    hmac::Algorithm,
    &'static digest::Algorithm,
) {
    match mechanism {
        ScramMechanism::Sha256 => (
            pbkdf2::PBKDF2_HMAC_SHA256,
            hmac::HMAC_SHA256,
            &digest::SHA256,
        ),
        ScramMechanism::Sha512 => (
            pbkdf2::PBKDF2_HMAC_SHA512,
            hmac::HMAC_SHA512,
            &digest::SHA512,
        ),
    }
}

fn mac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    let (_, algorithm, _) = algorithms(mechanism);
    hmac::sign(&hmac::Key::new(algorithm, key), data)
        .as_ref()
        .to_vec()
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    let (_, _, algorithm) = algorithms(mechanism);
    digest::digest(algorithm, data).as_ref().to_vec()
}

fn salted_password(
    mechanism: ScramMechanism,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let (algorithm, _, _) = algorithms(mechanism);
    let mut out = vec![0u8; mechanism.key_len()];
    let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(algorithm, iterations, salt, password.as_bytes(), &mut out);
    out
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    // The system's random source failing is not something a proxy can work around.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes
}

/// Letters and digits only, as Kafka's own nonces: some clients (librdkafka before 2.6)
/// mishandle a server nonce with `+`, `/` or `=` in it.
fn nonce() -> String {
    random_bytes(24)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The verifiers of `password` with a fresh random salt: what Raft stores, never the
/// password.
pub fn derive_credential(
    mechanism: ScramMechanism,
    password: &str,
    iterations: u32,
) -> ScramCredential {
    credential_with_salt(mechanism, password, &random_bytes(32), iterations)
}

fn credential_with_salt(
    mechanism: ScramMechanism,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> ScramCredential {
    let salted = salted_password(mechanism, password, salt, iterations);
    let client_key = mac(mechanism, &salted, b"Client Key");
    ScramCredential {
        salt: salt.to_vec(),
        iterations,
        stored_key: hash(mechanism, &client_key),
        server_key: mac(mechanism, &salted, b"Server Key"),
    }
}

/// Whether `password` is the one `credential` was derived from (PLAIN logins are checked
/// this way, against the same verifiers SCRAM uses).
pub fn password_matches(
    mechanism: ScramMechanism,
    credential: &ScramCredential,
    password: &str,
) -> bool {
    let derived =
        credential_with_salt(mechanism, password, &credential.salt, credential.iterations);
    bool::from(derived.stored_key.ct_eq(&credential.stored_key))
}

/// `a=b,c=d` attributes of a SCRAM message, in order.
fn attributes(message: &str) -> Result<Vec<(char, &str)>, ScramError> {
    message
        .split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(key), Some('=')) => Ok((key, &part[2..])),
                _ => Err(ScramError::Malformed("attribute without `x=`")),
            }
        })
        .collect()
}

fn attribute<'a>(
    attributes: &[(char, &'a str)],
    key: char,
    what: &'static str,
) -> Result<&'a str, ScramError> {
    attributes
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .ok_or(ScramError::Malformed(what))
}

/// A SCRAM user name with `=2C` and `=3D` unescaped.
fn unescape_name(name: &str) -> Result<String, ScramError> {
    let unescaped = name.replace("=2C", ",").replace("=3D", "=");
    if unescaped.contains('=') && !name.contains("=3D") {
        return Err(ScramError::Malformed("bad escape in user name"));
    }
    Ok(unescaped)
}

fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The user a client-first message names (for a passthrough proxy; nothing is checked).
pub fn user_of(client_first: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(client_first).ok()?;
    let bare = text.splitn(3, ',').nth(2)?;
    let attrs = attributes(bare).ok()?;
    unescape_name(attribute(&attrs, 'n', "").ok()?).ok()
}

/// The server side of one exchange.
pub enum ScramServer {
    /// Waiting for client-first.
    Start { mechanism: ScramMechanism },
    /// Server-first sent; waiting for client-final.
    Challenged {
        mechanism: ScramMechanism,
        user: String,
        /// `None` for an unknown user: the exchange goes on and fails at the proof, so a
        /// client cannot tell unknown users from wrong passwords.
        credential: Option<ScramCredential>,
        nonce: String,
        /// The client's part, at the start of `nonce`.
        client_nonce_len: usize,
        auth_message_prefix: String,
    },
}

/// What a server step produced.
pub enum ServerStep {
    /// Send this and wait for the client's next message.
    Challenge(Vec<u8>, ScramServer),
    /// Authenticated as this user; send the server-final message.
    Done { user: String, server_final: Vec<u8> },
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer::Start { mechanism }
    }

    /// Takes the client's next message; `lookup` finds a user's verifiers.
    pub fn step(
        self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<ServerStep, ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        match self {
            ScramServer::Start { mechanism } => client_first(mechanism, message, lookup),
            ScramServer::Challenged {
                mechanism,
                user,
                credential,
                nonce,
                client_nonce_len,
                auth_message_prefix,
            } => {
                let server_final = client_final(
                    mechanism,
                    credential.as_ref(),
                    &nonce,
                    client_nonce_len,
                    &auth_message_prefix,
                    message,
                )?;
                Ok(ServerStep::Done { user, server_final })
            }
        }
    }
}

fn client_first(
    mechanism: ScramMechanism,
    message: &str,
    lookup: impl FnOnce(&str) -> Option<ScramCredential>,
) -> Result<ServerStep, ScramError> {
    let bare = message.strip_prefix("n,,").ok_or(ScramError::Malformed(
        "client-first must start with `n,,` (no channel binding, no authzid)",
    ))?;
    let attrs = attributes(bare)?;
    let user = unescape_name(attribute(&attrs, 'n', "client-first has no user name")?)?;
    let client_nonce = attribute(&attrs, 'r', "client-first has no nonce")?;
    if client_nonce.is_empty() || attrs.iter().any(|(k, _)| *k == 'm') {
        return Err(ScramError::Malformed(
            "empty nonce or unsupported mandatory extension",
        ));
    }
    // Delegation tokens are not issued by the fleet; such a login cannot succeed.
    let token_auth = bare.contains(",tokenauth=true");
    let credential = if token_auth { None } else { lookup(&user) };
    let (salt, iterations) = match &credential {
        Some(c) => (c.salt.clone(), c.iterations),
        None => (
            hash(mechanism, user.as_bytes())[..16].to_vec(),
            DEFAULT_ITERATIONS,
        ),
    };
    let nonce = format!("{client_nonce}{}", self::nonce());
    let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(&salt));
    let auth_message_prefix = format!("{bare},{server_first}");
    Ok(ServerStep::Challenge(
        server_first.into_bytes(),
        ScramServer::Challenged {
            mechanism,
            user,
            credential,
            nonce,
            client_nonce_len: client_nonce.len(),
            auth_message_prefix,
        },
    ))
}

/// librdkafka before 2.6 echoes its own nonce in front of the whole nonce (client's and
/// server's); Kafka before 4.0 accepted that (it checked only the end), so the clients
/// Debian ships (kcat on librdkafka 2.0) depend on it. The server's random part is still
/// there, so the exchange stays fresh.
fn is_doubled_client_nonce(echoed: &str, nonce: &str, client_nonce_len: usize) -> bool {
    let client_nonce = &nonce[..client_nonce_len.min(nonce.len())];
    echoed.strip_prefix(client_nonce) == Some(nonce)
}

fn client_final(
    mechanism: ScramMechanism,
    credential: Option<&ScramCredential>,
    nonce: &str,
    client_nonce_len: usize,
    auth_message_prefix: &str,
    message: &str,
) -> Result<Vec<u8>, ScramError> {
    let (without_proof, proof) = message
        .rsplit_once(",p=")
        .ok_or(ScramError::Malformed("client-final has no proof"))?;
    let attrs = attributes(without_proof)?;
    if attribute(&attrs, 'c', "client-final has no channel binding")? != "biws" {
        return Err(ScramError::Malformed(
            "channel binding must be `biws` (none)",
        ));
    }
    let echoed = attribute(&attrs, 'r', "client-final has no nonce")?;
    if echoed != nonce && !is_doubled_client_nonce(echoed, nonce, client_nonce_len) {
        return Err(ScramError::Malformed("nonce does not match"));
    }
    let proof = BASE64
        .decode(proof)
        .map_err(|_| ScramError::Malformed("proof is not base64"))?;
    let credential = credential.ok_or(ScramError::InvalidCredentials)?;
    let auth_message = format!("{auth_message_prefix},{without_proof}");
    let signature = mac(mechanism, &credential.stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return Err(ScramError::InvalidCredentials);
    }
    let client_key = xor(&proof, &signature);
    if !bool::from(hash(mechanism, &client_key).ct_eq(&credential.stored_key)) {
        return Err(ScramError::InvalidCredentials);
    }
    let server_signature = mac(mechanism, &credential.server_key, auth_message.as_bytes());
    Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
}

/// The client side of one exchange, for the proxy's own logins.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    nonce: String,
}

impl ScramClient {
    /// Starts an exchange; returns the client and its first message.
    pub fn start(mechanism: ScramMechanism, user: &str, password: &str) -> (ScramClient, Vec<u8>) {
        let nonce = nonce();
        let client_first_bare = format!("n={},r={nonce}", escape_name(user));
        let first = format!("n,,{client_first_bare}").into_bytes();
        let client = ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare,
            nonce,
        };
        (client, first)
    }

    /// Answers server-first; returns client-final and what server-final must say.
    pub fn respond(&self, server_first: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ScramError> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let attrs = attributes(server_first)?;
        if let Ok(error) = attribute(&attrs, 'e', "") {
            return Err(ScramError::ServerError(error.to_string()));
        }
        let nonce = attribute(&attrs, 'r', "server-first has no nonce")?;
        if !nonce.starts_with(&self.nonce) {
            return Err(ScramError::Malformed("server nonce does not extend ours"));
        }
        let salt = BASE64
            .decode(attribute(&attrs, 's', "server-first has no salt")?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = attribute(&attrs, 'i', "server-first has no iteration count")?
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        if !(1..=1_000_000).contains(&iterations) {
            return Err(ScramError::Malformed("iteration count out of range"));
        }
        let m = self.mechanism;
        let salted = salted_password(m, &self.password, &salt, iterations);
        let client_key = mac(m, &salted, b"Client Key");
        let stored_key = hash(m, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let proof = xor(&client_key, &mac(m, &stored_key, auth_message.as_bytes()));
        let server_key = mac(m, &salted, b"Server Key");
        let expected = mac(m, &server_key, auth_message.as_bytes());
        let client_final = format!("{without_proof},p={}", BASE64.encode(proof));
        Ok((client_final.into_bytes(), expected))
    }

    /// Checks server-final against what [`ScramClient::respond`] expected.
    pub fn verify(server_final: &[u8], expected: &[u8]) -> Result<(), ScramError> {
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let attrs = attributes(text)?;
        if let Ok(error) = attribute(&attrs, 'e', "") {
            return Err(ScramError::ServerError(error.to_string()));
        }
        let signature = BASE64
            .decode(attribute(&attrs, 'v', "server-final has no verifier")?)
            .map_err(|_| ScramError::Malformed("verifier is not base64"))?;
        if !bool::from(signature.ct_eq(expected)) {
            return Err(ScramError::ServerNotProven);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(
        mechanism: ScramMechanism,
        stored: &ScramCredential,
        user: &str,
        password: &str,
    ) -> Result<String, ScramError> {
        let (client, first) = ScramClient::start(mechanism, user, password);
        let server = ScramServer::new(mechanism);
        let ServerStep::Challenge(server_first, server) =
            server.step(&first, |_| Some(stored.clone()))?
        else {
            panic!("first step must challenge");
        };
        let (client_final, expected) = client.respond(&server_first)?;
        match server.step(&client_final, |_| None)? {
            ServerStep::Done { user, server_final } => {
                ScramClient::verify(&server_final, &expected)?;
                Ok(user)
            }
            ServerStep::Challenge(..) => panic!("second step must finish"),
        }
    }

    #[test]
    fn the_right_password_logs_in_and_a_wrong_one_does_not() {
        for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let stored = derive_credential(mechanism, "s3cret", DEFAULT_ITERATIONS);
            stored.validate(mechanism).unwrap();
            assert_eq!(
                login(mechanism, &stored, "al,i=ce", "s3cret"),
                Ok("al,i=ce".to_string())
            );
            assert_eq!(
                login(mechanism, &stored, "alice", "guess"),
                Err(ScramError::InvalidCredentials)
            );
            assert!(password_matches(mechanism, &stored, "s3cret"));
            assert!(!password_matches(mechanism, &stored, "s3cret "));
        }
    }

    /// RFC 7677's SCRAM-SHA-256 example, from the client's side.
    #[test]
    fn the_client_matches_rfc_7677() {
        let mut client = ScramClient::start(ScramMechanism::Sha256, "user", "pencil").0;
        client.nonce = "rOprNGfwEbeRWgbNEkqO".to_string();
        client.client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO".to_string();
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (client_final, expected) = client.respond(server_first).unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        ScramClient::verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &expected).unwrap();
    }

    #[test]
    fn unknown_users_fail_only_at_the_proof() {
        let mechanism = ScramMechanism::Sha512;
        let (client, first) = ScramClient::start(mechanism, "nobody", "x");
        let Ok(ServerStep::Challenge(server_first, server)) =
            ScramServer::new(mechanism).step(&first, |_| None)
        else {
            panic!("an unknown user is challenged like any other");
        };
        let (client_final, _) = client.respond(&server_first).unwrap();
        assert!(matches!(
            server.step(&client_final, |_| None),
            Err(ScramError::InvalidCredentials)
        ));
    }

    /// librdkafka before 2.6 puts its own nonce in front of the whole nonce again.
    #[test]
    fn old_librdkafkas_doubled_nonce_is_accepted_and_nothing_else() {
        let mechanism = ScramMechanism::Sha256;
        let stored = derive_credential(mechanism, "pw", DEFAULT_ITERATIONS);
        for (doubled, accepted) in [(true, true), (false, false)] {
            let (client, first) = ScramClient::start(mechanism, "u", "pw");
            let Ok(ServerStep::Challenge(server_first, server)) =
                ScramServer::new(mechanism).step(&first, |_| Some(stored.clone()))
            else {
                panic!("challenged");
            };
            let (last, _) = client.respond(&server_first).unwrap();
            let last = String::from_utf8(last).unwrap();
            let prefix = if doubled {
                client.nonce.clone()
            } else {
                "x".to_string()
            };
            // The proof no longer matches the message, so only the nonce check is tested.
            let tampered = last.replacen("r=", &format!("r={prefix}"), 1);
            let result = server.step(tampered.as_bytes(), |_| None);
            let nonce_refused =
                matches!(result, Err(ScramError::Malformed("nonce does not match")));
            assert_eq!(!nonce_refused, accepted, "doubled: {doubled}");
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        for message in [
            &b""[..],
            b"y,,n=a,r=b",
            b"n,,n=a",
            b"n,,r=x",
            b"n,a=z,n=a,r=b",
            b"\xff",
        ] {
            let result = ScramServer::new(ScramMechanism::Sha256).step(message, |_| None);
            assert!(
                matches!(result, Err(ScramError::Malformed(_))),
                "{message:?}"
            );
        }
    }
}
