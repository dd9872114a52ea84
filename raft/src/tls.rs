//! Mutual TLS for Raft RPC, and the binding of a certificate to a node id.
//!
//! A certificate signed by the fleet CA proves only that its holder belongs to the fleet.
//! Raft trusts more than that: an AppendEntries says "I am the leader, node 2", and a
//! follower acts on it. So each node's certificate names it (`node-<id>` as a SAN DNS
//! name), a server accepts a request only if the sender's certificate names the node the
//! request comes from, and a client addresses peers by that name, so the peer's
//! certificate must name the node it meant to reach. One fleet member's stolen key then
//! lets an attacker speak as that member only.
//!
//! The crate takes ready rustls configurations rather than file names: the node loads and
//! checks the files (with the config fields named in its errors) and picks the crypto
//! provider, so this crate needs neither.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ServerConfig};

use crate::types::NodeId;

/// What a node needs to speak Raft RPC over mutual TLS.
#[derive(Debug, Clone)]
pub struct RaftTls {
    /// Presents this node's certificate and requires a client certificate from the CA.
    pub server: Arc<ServerConfig>,
    /// Trusts the CA and presents this node's certificate.
    pub client: ClientConfig,
}

/// The name a node's certificate carries, and the host name peers reach it by.
pub fn node_name(id: NodeId) -> String {
    format!("node-{id}")
}

/// Whether `cert` names node `id` (a SAN DNS name `node-<id>`). Only the name is looked
/// at: the chain was verified in the handshake.
pub fn names_node(cert: &CertificateDer<'_>, id: NodeId) -> bool {
    let Ok(name) = ServerName::try_from(node_name(id)) else {
        return false;
    };
    let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    parsed.verify_is_valid_for_subject_name(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_fixed() {
        assert_eq!(node_name(7), "node-7");
    }

    #[test]
    fn garbage_names_nothing() {
        assert!(!names_node(&CertificateDer::from(vec![0u8; 16]), 1));
    }
}
