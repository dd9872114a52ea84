//! Reaching a node's admin API the way an operator would: with a bearer token, over
//! HTTPS with the test's CA, with a client certificate, or none of these.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// An admin API's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub body: String,
}

/// Credentials and trust for one admin API; the default is plain HTTP without credentials.
#[derive(Debug, Clone, Default)]
pub struct AdminAccess {
    pub token: Option<String>,
    /// The CA of an HTTPS admin API; set, the API is reached over HTTPS.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl AdminAccess {
    pub fn token(token: &str) -> AdminAccess {
        AdminAccess {
            token: Some(token.to_string()),
            ..AdminAccess::default()
        }
    }

    pub fn with_token(&self, token: &str) -> AdminAccess {
        AdminAccess {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub fn without_token(&self) -> AdminAccess {
        AdminAccess {
            token: None,
            ..self.clone()
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.ca.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The same credentials as `proxyctl` flags.
    pub fn proxyctl_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(token) = &self.token {
            args.extend(["--token".to_string(), token.clone()]);
        }
        if let Some(ca) = &self.ca {
            args.extend(["--ca".to_string(), ca.display().to_string()]);
        }
        if let Some((cert, key)) = &self.client {
            args.extend(["--cert".to_string(), cert.display().to_string()]);
            args.extend(["--key".to_string(), key.display().to_string()]);
        }
        args
    }

    /// Runs this build's `proxyctl` against `node` with these credentials (and nothing
    /// from the environment), feeding it `stdin`.
    pub fn proxyctl(&self, node: &super::Node, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_proxyctl"))
            .args(["--endpoint", &node.admin])
            .args(self.proxyctl_args())
            .args(args)
            .env_remove("FLOTILLA_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `method url` with these credentials, whatever the status.
    pub fn call(&self, method: &str, url: &str) -> Result<Answer, String> {
        let agent = self.agent();
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(()).map_err(|e| e.to_string())?;
        let mut response = agent.run(request).map_err(|e| e.to_string())?;
        let www_authenticate = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Answer {
            status: response.status().as_u16(),
            www_authenticate,
            body: response
                .body_mut()
                .read_to_string()
                .map_err(|e| e.to_string())?,
        })
    }

    /// A GET that succeeds only on a 2xx answer.
    pub fn get(&self, url: &str) -> Result<String, String> {
        let answer = self.call("GET", url)?;
        match answer.status {
            200..=299 => Ok(answer.body),
            status => Err(format!("{status}: {}", answer.body)),
        }
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .tls_config(self.tls())
            .build()
            .into()
    }

    fn tls(&self) -> TlsConfig {
        let pem = |path: &PathBuf| std::fs::read(path).unwrap();
        let certs = |path: &PathBuf| -> Vec<Certificate<'static>> {
            ureq::tls::parse_pem(&pem(path))
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect()
        };
        let roots = self.ca.as_ref().map(certs).unwrap_or_default();
        let client = self.client.as_ref().map(|(cert, key)| {
            let key = PrivateKey::from_pem(&pem(key)).unwrap();
            ClientCert::new_with_certs(&certs(cert), key)
        });
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .root_certs(RootCerts::new_with_certs(&roots))
            .client_cert(client)
            .build()
    }
}
