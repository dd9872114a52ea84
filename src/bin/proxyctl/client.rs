//! The admin API as `proxyctl` reaches it: one agent with the caller's credentials (a
//! bearer token, or a client certificate over HTTPS) and errors as one line each, with
//! the two refusals an operator can fix themselves said plainly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flotilla::api::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// How to reach and authenticate to the admin API.
pub struct Access {
    pub endpoint: String,
    pub token: Option<String>,
    /// CA certificates (PEM) of an HTTPS endpoint; the system's roots otherwise.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for an endpoint with a client CA.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

pub struct Api {
    endpoint: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(access: &Access) -> Result<Api, String> {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .tls_config(tls_config(access)?)
            .build();
        Ok(Api {
            endpoint: access.endpoint.trim_end_matches('/').to_string(),
            token: access.token.clone(),
            agent: config.into(),
        })
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.endpoint);
        let mut request = self.agent.get(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.answer(&url, request.call())
    }

    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, String> {
        let url = format!("{}{path}", self.endpoint);
        let mut request = self.agent.post(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let sent = match body {
            Some(body) => request.send_json(body),
            None => request.send_empty(),
        };
        self.answer(&url, sent)
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.endpoint);
        let mut request = self.agent.delete(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.answer(&url, request.call())
    }

    fn answer<T: DeserializeOwned>(
        &self,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, String> {
        let mut response = result.map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let error = match response.body_mut().read_json::<ApiError>() {
                Ok(body) => body.error,
                Err(_) => format!("{url} answered {status}"),
            };
            return Err(self.refusal(status, error));
        }
        response
            .body_mut()
            .read_json()
            .map_err(|e| format!("unexpected answer from {url}: {e}"))
    }

    /// The error line, with what to do about a missing or too weak credential.
    fn refusal(&self, status: u16, error: String) -> String {
        match (status, &self.token) {
            (401, None) => format!(
                "{} needs a token: pass --token or set FLOTILLA_TOKEN (or a client \
                 certificate with --cert and --key) [{error}]",
                self.endpoint
            ),
            (401, Some(_)) => format!(
                "{} does not accept this token; check --token or FLOTILLA_TOKEN [{error}]",
                self.endpoint
            ),
            (403, _) => {
                format!("the token is read-only; this needs an admin-scope token [{error}]")
            }
            _ => error,
        }
    }
}

/// Rustls with ring (the build has no other provider), trusting `--ca` or the system.
fn tls_config(access: &Access) -> Result<TlsConfig, String> {
    let roots = match &access.ca {
        Some(ca) => pem_certificates(ca, "--ca")?,
        None => system_roots(),
    };
    let client_cert = match (&access.cert, &access.key) {
        (Some(cert), Some(key)) => Some(client_certificate(cert, key)?),
        (None, None) => None,
        _ => return Err("--cert and --key go together".into()),
    };
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::new_with_certs(&roots))
        .client_cert(client_cert)
        .build())
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

fn pem_certificates(path: &Path, flag: &str) -> Result<Vec<Certificate<'static>>, String> {
    let pem = read(path, flag)?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("{flag} {}: no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn client_certificate(cert: &Path, key: &Path) -> Result<ClientCert, String> {
    let chain = pem_certificates(cert, "--cert")?;
    let key = PrivateKey::from_pem(&read(key, "--key")?)
        .map_err(|e| format!("--key {}: {e}", key.display()))?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

fn system_roots() -> Vec<Certificate<'static>> {
    rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect()
}

/// `text` as one URL path segment or query value.
pub fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
