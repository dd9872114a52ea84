//! Who may use the admin API, checked once for every request before any handler runs.
//!
//! The API drains nodes and decides who may talk to Kafka, so once an operator asks for
//! credentials (tokens or a client CA in `[admin]`, or any token in the fleet's Raft
//! state) every path but the open ones needs them. Until then the API stays open, as it
//! was before credentials existed, so a fleet is secured by creating its first token
//! (`proxyctl token add`) without a restart. A token is looked up by its SHA-256, in the
//! node's configuration and in the committed control state, and compared in constant
//! time; a read token may only GET. Refusals are logged with the peer's address, never
//! with the token; accepted writes are logged with who made them, for the audit trail.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flotilla_config::{AdminConfig, AdminScope};
use flotilla_raft::security::TokenScope;
use flotilla_raft::ControlState;
use subtle::ConstantTimeEq;

use super::listener::AdminPeer;
use crate::api::ApiError;
use crate::cluster::security::sha256;
use crate::context::Context;

/// The credentials this node accepts besides the fleet's tokens.
pub struct AdminAuth {
    tokens: Vec<ConfigToken>,
    open_paths: Vec<String>,
    required_by_config: bool,
}

struct ConfigToken {
    name: String,
    scope: TokenScope,
    digest: [u8; 32],
}

/// What one request presents.
pub struct Asking<'a> {
    pub path: &'a str,
    pub method: &'a Method,
    pub authorization: Option<&'a str>,
    /// The subject of a client certificate the configured client CA signed.
    pub certificate: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A path open to everyone.
    OpenPath,
    /// Nobody asked for credentials: the API is open.
    NotEnforced,
    Allowed {
        who: String,
    },
    Unauthenticated(Unauthenticated),
    /// A read-only credential asked to change something.
    Forbidden {
        who: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
    Unknown,
}

/// Who made a request, as handlers need it to replay a write at the Raft leader.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub authorization: Option<String>,
    /// Who the credentials name (`token ops`, `certificate CN=...`); none on an open API.
    pub who: Option<String>,
}

impl AdminAuth {
    pub fn new(config: &AdminConfig) -> AdminAuth {
        let tokens = config
            .tokens
            .iter()
            .filter_map(|t| {
                Some(ConfigToken {
                    name: t.name.clone(),
                    scope: match t.scope {
                        AdminScope::Read => TokenScope::Read,
                        AdminScope::Admin => TokenScope::Admin,
                    },
                    digest: t.digest()?,
                })
            })
            .collect();
        AdminAuth {
            tokens,
            open_paths: config.open_paths.clone(),
            required_by_config: config.requires_credentials(),
        }
    }

    /// Whether the node's configuration alone asks for credentials.
    pub fn required_by_config(&self) -> bool {
        self.required_by_config
    }

    /// The tokens of the node's configuration, by name.
    pub fn config_tokens(&self) -> impl Iterator<Item = (&str, TokenScope)> {
        self.tokens.iter().map(|t| (t.name.as_str(), t.scope))
    }

    pub fn decide(&self, state: &ControlState, asking: &Asking) -> Verdict {
        if self.open_paths.iter().any(|p| p == asking.path) {
            return Verdict::OpenPath;
        }
        if !self.required_by_config && state.tokens.is_empty() {
            return Verdict::NotEnforced;
        }
        let (who, scope) = match self.identify(state, asking) {
            Ok(found) => found,
            Err(why) => return Verdict::Unauthenticated(why),
        };
        if scope.covers(needed_scope(asking.method)) {
            Verdict::Allowed { who }
        } else {
            Verdict::Forbidden { who }
        }
    }

    /// Who presents what: a client certificate is an admin; otherwise the bearer token.
    fn identify(
        &self,
        state: &ControlState,
        asking: &Asking,
    ) -> Result<(String, TokenScope), Unauthenticated> {
        if let Some(subject) = asking.certificate {
            return Ok((format!("certificate {subject}"), TokenScope::Admin));
        }
        let header = asking.authorization.ok_or(Unauthenticated::Missing)?;
        let token = bearer_token(header).ok_or(Unauthenticated::Malformed)?;
        let digest = sha256(token.as_bytes());
        let configured = self
            .tokens
            .iter()
            .find(|t| bool::from(t.digest.ct_eq(&digest)))
            .map(|t| (format!("token {}", t.name), t.scope));
        let replicated = || {
            state
                .find_token(&digest)
                .map(|(name, t)| (format!("token {name}"), t.scope))
        };
        configured
            .or_else(replicated)
            .ok_or(Unauthenticated::Unknown)
    }
}

