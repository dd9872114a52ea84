//! Property tests of the SASL state machines, fed what a hostile client can send: any
//! sequence of SaslHandshake, SaslAuthenticate and other requests, with bodies valid,
//! truncated or random, in any order.
//!
//! What must hold: nothing panics; where the fleet terminates SASL, nothing but
//! ApiVersions passes before a login succeeds, and a login succeeds only with the right
//! password; where SASL passes through, the principal is learned only from a completed
//! exchange. `PROPTEST_CASES` raises the case count for a longer campaign.

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use flotilla::metrics::Metrics;
use flotilla::protocol::header::{parse_request, RequestMeta};
use flotilla::proxy::auth::passthrough::Passthrough;
use flotilla::proxy::auth::terminate::Terminator;
use flotilla::proxy::auth::Gate;
use flotilla::sasl::scram::{derive_credential, ScramClient, DEFAULT_ITERATIONS};
use flotilla_config::{SaslMechanism, SaslTermination};
use flotilla_raft::security::ScramMechanism;
use flotilla_raft::ControlState;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;

fn frame(api_key: ApiKey, version: i16, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("props")))
        .encode(&mut buf, api_key.request_header_version(version))
        .unwrap();
    body(&mut buf);
    buf.freeze()
}

fn handshake(mechanism: &str) -> Bytes {
    let body =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into()));
    frame(ApiKey::SaslHandshake, 1, |buf| body.encode(buf, 1).unwrap())
}

fn authenticate(token: &[u8], version: i16) -> Bytes {
    let body = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token));
    frame(ApiKey::SaslAuthenticate, version, |buf| {
        body.encode(buf, version).unwrap()
    })
}

/// One message a client may send.
#[derive(Debug, Clone)]
enum Message {
    Handshake(&'static str),
    Authenticate(Vec<u8>, i16),
    /// Any API and version with a random body.
    Garbage(i16, i16, Vec<u8>),
}

fn message() -> impl Strategy<Value = Message> {
    let mechanisms = prop::sample::select(vec![
        "PLAIN",
        "SCRAM-SHA-256",
        "SCRAM-SHA-512",
        "GSSAPI",
        "",
    ]);
    prop_oneof![
        mechanisms.prop_map(Message::Handshake),
        (prop::collection::vec(any::<u8>(), 0..120), 0i16..=2)
            .prop_map(|(t, v)| Message::Authenticate(t, v)),
        (
            0i16..80,
            -1i16..20,
            prop::collection::vec(any::<u8>(), 0..60)
        )
            .prop_map(|(k, v, b)| Message::Garbage(k, v, b)),
        // Plausible tokens: PLAIN with a wrong password, SCRAM first messages.
        Just(Message::Authenticate(b"\0alice\0wrong".to_vec(), 2)),
        Just(Message::Authenticate(b"n,,n=alice,r=abc".to_vec(), 1)),
        Just(Message::Authenticate(b"c=biws,r=abc,p=AAAA".to_vec(), 1)),
    ]
}

fn encoded(message: &Message) -> Option<(RequestMeta, Bytes)> {
    let bytes = match message {
        Message::Handshake(m) => handshake(m),
        Message::Authenticate(token, version) => authenticate(token, *version),
        Message::Garbage(key, version, body) => {
            let api_key = ApiKey::try_from(*key).ok()?;
            let mut buf = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(*key)
                .with_request_api_version(*version)
                .encode(&mut buf, api_key.request_header_version((*version).max(0)))
                .ok()?;
            buf.extend_from_slice(body);
            buf.freeze()
        }
    };
    let meta = parse_request(&bytes).ok()?;
    Some((meta, bytes))
}

/// alice's verifiers, derived once: PBKDF2 is slow on purpose.
fn control_with_alice() -> ArcSwap<ControlState> {
    static STATE: std::sync::OnceLock<ControlState> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(|| {
        let mut state = ControlState::default();
        for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let credential = derive_credential(mechanism, "alice-secret", DEFAULT_ITERATIONS);
            let user = state.users.entry("alice".to_string()).or_default();
            user.insert(mechanism, credential);
        }
        state
    });
    ArcSwap::from_pointee(state.clone())
}

