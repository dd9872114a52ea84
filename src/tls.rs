//! TLS with rustls: the server side of the client listeners (reloaded from disk while the
//! node runs), the client side towards the brokers, mutual TLS for Raft RPC between nodes
//! (handed to the raft crate as ready configurations, so the file handling stays here),
//! and the principal of a client certificate.
//!
//! Certificates are checked at start as an operator would want them checked: a chain
//! whose leaf has expired (or is not valid yet), a key that does not belong to the leaf,
//! or an unreadable file stops the node with the config field named, rather than letting
//! every handshake fail later. A reload that finds bad files keeps serving the previous
//! certificate, logs an error and counts it; connections already open are never touched.
//!
//! The `ring` provider is named explicitly, so no process-wide default has to be installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context as _};
use arc_swap::ArcSwap;
use flotilla_config::{AdminTls, ClusterTls, ListenerTls, UpstreamTls};
use flotilla_raft::tls::{names_node, node_name};
use flotilla_raft::RaftTls;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::metrics::Metrics;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process-wide provider too. reqwest is built with rustls (Raft RPC hands
/// it ready configurations), and a reqwest client given none builds one from the
/// process-wide provider even for plain HTTP, and panics if there is none. Everything in
/// this module still names its provider.
pub fn install_default_provider() {
    // Err only if a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads every certificate of a PEM file; `field` names the config field in errors.
fn read_certs(path: &Path, field: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow!(
                "{field}: cannot read certificates from {}: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!("{field}: no PEM certificate in {}", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path, field: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        anyhow!(
            "{field}: cannot read a private key from {}: {e}",
            path.display()
        )
    })
}

fn root_store(path: &Path, field: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, field)? {
        roots.add(cert).map_err(|e| {
            anyhow!(
                "{field}: unusable CA certificate in {}: {e}",
                path.display()
            )
        })?;
    }
    Ok(roots)
}

/// Refuses a leaf certificate that is outside its validity period now.
fn check_validity(cert: &CertificateDer, path: &Path, field: &str) -> anyhow::Result<()> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| {
        anyhow!(
            "{field}: {} is not an X.509 certificate: {e}",
            path.display()
        )
    })?;
    let validity = parsed.validity();
    if !validity.is_valid() {
        bail!(
            "{field}: the certificate in {} is valid from {} to {}, not now",
            path.display(),
            validity.not_before,
            validity.not_after
        );
    }
    Ok(())
}

/// What a TLS server reads from disk: the client listeners' `[tls]` section or the admin
/// API's `[admin.tls]`, named in errors by `section`.
#[derive(Debug, Clone)]
pub struct ServerFiles {
    pub section: &'static str,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: whether a client without a certificate is still let in (it must
    /// then prove who it is another way, as admin API clients do with a token).
    pub client_cert_optional: bool,
    pub reload_interval: Duration,
    pub handshake_timeout: Duration,
}

/// How long an admin API client may take over its TLS handshake.
const ADMIN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl ServerFiles {
    pub fn listeners(tls: &ListenerTls) -> ServerFiles {
        ServerFiles {
            section: "tls",
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            client_ca: tls.client_ca.clone(),
            client_cert_optional: false,
            reload_interval: tls.reload_interval,
            handshake_timeout: tls.handshake_timeout,
        }
    }

    pub fn admin(tls: &AdminTls) -> ServerFiles {
        ServerFiles {
            section: "admin.tls",
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            client_ca: tls.client_ca.clone(),
            client_cert_optional: true,
            reload_interval: tls.reload_interval,
            handshake_timeout: ADMIN_HANDSHAKE_TIMEOUT,
        }
    }

    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.section)
    }
}