/// GET (and HEAD) only read; everything else changes something.
fn needed_scope(method: &Method) -> TokenScope {
    if method == Method::GET || method == Method::HEAD {
        TokenScope::Read
    } else {
        TokenScope::Admin
    }
}

/// The token of `Bearer <token>` (the scheme in any case, RFC 7235).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub type AuthState = (Arc<Context>, Arc<AdminAuth>);

/// The middleware: decides, counts, logs, and refuses or lets the request through with
/// its [`Caller`].
pub async fn authenticate(
    State((ctx, auth)): State<AuthState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<AdminPeer>>()
        .map(|c| c.0.clone());
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let verdict = auth.decide(
        &ctx.control.load(),
        &Asking {
            path: request.uri().path(),
            method: request.method(),
            authorization: authorization.as_deref(),
            certificate: peer.as_ref().and_then(|p| p.certificate.as_deref()),
        },
    );
    let address = peer.map_or_else(|| "unknown".to_string(), |p| p.addr.to_string());
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    count(&ctx, &verdict);
    match verdict {
        Verdict::OpenPath | Verdict::NotEnforced | Verdict::Allowed { .. } => {
            if method != Method::GET && method != Method::HEAD {
                log_write(&verdict, &address, &method, &path);
            }
            let who = match &verdict {
                Verdict::Allowed { who } => Some(who.clone()),
                _ => None,
            };
            request
                .extensions_mut()
                .insert(Caller { authorization, who });
            next.run(request).await
        }
        Verdict::Unauthenticated(why) => {
            tracing::warn!(peer = address, %method, path, "admin request refused: {}", why.text());
            unauthenticated(why)
        }
        Verdict::Forbidden { who } => {
            tracing::warn!(peer = address, %method, path, who, "admin request refused: read-only credential");
            forbidden(&who)
        }
    }
}

fn count(ctx: &Context, verdict: &Verdict) {
    let result = match verdict {
        Verdict::OpenPath => return,
        Verdict::NotEnforced => "open",
        Verdict::Allowed { .. } => "ok",
        Verdict::Unauthenticated(_) => "unauthenticated",
        Verdict::Forbidden { .. } => "forbidden",
    };
    ctx.metrics
        .security
        .admin_requests
        .with_label_values(&[result])
        .inc();
}

fn log_write(verdict: &Verdict, peer: &str, method: &Method, path: &str) {
    let who = match verdict {
        Verdict::Allowed { who } => who.as_str(),
        _ => "anyone (no credentials asked)",
    };
    tracing::info!(peer, %method, path, who, "admin write");
}

impl Unauthenticated {
    fn text(self) -> &'static str {
        match self {
            Unauthenticated::Missing => {
                "this admin API needs credentials: a bearer token (Authorization: Bearer TOKEN) \
                 or a client certificate"
            }
            Unauthenticated::Malformed => "the Authorization header must be `Bearer TOKEN`",
            Unauthenticated::Unknown => "unknown or deleted token",
        }
    }
}

fn unauthenticated(why: Unauthenticated) -> Response {
    let challenge = match why {
        Unauthenticated::Missing => r#"Bearer realm="flotilla""#,
        _ => r#"Bearer realm="flotilla", error="invalid_token""#,
    };
    refusal(StatusCode::UNAUTHORIZED, challenge, why.text().to_string())
}

fn forbidden(who: &str) -> Response {
    let error = format!("{who} has read scope; this request needs an admin-scope credential");
    let challenge = r#"Bearer realm="flotilla", error="insufficient_scope", scope="admin""#;
    refusal(StatusCode::FORBIDDEN, challenge, error)
}

