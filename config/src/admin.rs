//! The `[admin]` section: who may use a node's admin HTTP API, and whether it is served
//! over HTTPS.
//!
//! Tokens appear here only as SHA-256 hashes, so a configuration file that leaks (in a
//! repository, a support bundle, a process listing) hands out no access. Tokens created
//! at run time live in the fleet's Raft state instead; both kinds are accepted. Without
//! tokens and client CA here, and with none in Raft, the admin API stays open as in
//! releases before this section existed, so existing fleets keep working unchanged.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::{invalid, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer tokens accepted by this node, known by their SHA-256.
    #[serde(default)]
    pub tokens: Vec<StaticToken>,
    /// Serve the admin API over HTTPS.
    #[serde(default)]
    pub tls: Option<AdminTls>,
    /// Paths reachable without credentials (exact matches), for probes and scrapers.
    #[serde(default = "default_open_paths")]
    pub open_paths: Vec<String>,
}

/// A token an operator made themselves (e.g. `openssl rand -base64 32`), given by the
/// hex SHA-256 of its text (`printf %s "$TOKEN" | sha256sum`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    pub name: String,
    pub scope: AdminScope,
    pub sha256: String,
}

/// What a token may do: `read` may only GET; `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminScope {
    Read,
    Admin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTls {
    /// PEM certificate chain of this node's admin API, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf certificate.
    pub key: PathBuf,
    /// PEM CA certificates: a client certificate they signed is accepted with `admin`
    /// scope, as an alternative to a token. Optional for clients: one without a
    /// certificate still connects and presents a token. When set, this node also presents
    /// `cert` to other nodes when it forwards a write to the Raft leader.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// PEM CA certificates the other nodes' admin certificates chain to, for writes this
    /// node forwards to the leader. Defaults to `client_ca`, then the system's roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// How often the files above are checked for changes; a change applies to new
    /// connections without a restart.
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
}

/// No `[admin]` section: no credentials of its own, the default open paths (which still
/// matter once the fleet holds a token).
impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            tokens: Vec::new(),
            tls: None,
            open_paths: default_open_paths(),
        }
    }
}

impl AdminConfig {
    /// Whether this node's configuration alone makes the admin API ask for credentials
    /// (tokens in Raft do too, whatever this says).
    pub fn requires_credentials(&self) -> bool {
        !self.tokens.is_empty() || self.tls.as_ref().is_some_and(|t| t.client_ca.is_some())
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for token in &self.tokens {
            token.validate()?;
            if !names.insert(token.name.as_str()) {
                return Err(invalid(
                    "admin.tokens.name",
                    format!("`{}` is used by two tokens", token.name),
                ));
            }
            if !hashes.insert(token.sha256.to_ascii_lowercase()) {
                return Err(invalid(
                    "admin.tokens.sha256",
                    format!("token `{}` has the hash of another token", token.name),
                ));
            }
        }
        for path in &self.open_paths {
            if !path.starts_with('/') || path.contains(['?', '#']) {
                return Err(invalid(
                    "admin.open_paths",
                    format!("`{path}` must be a path starting with / (no query)"),
                ));
            }
        }
        match &self.tls {
            Some(tls) => tls.validate(),
            None => Ok(()),
        }
    }
}

impl StaticToken {
    /// The hash as bytes; `None` unless it is 64 hex digits (validation refuses that).
    pub fn digest(&self) -> Option<[u8; 32]> {
        let text = self.sha256.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(text.chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(digest)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(invalid("admin.tokens.name", "must not be empty"));
        }
        if self.digest().is_none() {
            return Err(invalid(
                "admin.tokens.sha256",
                format!(
                    "token `{}`: must be the 64 hex digits of the token's SHA-256 \
                     (printf %s \"$TOKEN\" | sha256sum), not the token itself",
                    self.name
                ),
            ));
        }
        Ok(())
    }
}

impl AdminTls {
    fn validate(&self) -> Result<(), ConfigError> {
        let files = [
            ("admin.tls.cert", Some(&self.cert)),
            ("admin.tls.key", Some(&self.key)),
            ("admin.tls.client_ca", self.client_ca.as_ref()),
            ("admin.tls.ca", self.ca.as_ref()),
        ];
        for (field, path) in files {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(invalid(field, "must not be empty"));
            }
        }
        if self.reload_interval < Duration::from_millis(100) {
            return Err(invalid(
                "admin.tls.reload_interval",
                "must be at least 100ms",
            ));
        }
        Ok(())
    }
}

