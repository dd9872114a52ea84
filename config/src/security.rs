//! The security sections of a node's configuration: TLS towards clients and brokers, SASL
//! termination, and the proxy's own credentials at the brokers.
//!
//! Files named here (certificates, keys, password files) are only checked for presence
//! and shape at this level; the node opens and verifies them at start (an expired or
//! mismatched certificate stops it there, with the field named).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::{invalid, ConfigError};

/// TLS listeners for clients: a bootstrap port and one port per identity slot, beside the
/// plaintext ones (which `node.plaintext = false` turns off).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    pub bootstrap_port: u16,
    /// Identity slot `s` is served over TLS on `identity_port_base + s`.
    pub identity_port_base: u16,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, every client must present a certificate they signed
    /// (mutual TLS), and the certificate's subject becomes the client's principal.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// How often the files above are checked for changes; a change is loaded without a
    /// restart and applies to new connections.
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
    /// A client that has not finished its TLS handshake this long after connecting is cut.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

/// TLS to the brokers. The broker's host name (as its Metadata gives it) is checked against
/// its certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM CA certificates the brokers' certificates chain to; the system's roots if unset.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// A client certificate for brokers that require one (with `key`).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// Mutual TLS between the fleet's nodes for Raft RPC. Every node presents a certificate
/// signed by the fleet's CA that names it as `node-<id>` (a SAN DNS name), and accepts
/// only peers that do the same; see `config/examples/fleet-node.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    /// PEM certificate of the fleet CA: peers' certificates must chain to it.
    pub ca: PathBuf,
    /// PEM certificate chain of this node, leaf first; the leaf must name `node-<id>`.
    pub cert: PathBuf,
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A SASL mechanism, named as Kafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::ScramSha512,
        SaslMechanism::ScramSha256,
        SaslMechanism::Plain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The proxy's own login at the brokers: used for its metadata refreshes always, and for
/// client connections when the fleet terminates SASL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    /// The password itself, or (better) `password_file`; exactly one of the two.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// Which kind of client listener a setting applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    Plaintext,
    Tls,
}

/// The fleet authenticates clients itself (credentials in Raft, `proxyctl user add`) and
/// reaches the brokers with `backend.sasl`. Without this section, SASL between clients and
/// brokers passes through the proxy untouched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslTermination {
    /// Offered to clients in SaslHandshake, in this order.
    #[serde(default = "default_mechanisms")]
    pub mechanisms: Vec<SaslMechanism>,
    /// Listeners whose clients must authenticate before anything but ApiVersions.
    #[serde(default = "default_sasl_listeners")]
    pub listeners: Vec<ListenerKind>,
    /// How long an authentication holds (KIP-368): a client re-authenticates on the same
    /// connection before it ends, or the connection is closed. 0: for the connection's life,
    /// as Kafka's `connections.max.reauth.ms = 0`.
    #[serde(default, with = "humantime_serde")]
    pub session_lifetime: Duration,
}

impl SaslTermination {
    pub fn applies_to(&self, listener: ListenerKind) -> bool {
        self.listeners.contains(&listener)
    }
}

/// ACLs enforced by the fleet (stored in Raft, managed with `proxyctl acl`), with the
/// meaning of Kafka's `StandardAuthorizer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Principals allowed everything (`User:admin`), as Kafka's `super.users`.
    #[serde(default)]
    pub super_users: Vec<String>,
    /// What a resource no ACL names allows: nothing (Kafka's default), or everything, as
    /// `allow.everyone.if.no.acl.found = true`.
    #[serde(default)]
    pub allow_if_no_acl: bool,
}

impl AclConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for principal in &self.super_users {
            match principal.split_once(':') {
                Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
                _ => {
                    return Err(invalid(
                        "acl.super_users",
                        format!("`{principal}` is not a principal such as User:admin"),
                    ))
                }
            }
        }
        Ok(())
    }
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_mechanisms() -> Vec<SaslMechanism> {
    SaslMechanism::ALL.to_vec()
}
fn default_sasl_listeners() -> Vec<ListenerKind> {
    vec![ListenerKind::Plaintext, ListenerKind::Tls]
}

fn path_set(field: &'static str, path: &std::path::Path) -> Result<(), ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(())
}

impl ListenerTls {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_port == 0 {
            return Err(invalid("tls.bootstrap_port", "must not be 0"));
        }
        if self.identity_port_base == 0 {
            return Err(invalid("tls.identity_port_base", "must not be 0"));
        }
        path_set("tls.cert", &self.cert)?;
        path_set("tls.key", &self.key)?;
        if let Some(ca) = &self.client_ca {
            path_set("tls.client_ca", ca)?;
        }
        if self.reload_interval < Duration::from_millis(100) {
            return Err(invalid("tls.reload_interval", "must be at least 100ms"));
        }
        if self.handshake_timeout.is_zero() {
            return Err(invalid("tls.handshake_timeout", "must be greater than 0"));
        }
        Ok(())
    }
}

impl ClusterTls {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        path_set("cluster.tls.ca", &self.ca)?;
        path_set("cluster.tls.cert", &self.cert)?;
        path_set("cluster.tls.key", &self.key)
    }
}

impl UpstreamTls {
    /// `section` is the backend cluster's (`backend`, `backend.clusters.NAME`).
    pub(crate) fn validate(&self, section: &str) -> Result<(), ConfigError> {
        match (&self.cert, &self.key) {
            (Some(_), None) => Err(invalid(
                format!("{section}.tls.key"),
                format!("is needed with {section}.tls.cert"),
            )),
            (None, Some(_)) => Err(invalid(
                format!("{section}.tls.cert"),
                format!("is needed with {section}.tls.key"),
            )),
            _ => Ok(()),
        }
    }
}

impl ServiceCredentials {
    /// `section` is the backend cluster's (`backend`, `backend.clusters.NAME`).
    pub(crate) fn validate(&self, section: &str) -> Result<(), ConfigError> {
        if self.username.is_empty() {
            return Err(invalid(
                format!("{section}.sasl.username"),
                "must not be empty",
            ));
        }
        match (&self.password, &self.password_file) {
            (Some(_), Some(_)) => Err(invalid(
                format!("{section}.sasl.password"),
                "set either password or password_file, not both",
            )),
            (None, None) => Err(invalid(
                format!("{section}.sasl.password_file"),
                format!("is needed (or {section}.sasl.password)"),
            )),
            _ => Ok(()),
        }
    }

    /// The password, read from `password_file` (trailing newline dropped) if that is set.
    pub fn read_password(&self) -> Result<String, ConfigError> {
        if let Some(password) = &self.password {
            return Ok(password.clone());
        }
        let path = self
            .password_file
            .as_deref()
            .unwrap_or(std::path::Path::new(""));
        let text = std::fs::read_to_string(path).map_err(|e| {
            invalid(
                "backend.sasl.password_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    }
}

impl SaslTermination {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.mechanisms.is_empty() {
            return Err(invalid("sasl.mechanisms", "needs at least one mechanism"));
        }
        if self.listeners.is_empty() {
            return Err(invalid(
                "sasl.listeners",
                "needs plaintext, tls or both (remove [sasl] to pass SASL through)",
            ));
        }
        if !self.session_lifetime.is_zero() && self.session_lifetime < Duration::from_secs(1) {
            return Err(invalid(
                "sasl.session_lifetime",
                "must be 0 (no limit) or at least 1s",
            ));
        }
        Ok(())
    }
}
