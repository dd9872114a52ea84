//! Admin writes to the fleet's security data (SCRAM users, ACLs, admin tokens), as the
//! Raft leader carries them out (see `writes`): checks against the leader's state, the
//! secrets turned into verifiers, and the commands proposed.
//!
//! A password or a new token exists only in this node's memory for the length of the
//! request: what Raft replicates and stores are SCRAM verifiers and SHA-256 hashes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use flotilla_raft::security::{AclBinding, AclFilter, AdminToken, ScramMechanism, TokenScope};
use flotilla_raft::Command;
use ring::rand::{SecureRandom, SystemRandom};

use super::error::ClusterError;
use super::fleet::Fleet;
use super::writes::commit;
use crate::sasl::scram;

/// The fleet feature level that introduced users, ACLs and tokens.
pub const LEVEL: u16 = 2;

/// Random bytes in a generated admin token: 256 bits, beyond any guessing.
const TOKEN_BYTES: usize = 32;

/// Adds or replaces `user`'s credential for `mechanism`, derived from `password`.
pub async fn put_user(
    fleet: &Fleet,
    user: String,
    mechanism: ScramMechanism,
    password: String,
    iterations: u32,
) -> Result<(), ClusterError> {
    // PBKDF2 with thousands of rounds: off the async workers.
    let derive = move || scram::derive_credential(mechanism, &password, iterations);
    let credential = tokio::task::spawn_blocking(derive)
        .await
        .map_err(|e| ClusterError::Raft(format!("deriving the credential failed: {e}")))?;
    credential
        .validate(mechanism)
        .map_err(|e| ClusterError::Invalid(e.to_string()))?;
    let command = Command::PutScramCredential {
        user,
        mechanism,
        credential,
    };
    commit(fleet, command).await
}

/// Removes `user`'s credential for `mechanism`, or the whole user.
pub async fn delete_user(
    fleet: &Fleet,
    user: String,
    mechanism: Option<ScramMechanism>,
) -> Result<(), ClusterError> {
    let known = {
        let state = fleet.raft.state().borrow().clone();
        match (state.users.get(&user), mechanism) {
            (None, _) => false,
            (Some(credentials), Some(m)) => credentials.contains_key(&m),
            (Some(_), None) => true,
        }
    };
    if !known {
        let what = match mechanism {
            Some(m) => format!("user {user:?} has no {m} credential"),
            None => format!("there is no user {user:?}"),
        };
        return Err(ClusterError::NotFound(what));
    }
    commit(fleet, Command::DeleteScramCredential { user, mechanism }).await
}

pub async fn add_acls(fleet: &Fleet, bindings: Vec<AclBinding>) -> Result<(), ClusterError> {
    commit(fleet, Command::AddAcls { bindings }).await
}

/// Removes every binding `filter` selects in the leader's state, and returns them.
pub async fn remove_acls(
    fleet: &Fleet,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, ClusterError> {
    let matched: Vec<AclBinding> = {
        let state = fleet.raft.state().borrow().clone();
        state.acls_matching(filter).into_iter().cloned().collect()
    };
    if !matched.is_empty() {
        let command = Command::RemoveAcls {
            bindings: matched.clone(),
        };
        commit(fleet, command).await?;
    }
    Ok(matched)
}

/// Makes a new token `name`, stores its hash, and returns its text (to be shown once).
/// `reserved` are names taken by tokens of the node's configuration.
pub async fn create_token(
    fleet: &Fleet,
    name: String,
    scope: TokenScope,
    reserved: &[String],
) -> Result<String, ClusterError> {
    let taken = fleet.raft.state().borrow().tokens.contains_key(&name);
    if taken || reserved.contains(&name) {
        return Err(ClusterError::Conflict(format!(
            "a token named {name:?} exists; delete it first to replace it"
        )));
    }
    let token = new_token_text()?;
    let stored = AdminToken {
        scope,
        sha256: sha256(token.as_bytes()),
    };
    commit(
        fleet,
        Command::PutToken {
            name,
            token: stored,
        },
    )
    .await?;
    Ok(token)
}

pub async fn delete_token(fleet: &Fleet, name: String) -> Result<(), ClusterError> {
    if !fleet.raft.state().borrow().tokens.contains_key(&name) {
        return Err(ClusterError::NotFound(format!(
            "there is no fleet token named {name:?}"
        )));
    }
    commit(fleet, Command::DeleteToken { name }).await
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn new_token_text() -> Result<String, ClusterError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ClusterError::Raft("the system's random source failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let (a, b) = (new_token_text().unwrap(), new_token_text().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn the_level_is_the_one_of_the_security_commands() {
        let command = Command::DeleteToken {
            name: String::new(),
        };
        assert_eq!(command.feature_level(), LEVEL);
    }

    #[test]
    fn sha256_matches_the_known_digest() {
        let digest = sha256(b"test");
        assert_eq!(digest[..4], [0x9f, 0x86, 0xd0, 0x81]);
    }
}