fn settings() -> SaslTermination {
    SaslTermination {
        mechanisms: SaslMechanism::ALL.to_vec(),
        listeners: vec![flotilla_config::ListenerKind::Plaintext],
        session_lifetime: std::time::Duration::ZERO,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Nothing a client sends without the password gets it past the gate.
    #[test]
    fn without_the_password_nothing_but_api_versions_passes(messages in prop::collection::vec(message(), 1..12)) {
        let (control, metrics, settings) = (control_with_alice(), Metrics::new(), settings());
        let mut terminator = Terminator::new(&settings, &control, &metrics);
        runtime().block_on(async {
            for message in &messages {
                let Some((meta, bytes)) = encoded(message) else { continue };
                let (gate, principal) = terminator.gate(&meta, &bytes).await;
                prop_assert!(principal.is_none(), "logged in without the password: {messages:?}");
                if matches!(gate, Gate::Pass) {
                    prop_assert_eq!(meta.api_key, ApiKey::ApiVersions);
                }
                if matches!(gate, Gate::Close(_) | Gate::AnswerThenClose(..)) {
                    break; // the connection ends here
                }
            }
            Ok(())
        })?;
    }

    /// Garbage before a proper SCRAM login does not stop it, and the login names the user.
    #[test]
    fn a_proper_login_after_noise_succeeds(noise in prop::collection::vec(message(), 0..4), sha512 in any::<bool>()) {
        let (control, metrics, settings) = (control_with_alice(), Metrics::new(), settings());
        let mut terminator = Terminator::new(&settings, &control, &metrics);
        let (name, mechanism) = if sha512 { ("SCRAM-SHA-512", ScramMechanism::Sha512) } else { ("SCRAM-SHA-256", ScramMechanism::Sha256) };
        runtime().block_on(async {
            for message in &noise {
                let Some((meta, bytes)) = encoded(message) else { continue };
                if let (Gate::Close(_) | Gate::AnswerThenClose(..), _) = terminator.gate(&meta, &bytes).await {
                    return Ok(()); // a closed connection takes no login
                }
            }
            let (meta, bytes) = encoded(&Message::Handshake(name)).unwrap();
            terminator.gate(&meta, &bytes).await;
            let (client, first) = ScramClient::start(mechanism, "alice", "alice-secret");
            let server_first = answer_token(&mut terminator, &first).await;
            let (last, expected) = client.respond(&server_first).unwrap();
            let frame = authenticate(&last, 2);
            let (gate, principal) = terminator.gate(&parse_request(&frame).unwrap(), &frame).await;
            prop_assert_eq!(principal.as_deref(), Some("User:alice"));
            let Gate::Answer(answer) = gate else { panic!("a login is answered") };
            ScramClient::verify(&response_token(answer), &expected).unwrap();
            Ok(())
        })?;
    }

    /// Passthrough: random traffic in both directions never panics, and never names a
    /// principal without a successful SaslAuthenticate answer.
    #[test]
    fn passthrough_learns_nothing_from_noise(messages in prop::collection::vec(message(), 0..12), answers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6)) {
        let mut passthrough = Passthrough::default();
        for message in &messages {
            if let Some((meta, bytes)) = encoded(message) {
                passthrough.on_request(&meta, &bytes);
            }
            let _ = passthrough.next_request();
        }
        for answer in &answers {
            let bytes = Bytes::copy_from_slice(answer);
            for (api, version) in [(ApiKey::SaslHandshake, 0), (ApiKey::SaslHandshake, 1), (ApiKey::SaslAuthenticate, 0), (ApiKey::SaslAuthenticate, 2)] {
                if let Some(principal) = passthrough.on_response(api, version, &bytes) {
                    // Only a well-formed success can name someone.
                    let mut frame = bytes.clone();
                    ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
                    let response = SaslAuthenticateResponse::decode(&mut frame, version).unwrap();
                    prop_assert_eq!(response.error_code, 0, "{}", principal);
                }
            }
            let _ = passthrough.on_raw_response();
        }
    }
}

async fn answer_token(terminator: &mut Terminator<'_>, token: &[u8]) -> Bytes {
    let frame = authenticate(token, 2);
    let (gate, _) = terminator
        .gate(&parse_request(&frame).unwrap(), &frame)
        .await;
    let Gate::Answer(answer) = gate else {
        panic!("a SCRAM round is answered: {gate:?}")
    };
    response_token(answer)
}

fn response_token(mut answer: Bytes) -> Bytes {
    ResponseHeader::decode(
        &mut answer,
        ApiKey::SaslAuthenticate.response_header_version(2),
    )
    .unwrap();
    SaslAuthenticateResponse::decode(&mut answer, 2)
        .unwrap()
        .auth_bytes
}