fn default_open_paths() -> Vec<String> {
    ["/healthz", "/readyz", "/metrics"]
        .map(String::from)
        .to_vec()
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(10)
}

#[cfg(test)]
mod tests {
    use crate::{Config, ConfigError};

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn config(admin: &str) -> Config {
        let text =
            format!("[node]\nid = 1\n[backend]\nbootstrap_servers = [\"h:1\"]\n[admin]\n{admin}\n");
        Config::parse(&text).unwrap()
    }

    fn field_of(config: &Config) -> String {
        match config.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_section_asks_for_nothing_and_opens_the_probes() {
        let config = config("");
        config.validate().unwrap();
        let admin = config.admin.as_ref().unwrap();
        assert!(!admin.requires_credentials());
        assert_eq!(admin.open_paths, ["/healthz", "/readyz", "/metrics"]);
    }

    #[test]
    fn tokens_are_hashes_and_ask_for_credentials() {
        let config = config(&format!(
            "tokens = [{{ name = \"ops\", scope = \"admin\", sha256 = \"{}\" }},\n\
             {{ name = \"grafana\", scope = \"read\", sha256 = \"{}\" }}]",
            HASH,
            HASH.replace('9', "a")
        ));
        config.validate().unwrap();
        let admin = config.admin.as_ref().unwrap();
        assert!(admin.requires_credentials());
        let digest = admin.tokens[0].digest().unwrap();
        assert_eq!(digest[0], 0x9f);
        assert_eq!(digest[31], 0x08);
        assert_eq!(admin.tokens[1].scope, super::AdminScope::Read);
    }

    #[test]
    fn a_client_ca_asks_for_credentials() {
        let config =
            config("[admin.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\nclient_ca = \"ca.pem\"");
        config.validate().unwrap();
        assert!(config.admin.as_ref().unwrap().requires_credentials());
        let without = self::config("[admin.tls]\ncert = \"a.pem\"\nkey = \"a.key\"");
        assert!(!without.admin.as_ref().unwrap().requires_credentials());
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let token = |name: &str, sha: &str| {
            format!("{{ name = \"{name}\", scope = \"read\", sha256 = \"{sha}\" }}")
        };
        let cases = [
            (
                format!("tokens = [{}]", token("t", "secret")),
                "admin.tokens.sha256",
            ),
            (
                format!("tokens = [{}]", token("t", &HASH.replace('a', "g"))),
                "admin.tokens.sha256",
            ),
            (
                format!("tokens = [{}]", token(" ", HASH)),
                "admin.tokens.name",
            ),
            (
                format!(
                    "tokens = [{}, {}]",
                    token("t", HASH),
                    token("t", &HASH.replace('9', "a"))
                ),
                "admin.tokens.name",
            ),
            (
                format!(
                    "tokens = [{}, {}]",
                    token("a", HASH),
                    token("b", &HASH.to_uppercase())
                ),
                "admin.tokens.sha256",
            ),
            ("open_paths = [\"healthz\"]".into(), "admin.open_paths"),
            ("open_paths = [\"/x?y=1\"]".into(), "admin.open_paths"),
            (
                "[admin.tls]\ncert = \"\"\nkey = \"k\"".into(),
                "admin.tls.cert",
            ),
            (
                "[admin.tls]\ncert = \"c\"\nkey = \"k\"\nca = \"\"".into(),
                "admin.tls.ca",
            ),
            (
                "[admin.tls]\ncert = \"c\"\nkey = \"k\"\nreload_interval = \"1ms\"".into(),
                "admin.tls.reload_interval",
            ),
        ];
        for (admin, field) in cases {
            assert_eq!(field_of(&config(&admin)), field, "{admin}");
        }
    }

    #[test]
    fn unknown_scopes_and_keys_are_refused() {
        let text = "[node]\nid = 1\n[backend]\nbootstrap_servers = [\"h:1\"]\n[admin]\n";
        let scope =
            format!("{text}tokens = [{{ name = \"t\", scope = \"root\", sha256 = \"{HASH}\" }}]");
        assert!(Config::parse(&scope).unwrap_err().contains("root"));
        let key = format!("{text}token = []");
        assert!(Config::parse(&key).unwrap_err().contains("token"));
    }
}