/// The server configuration, as the files say now.
fn server_config(files: &ServerFiles) -> anyhow::Result<ServerConfig> {
    let (cert_field, key_field) = (files.field("cert"), files.field("key"));
    let chain = read_certs(&files.cert, &cert_field)?;
    check_validity(&chain[0], &files.cert, &cert_field)?;
    let key = read_key(&files.key, &key_field)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .with_context(|| format!("{}: no protocol version", files.section))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let ca_field = files.field("client_ca");
            let roots = Arc::new(root_store(ca, &ca_field)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            let verifier = if files.client_cert_optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| anyhow!("{ca_field}: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder.with_single_cert(chain, key).map_err(|e| {
        anyhow!(
            "{key_field}: {} does not fit the certificate in {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })
}

/// A TLS server's configuration, swapped in whole when the files change.
pub struct ServerTls {
    settings: ServerFiles,
    current: ArcSwap<ServerConfig>,
}

impl ServerTls {
    /// Loads and checks the configured files; fails on anything a handshake would trip on.
    pub fn load(settings: ServerFiles) -> anyhow::Result<ServerTls> {
        Ok(ServerTls {
            current: ArcSwap::from_pointee(server_config(&settings)?),
            settings,
        })
    }

    /// An acceptor with the certificate as last loaded.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    pub fn handshake_timeout(&self) -> Duration {
        self.settings.handshake_timeout
    }

    fn files(&self) -> Vec<PathBuf> {
        let tls = &self.settings;
        let mut files = vec![tls.cert.clone(), tls.key.clone()];
        files.extend(tls.client_ca.clone());
        files
    }

    /// Reloads the files whenever one of them changes on disk, for the life of the node.
    pub async fn reload_on_change(self: Arc<Self>, metrics: Arc<Metrics>) {
        let mut seen = stamps(&self.files());
        let mut ticks = tokio::time::interval(self.settings.reload_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = stamps(&self.files());
            if now == seen {
                continue;
            }
            seen = now;
            match server_config(&self.settings) {
                Ok(config) => {
                    self.current.store(Arc::new(config));
                    metrics
                        .security
                        .tls_reloads
                        .with_label_values(&["ok"])
                        .inc();
                    tracing::info!(
                        section = self.settings.section,
                        cert = %self.settings.cert.display(),
                        "TLS certificate reloaded; new connections use it"
                    );
                }
                Err(e) => {
                    metrics
                        .security
                        .tls_reloads
                        .with_label_values(&["error"])
                        .inc();
                    tracing::error!(
                        section = self.settings.section,
                        "TLS files changed but cannot be used; keeping the previous certificate: {e:#}"
                    );
                }
            }
        }
    }
}

/// What identifies a file's content cheaply: its modification time and length.
fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// The client side towards the brokers.
pub fn connector(tls: &UpstreamTls) -> anyhow::Result<TlsConnector> {
    let roots = match &tls.ca {
        Some(ca) => root_store(ca, "backend.tls.ca")?,
        None => system_roots("backend.tls.ca")?,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("backend.tls: no protocol version")?
        .with_root_certificates(roots);
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "backend.tls.cert")?;
            check_validity(&chain[0], cert, "backend.tls.cert")?;
            let key = read_key(key, "backend.tls.key")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| anyhow!("backend.tls.key does not fit backend.tls.cert: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Mutual TLS for Raft RPC. The node's certificate is checked as its peers will check it
/// (signed by the fleet CA, naming `node-<id>`, valid now, usable to serve and to
/// connect), so a fleet that cannot work stops at start with the field named.
pub fn raft_tls(tls: &ClusterTls, node_id: u64) -> anyhow::Result<RaftTls> {
    let chain = read_certs(&tls.cert, "cluster.tls.cert")?;
    check_validity(&chain[0], &tls.cert, "cluster.tls.cert")?;
    let key = read_key(&tls.key, "cluster.tls.key")?;
    let roots = Arc::new(root_store(&tls.ca, "cluster.tls.ca")?);
    check_fleet_cert(&chain, &roots, node_id, &tls.cert)?;
    let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| anyhow!("cluster.tls.ca: {e}"))?;
    clients
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .map_err(|e| {
            anyhow!(
                "cluster.tls.cert: {} cannot serve as a client certificate: {e}",
                tls.cert.display()
            )
        })?;
    let mismatch = |e: rustls::Error| {
        anyhow!(
            "cluster.tls.key: {} does not fit the certificate in {}: {e}",
            tls.key.display(),
            tls.cert.display()
        )
    };
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("cluster.tls: no protocol version")?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(mismatch)?;
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("cluster.tls: no protocol version")?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(mismatch)?;
    Ok(RaftTls {
        server: Arc::new(server),
        client,
    })
}

/// Refuses a certificate that does not name the node or that the fleet CA did not sign.
fn check_fleet_cert(
    chain: &[CertificateDer<'static>],
    roots: &Arc<RootCertStore>,
    node_id: u64,
    path: &Path,
) -> anyhow::Result<()> {
    let name = node_name(node_id);
    if !names_node(&chain[0], node_id) {
        bail!(
            "cluster.tls.cert: the certificate in {} does not name {name} \
             (a DNS subject alternative name is needed)",
            path.display()
        );
    }
    let server_name = ServerName::try_from(name.clone())?;
    let servers = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| anyhow!("cluster.tls.ca: {e}"))?;
    servers
        .verify_server_cert(&chain[0], &chain[1..], &server_name, &[], UnixTime::now())
        .map_err(|e| {
            anyhow!(
                "cluster.tls.cert: the certificate in {} is not usable as {name} of the \
                 fleet whose CA is cluster.tls.ca: {e}",
                path.display()
            )
        })?;
    Ok(())
}

fn system_roots(field: &str) -> anyhow::Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        bail!("{field}: unset, and the system has no usable CA certificates");
    }
    Ok(roots)
}

/// The client side towards other nodes' HTTPS admin APIs, for writes forwarded to the
/// Raft leader: their certificates chain to `ca` (else `client_ca`, else the system's
/// roots), and with `client_ca` set this node shows its own admin certificate, which the
/// leader accepts as an admin client when the same CA signed it.
pub fn admin_peer_client(tls: &AdminTls) -> anyhow::Result<ClientConfig> {
    let roots = match (&tls.ca, &tls.client_ca) {
        (Some(ca), _) => root_store(ca, "admin.tls.ca")?,
        (None, Some(ca)) => root_store(ca, "admin.tls.client_ca")?,
        (None, None) => system_roots("admin.tls.ca")?,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("admin.tls: no protocol version")?
        .with_root_certificates(roots);
    if tls.client_ca.is_none() {
        return Ok(builder.with_no_client_auth());
    }
    let chain = read_certs(&tls.cert, "admin.tls.cert")?;
    let key = read_key(&tls.key, "admin.tls.key")?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| anyhow!("admin.tls.key does not fit admin.tls.cert: {e}"))
}

/// The principal of a client certificate, as Kafka's default mapping names it: `User:`
/// and the subject's distinguished name in RFC 2253 form, most specific part first
/// (`User:CN=alice,O=example`).
pub fn principal_of(cert: &CertificateDer) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let mut parts = Vec::new();
    for rdn in parsed
        .subject()
        .iter()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        for attribute in rdn.iter() {
            let oid = attribute.attr_type();
            let name = x509_parser::objects::oid2abbrev(oid, registry)
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string());
            let value = attribute.as_str().ok()?;
            parts.push(format!("{name}={value}"));
        }
    }
    Some(format!("User:{}", parts.join(",")))
}