fn refusal(status: StatusCode, challenge: &'static str, error: String) -> Response {
    let mut response = (status, Json(ApiError { error })).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
mod tests {
    use flotilla_raft::security::AdminToken;

    use super::*;

    fn config(tokens: &[(&str, &str, &str)]) -> AdminConfig {
        let tokens: Vec<String> = tokens
            .iter()
            .map(|(name, scope, token)| {
                let hex: String = sha256(token.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("{{ name = \"{name}\", scope = \"{scope}\", sha256 = \"{hex}\" }}")
            })
            .collect();
        let text = format!(
            "[node]\nid = 1\n[backend]\nbootstrap_servers = [\"h:1\"]\n[admin]\ntokens = [{}]\n",
            tokens.join(", ")
        );
        flotilla_config::Config::parse(&text)
            .unwrap()
            .admin
            .unwrap()
    }

    fn ask(
        auth: &AdminAuth,
        state: &ControlState,
        method: Method,
        path: &str,
        header: Option<&str>,
    ) -> Verdict {
        let asking = Asking {
            path,
            method: &method,
            authorization: header,
            certificate: None,
        };
        auth.decide(state, &asking)
    }

    fn state_with_token(name: &str, scope: TokenScope, token: &str) -> ControlState {
        let mut state = ControlState::default();
        let stored = AdminToken {
            scope,
            sha256: sha256(token.as_bytes()),
        };
        state.tokens.insert(name.into(), stored);
        state
    }

    #[test]
    fn without_credentials_anywhere_the_api_is_open() {
        let state = ControlState::default();
        for auth in [
            AdminAuth::new(&AdminConfig::default()),
            AdminAuth::new(&config(&[])),
        ] {
            let verdict = ask(&auth, &state, Method::POST, "/api/v1/nodes/1/drain", None);
            assert_eq!(verdict, Verdict::NotEnforced);
        }
    }

    #[test]
    fn config_tokens_have_their_scope() {
        let auth = AdminAuth::new(&config(&[
            ("ops", "admin", "s3cret"),
            ("grafana", "read", "r3ad"),
        ]));
        let state = ControlState::default();
        let drain = "/api/v1/nodes/1/drain";
        let allowed = |who: &str| Verdict::Allowed { who: who.into() };
        assert_eq!(
            ask(&auth, &state, Method::POST, drain, Some("Bearer s3cret")),
            allowed("token ops")
        );
        assert_eq!(
            ask(
                &auth,
                &state,
                Method::GET,
                "/api/v1/cluster",
                Some("bearer r3ad")
            ),
            allowed("token grafana")
        );
        assert_eq!(
            ask(&auth, &state, Method::POST, drain, Some("Bearer r3ad")),
            Verdict::Forbidden {
                who: "token grafana".into()
            }
        );
        let refused = |header| ask(&auth, &state, Method::GET, "/api/v1/cluster", header);
        use Unauthenticated::*;
        assert_eq!(refused(None), Verdict::Unauthenticated(Missing));
        assert_eq!(
            refused(Some("Bearer nope")),
            Verdict::Unauthenticated(Unknown)
        );
        assert_eq!(
            refused(Some("Basic czNjcmV0")),
            Verdict::Unauthenticated(Malformed)
        );
        assert_eq!(
            refused(Some("Bearer ")),
            Verdict::Unauthenticated(Malformed)
        );
    }

    #[test]
    fn open_paths_need_nothing() {
        let auth = AdminAuth::new(&config(&[("ops", "admin", "s3cret")]));
        let state = ControlState::default();
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(
                ask(&auth, &state, Method::GET, path, None),
                Verdict::OpenPath
            );
        }
        let status = ask(&auth, &state, Method::GET, "/healthz/x", None);
        assert_eq!(status, Verdict::Unauthenticated(Unauthenticated::Missing));
    }

    #[test]
    fn a_token_in_raft_turns_enforcement_on_and_is_accepted() {
        let auth = AdminAuth::new(&AdminConfig::default());
        let state = state_with_token("ci", TokenScope::Read, "from-raft");
        let cluster = "/api/v1/cluster";
        assert_eq!(
            ask(&auth, &state, Method::GET, cluster, None),
            Verdict::Unauthenticated(Unauthenticated::Missing)
        );
        let metrics = ask(&auth, &state, Method::GET, "/metrics", None);
        assert_eq!(metrics, Verdict::OpenPath, "the default open paths hold");
        assert_eq!(
            ask(
                &auth,
                &state,
                Method::GET,
                cluster,
                Some("Bearer from-raft")
            ),
            Verdict::Allowed {
                who: "token ci".into()
            }
        );
        assert_eq!(
            ask(
                &auth,
                &state,
                Method::DELETE,
                "/api/v1/tokens/ci",
                Some("Bearer from-raft")
            ),
            Verdict::Forbidden {
                who: "token ci".into()
            }
        );
    }

    #[test]
    fn a_client_certificate_is_an_admin() {
        let auth = AdminAuth::new(&config(&[("ops", "admin", "s3cret")]));
        let asking = Asking {
            path: "/api/v1/nodes/1/drain",
            method: &Method::POST,
            authorization: None,
            certificate: Some("User:CN=alice"),
        };
        assert_eq!(
            auth.decide(&ControlState::default(), &asking),
            Verdict::Allowed {
                who: "certificate User:CN=alice".into()
            }
        );
    }
}
