//! Who may talk to the fleet and what they may do: SASL/SCRAM credentials, Kafka ACLs and
//! the bearer tokens of the admin API.
//!
//! These live in the replicated control state because a client may connect to any node
//! and must meet the same rules there; a per-node file would drift. Only verifiers are
//! replicated (RFC 5802 salted keys, SHA-256 hashes of tokens), never a secret a client
//! presents, so a copied snapshot or log does not hand out access. The cryptography that
//! derives them runs in the node; this crate only stores them.
//!
//! The ACL model is Apache Kafka's, with its names and protocol codes, so that operators
//! bring their `kafka-acls` habits and the proxy answers exactly as a broker running
//! `StandardAuthorizer` would. Authorizing is a pure query over the last applied state:
//! the data path asks it without a lock or a Raft round trip.
//!
//! Every enum here is encoded by bincode through its variant's position, in commands and
//! snapshots alike: variants are only ever appended.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::state::{CommandResult, ControlState};

/// An ACL host or literal resource name that matches every host or name.
pub const WILDCARD: &str = "*";
/// An ACL principal that matches every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The name Kafka gives the one `Cluster` resource; authorize cluster actions against it.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// A name that is not one of an enum's Kafka names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}; expected one of {expected}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

/// Data that Kafka would refuse to store; checked by the proposer, not by `apply`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);

/// Case, `-`, `_` and spaces do not matter: "transactional-id", "TransactionalId" and
/// "TRANSACTIONAL_ID" are one name.
fn normalized(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Declares a Kafka enum: its Java name (shown by Display, as `kafka-acls --list` and the
/// admin client print it), a case- and separator-insensitive `FromStr`, and the int8 code
/// it has in the Kafka protocol.
macro_rules! kafka_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal, $kafka:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const VALUES: &'static [$name] = &[$($name::$variant,)*];

            /// Kafka's name for it (the Java enum constant; the SASL name of a mechanism).
            pub fn kafka_name(self) -> &'static str {
                match self {
                    $($name::$variant => $kafka,)*
                }
            }

            /// The code in Kafka's protocol (CreateAcls, DescribeAcls, ...).
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            pub fn from_code(code: i8) -> Option<$name> {
                Self::VALUES.iter().copied().find(|v| v.code() == code)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.kafka_name())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<$name, UnknownName> {
                let wanted = normalized(s);
                Self::VALUES
                    .iter()
                    .copied()
                    .find(|v| normalized(v.kafka_name()) == wanted)
                    .ok_or_else(|| unknown($kind, s, Self::VALUES.iter().map(|v| v.kafka_name())))
            }
        }
    };
}

fn unknown<'a>(
    kind: &'static str,
    value: &str,
    names: impl Iterator<Item = &'a str>,
) -> UnknownName {
    UnknownName {
        kind,
        value: value.to_string(),
        expected: names.collect::<Vec<_>>().join(", "),
    }
}

kafka_enum! {
    /// The SASL mechanisms a SCRAM credential is stored for.
    ScramMechanism, "SCRAM mechanism" {
        Sha256 = 1, "SCRAM-SHA-256";
        Sha512 = 2, "SCRAM-SHA-512";
    }
}

impl ScramMechanism {
    /// Kafka's bounds on the PBKDF2 iteration count (`AlterUserScramCredentials`).
    pub const MIN_ITERATIONS: u32 = 4096;
    pub const MAX_ITERATIONS: u32 = 16384;

    /// The SASL mechanism name, as clients send it in SaslHandshake.
    pub fn name(self) -> &'static str {
        self.kafka_name()
    }

    /// Length of the hash, and so of the stored and server keys, in bytes.
    pub fn key_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }
}

kafka_enum! {
    /// The kinds of resource an ACL protects that a proxy in front of Kafka can see.
    ResourceType, "resource type" {
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        Cluster = 4, "CLUSTER";
    }
}

kafka_enum! {
    /// How an ACL's resource name is compared with a resource's name.
    PatternType, "pattern type" {
        /// Equal names, or the ACL's name is `*`.
        Literal = 3, "LITERAL";
        /// The resource's name starts with the ACL's name.
        Prefixed = 4, "PREFIXED";
    }
}

kafka_enum! {
    /// What a client asks to do to a resource.
    AclOperation, "operation" {
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
    }
}

kafka_enum! {
    /// Whether a binding grants or refuses.
    AclPermission, "permission" {
        Allow = 3, "ALLOW";
        Deny = 2, "DENY";
    }
}

/// RFC 5802 verifiers of one user's password for one mechanism.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// The keys allow an offline guess at the password, so they stay out of logs.
impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// What Kafka checks before storing a credential, plus key lengths that fit the
    /// mechanism (a mismatch means the node derived them with the wrong hash).
    pub fn validate(&self, mechanism: ScramMechanism) -> Result<(), Invalid> {
        let range = ScramMechanism::MIN_ITERATIONS..=ScramMechanism::MAX_ITERATIONS;
        if !range.contains(&self.iterations) {
            return Err(Invalid("SCRAM iterations must be between 4096 and 16384"));
        }
        if self.salt.is_empty() {
            return Err(Invalid("SCRAM salt must not be empty"));
        }
        let len = mechanism.key_len();
        if self.stored_key.len() != len || self.server_key.len() != len {
            return Err(Invalid(
                "SCRAM keys do not have the mechanism's hash length",
            ));
        }
        Ok(())
    }
}

/// One ACL, as `kafka-acls --add` creates it. Fields are ordered resource first, so a
/// `BTreeSet` keeps each resource type's bindings together (and lists them by resource).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    /// A resource name, a prefix of names, or `*` (literal) for every resource.
    pub name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. "User:alice", or "User:*" for everyone.
    pub principal: String,
    /// A client IP address as text, or `*` for any host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} from {} on {}:{}:{}",
            self.principal,
            self.permission,
            self.operation,
            self.host,
            self.resource_type,
            self.pattern_type,
            self.name
        )
    }
}

impl AclBinding {
    /// What Kafka refuses when creating an ACL (an empty name, a principal that is not
    /// `Type:name`), and an empty host, which would match no client.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.name.is_empty() {
            return Err(Invalid("ACL resource name must not be empty"));
        }
        if self.host.is_empty() {
            return Err(Invalid("ACL host must not be empty (use * for any host)"));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
            _ => Err(Invalid("ACL principal must look like User:name")),
        }
    }

    /// Whether this binding is about the resource `name` (of its own resource type).
    pub fn matches_resource(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.name == name || self.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(self.name.as_str()),
        }
    }

    /// Whether this binding applies to a client authenticated as `principal` at `host`.
    pub fn matches_client(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && (self.host == host || self.host == WILDCARD)
    }

    /// Whether this is an ALLOW that permits `operation`. Kafka lets an ALLOW of an
    /// operation that needs to see a resource also let one describe it.
    fn allows(&self, operation: AclOperation) -> bool {
        use AclOperation::*;
        self.permission == AclPermission::Allow
            && match (self.operation, operation) {
                (All, _) => true,
                (granted, wanted) if granted == wanted => true,
                (Read | Write | Delete | Alter, Describe) => true,
                (AlterConfigs, DescribeConfigs) => true,
                _ => false,
            }
    }

    /// Whether this is a DENY that forbids `operation`. A DENY implies nothing: denying
    /// READ does not deny DESCRIBE.
    fn denies(&self, operation: AclOperation) -> bool {
        self.permission == AclPermission::Deny
            && (self.operation == operation || self.operation == AclOperation::All)
    }

    /// The same operation or ALL; no implied operations (as Kafka's
    /// `authorizeByResourceType`).
    fn names(&self, operation: AclOperation) -> bool {
        self.operation == operation || self.operation == AclOperation::All
    }

    fn is_wildcard(&self) -> bool {
        self.pattern_type == PatternType::Literal && self.name == WILDCARD
    }
}

/// Selects bindings as the filters of `kafka-acls --list` and `--remove` do; `None`
/// matches anything, a value matches only an equal one (no wildcard expansion: a filter
/// with name "*" selects the bindings whose name is "*").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    pub pattern_type: Option<PatternType>,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission: Option<AclPermission>,
}

fn either<T: PartialEq + ?Sized>(wanted: Option<&T>, actual: &T) -> bool {
    wanted.is_none_or(|w| w == actual)
}

impl AclFilter {
    pub fn matches(&self, b: &AclBinding) -> bool {
        either(self.resource_type.as_ref(), &b.resource_type)
            && either(self.name.as_deref(), b.name.as_str())
            && either(self.pattern_type.as_ref(), &b.pattern_type)
            && either(self.principal.as_deref(), b.principal.as_str())
            && either(self.host.as_deref(), b.host.as_str())
            && either(self.operation.as_ref(), &b.operation)
            && either(self.permission.as_ref(), &b.permission)
    }
}

/// The outcome of an ACL check. `NoAclFound` is not a verdict: the node maps it with its
/// own setting, as Kafka does with `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    Allowed,
    Denied,
    /// No binding names the resource at all, for any principal or operation.
    NoAclFound,
}

/// Who may use the admin API. `Admin` may do everything `Read` may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TokenScope {
    /// Reading the admin API.
    Read,
    /// Reading and changing.
    Admin,
}

impl TokenScope {
    /// Whether a token of this scope may do what needs `needed`.
    pub fn covers(self, needed: TokenScope) -> bool {
        self >= needed
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Admin => "admin",
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TokenScope {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<TokenScope, UnknownName> {
        let all = [TokenScope::Read, TokenScope::Admin];
        all.into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| unknown("token scope", s, all.iter().map(|v| v.name())))
    }
}

/// A bearer token of the admin API, known only by the SHA-256 of its text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    pub scope: TokenScope,
    pub sha256: [u8; 32],
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminToken")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Compares every byte whatever the first difference, so the time taken does not tell
/// how much of a guessed hash was right.
fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Applying the security commands; each is idempotent, so a command applied again after
/// a crash (or proposed twice by a retrying client) changes nothing more.
impl ControlState {
    pub(crate) fn put_scram_credential(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
        credential: &ScramCredential,
    ) -> CommandResult {
        self.users
            .entry(user.to_string())
            .or_default()
            .insert(mechanism, credential.clone());
        CommandResult::Ok
    }

    pub(crate) fn delete_scram_credential(
        &mut self,
        user: &str,
        mechanism: Option<ScramMechanism>,
    ) -> CommandResult {
        let Some(credentials) = self.users.get_mut(user) else {
            return CommandResult::Ok;
        };
        match mechanism {
            Some(m) => {
                credentials.remove(&m);
            }
            None => credentials.clear(),
        }
        if credentials.is_empty() {
            self.users.remove(user);
        }
        CommandResult::Ok
    }

    pub(crate) fn add_acls(&mut self, bindings: &[AclBinding]) -> CommandResult {
        self.acls.extend(bindings.iter().cloned());
        CommandResult::Ok
    }

    pub(crate) fn remove_acls(&mut self, bindings: &[AclBinding]) -> CommandResult {
        for binding in bindings {
            self.acls.remove(binding);
        }
        CommandResult::Ok
    }

    pub(crate) fn put_token(&mut self, name: &str, token: &AdminToken) -> CommandResult {
        self.tokens.insert(name.to_string(), token.clone());
        CommandResult::Ok
    }

    pub(crate) fn delete_token(&mut self, name: &str) -> CommandResult {
        self.tokens.remove(name);
        CommandResult::Ok
    }
}

/// Queries for the node.
impl ControlState {
    /// Whether the state holds any security data; only a fleet at feature level 2 or
    /// higher can.
    pub fn has_security_data(&self) -> bool {
        !self.users.is_empty() || !self.acls.is_empty() || !self.tokens.is_empty()
    }

    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredential> {
        self.users.get(user)?.get(&mechanism)
    }

    /// The bindings of one resource type, found by range since they sort together.
    fn acls_of(&self, resource_type: ResourceType) -> impl Iterator<Item = &AclBinding> {
        let first = AclBinding {
            resource_type,
            name: String::new(),
            pattern_type: PatternType::Literal,
            principal: String::new(),
            host: String::new(),
            operation: AclOperation::All,
            permission: AclPermission::Allow,
        };
        self.acls
            .range(first..)
            .take_while(move |b| b.resource_type == resource_type)
    }

    /// Kafka's ACL check (`StandardAuthorizer`, without super users, which are the
    /// node's configuration): a matching DENY wins, then a matching ALLOW allows, and a
    /// resource that no binding names at all is `NoAclFound` rather than `Denied`.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> Decision {
        let mut named = false;
        let mut allowed = false;
        for b in self.acls_of(resource_type) {
            if !b.matches_resource(name) {
                continue;
            }
            named = true;
            if !b.matches_client(principal, host) {
                continue;
            }
            if b.denies(operation) {
                return Decision::Denied;
            }
            allowed |= b.allows(operation);
        }
        match (allowed, named) {
            (true, _) => Decision::Allowed,
            (false, true) => Decision::Denied,
            (false, false) => Decision::NoAclFound,
        }
    }

    /// Whether `operation` is allowed on at least one resource of `resource_type`: Kafka's
    /// `Authorizer.authorizeByResourceType`, used for InitProducerId without a
    /// transactional id (WRITE on any topic allows idempotent produce).
    ///
    /// As Kafka's, it looks at bindings of exactly `operation` or ALL (no implied
    /// operations): a DENY on literal `*` refuses; an ALLOW on literal `*` allows;
    /// otherwise some other ALLOW must escape every DENY: a literal one must have no
    /// literal DENY of the same name and no prefixed DENY that is a prefix of its name,
    /// a prefixed one no prefixed DENY that is a prefix of its prefix. For an operation
    /// no other implies, that is exactly "`authorize` allows some resource name of the
    /// type" (raft/tests/security_props.rs checks it).
    ///
    /// Simplified: Kafka first authorizes one made-up resource name, which lets super
    /// users through and, with `allow.everyone.if.no.acl.found`, allows when no binding
    /// names that name. Both are the node's configuration, so the node decides them
    /// before calling this. A prefixed DENY of the empty name counts as a prefix of
    /// everything (Kafka cannot store an empty name).
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        let relevant: Vec<&AclBinding> = self
            .acls_of(resource_type)
            .filter(|b| b.matches_client(principal, host) && b.names(operation))
            .collect();
        let (denies, allows): (Vec<&AclBinding>, Vec<&AclBinding>) = relevant
            .into_iter()
            .partition(|b| b.permission == AclPermission::Deny);
        if denies.iter().any(|d| d.is_wildcard()) {
            return false;
        }
        allows
            .iter()
            .any(|a| a.is_wildcard() || !denies.iter().any(|d| dominates(d, a)))
    }

    /// The bindings `filter` selects, in set order (by resource).
    pub fn acls_matching(&self, filter: &AclFilter) -> Vec<&AclBinding> {
        match filter.resource_type {
            Some(t) => self.acls_of(t).filter(|b| filter.matches(b)).collect(),
            None => self.acls.iter().filter(|b| filter.matches(b)).collect(),
        }
    }

    /// The admin token whose hash is `sha256`, with its name.
    pub fn find_token(&self, sha256: &[u8; 32]) -> Option<(&str, &AdminToken)> {
        let mut found = None;
        for (name, token) in &self.tokens {
            if same_hash(&token.sha256, sha256) && found.is_none() {
                found = Some((name.as_str(), token));
            }
        }
        found
    }
}

/// Whether DENY `deny` covers every resource ALLOW `allow` could grant (both already
/// known to match the client and operation).
fn dominates(deny: &AclBinding, allow: &AclBinding) -> bool {
    match deny.pattern_type {
        PatternType::Prefixed => allow.name.starts_with(deny.name.as_str()),
        PatternType::Literal => {
            allow.pattern_type == PatternType::Literal && allow.name == deny.name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AclOperation::*;
    use AclPermission::*;
    use PatternType::*;
    use ResourceType::*;

    fn acl(principal: &str, host: &str, operation: AclOperation, permission: AclPermission) -> Acl {
        Acl(AclBinding {
            resource_type: Topic,
            name: "orders".into(),
            pattern_type: Literal,
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        })
    }

    /// Builder for one binding, topic `orders` literal unless told otherwise.
    struct Acl(AclBinding);

    impl Acl {
        fn on(mut self, resource_type: ResourceType, pattern_type: PatternType, name: &str) -> Acl {
            self.0.resource_type = resource_type;
            self.0.pattern_type = pattern_type;
            self.0.name = name.into();
            self
        }
    }

    fn alice(operation: AclOperation, permission: AclPermission) -> Acl {
        acl("User:alice", "*", operation, permission)
    }

    fn state(acls: Vec<Acl>) -> ControlState {
        ControlState {
            acls: acls.into_iter().map(|a| a.0).collect(),
            ..ControlState::default()
        }
    }

    /// alice at 10.0.0.1 asks for `operation` on `resource_type` `name`.
    fn ask(
        s: &ControlState,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> Decision {
        s.authorize("User:alice", "10.0.0.1", operation, resource_type, name)
    }

    #[test]
    fn nothing_named_is_no_acl_found() {
        let s = state(vec![]);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::NoAclFound);
        let s = state(vec![alice(Read, Allow)]);
        assert_eq!(ask(&s, Read, Topic, "payments"), Decision::NoAclFound);
        assert_eq!(ask(&s, Read, Group, "orders"), Decision::NoAclFound);
        assert_eq!(ask(&s, Read, Topic, "order"), Decision::NoAclFound);
        assert_eq!(ask(&s, Read, Topic, "orders-2"), Decision::NoAclFound);
    }

    #[test]
    fn a_literal_allow_allows_its_own_operation_only() {
        let s = state(vec![alice(Read, Allow)]);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::Allowed);
        assert_eq!(ask(&s, Write, Topic, "orders"), Decision::Denied);
        let bob = s.authorize("User:bob", "10.0.0.1", Read, Topic, "orders");
        assert_eq!(
            bob,
            Decision::Denied,
            "named for someone else is Denied, not NoAclFound"
        );
    }

    #[test]
    fn a_prefixed_binding_matches_names_that_start_with_it() {
        let s = state(vec![alice(Read, Allow).on(Topic, Prefixed, "ord")]);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::Allowed);
        assert_eq!(ask(&s, Read, Topic, "ord"), Decision::Allowed);
        assert_eq!(ask(&s, Read, Topic, "or"), Decision::NoAclFound);
        assert_eq!(ask(&s, Read, Topic, "payments"), Decision::NoAclFound);
    }

    #[test]
    fn only_a_literal_star_matches_every_name() {
        let s = state(vec![alice(Read, Allow).on(Topic, Literal, "*")]);
        assert_eq!(ask(&s, Read, Topic, "anything"), Decision::Allowed);
        assert_eq!(ask(&s, Read, Group, "anything"), Decision::NoAclFound);
        let s = state(vec![alice(Read, Allow).on(Topic, Prefixed, "*")]);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::NoAclFound);
        assert_eq!(ask(&s, Read, Topic, "*x"), Decision::Allowed);
    }

    #[test]
    fn wildcard_principal_and_host() {
        let s = state(vec![acl("User:*", "*", Read, Allow)]);
        assert_eq!(
            s.authorize("User:bob", "10.9.9.9", Read, Topic, "orders"),
            Decision::Allowed
        );
        let s = state(vec![acl("User:alice", "10.0.0.1", Read, Allow)]);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::Allowed);
        let elsewhere = s.authorize("User:alice", "10.0.0.2", Read, Topic, "orders");
        assert_eq!(elsewhere, Decision::Denied);
    }

    #[test]
    fn deny_wins_over_allow() {
        let s = state(vec![
            alice(All, Allow).on(Topic, Literal, "*"),
            alice(Write, Deny),
        ]);
        assert_eq!(ask(&s, Write, Topic, "orders"), Decision::Denied);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::Allowed);
        assert_eq!(ask(&s, Write, Topic, "payments"), Decision::Allowed);

        let everyone_denied = state(vec![alice(Read, Allow), acl("User:*", "*", Read, Deny)]);
        assert_eq!(
            ask(&everyone_denied, Read, Topic, "orders"),
            Decision::Denied
        );
        let prefix_denied = state(vec![
            alice(Read, Allow),
            alice(All, Deny).on(Topic, Prefixed, "o"),
        ]);
        assert_eq!(ask(&prefix_denied, Read, Topic, "orders"), Decision::Denied);
    }

    #[test]
    fn all_allows_and_denies_every_operation() {
        let s = state(vec![alice(All, Allow).on(Cluster, Literal, CLUSTER_NAME)]);
        for &op in AclOperation::VALUES {
            assert_eq!(
                ask(&s, op, Cluster, CLUSTER_NAME),
                Decision::Allowed,
                "{op}"
            );
        }
        let s = state(vec![alice(Read, Allow), alice(All, Deny)]);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::Denied);
    }

    #[test]
    fn describe_is_implied_by_an_allow_of_read_write_delete_or_alter() {
        for (granted, implied) in [
            (Read, true),
            (Write, true),
            (Delete, true),
            (Alter, true),
            (Describe, true),
            (Create, false),
            (AlterConfigs, false),
            (IdempotentWrite, false),
        ] {
            let s = state(vec![alice(granted, Allow)]);
            let want = if implied {
                Decision::Allowed
            } else {
                Decision::Denied
            };
            assert_eq!(ask(&s, Describe, Topic, "orders"), want, "{granted}");
        }
        let s = state(vec![alice(Describe, Allow)]);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::Denied);
    }

    #[test]
    fn describe_configs_is_implied_by_an_allow_of_alter_configs() {
        for (granted, implied) in [
            (AlterConfigs, true),
            (DescribeConfigs, true),
            (Alter, false),
            (Read, false),
        ] {
            let s = state(vec![alice(granted, Allow)]);
            let want = if implied {
                Decision::Allowed
            } else {
                Decision::Denied
            };
            assert_eq!(ask(&s, DescribeConfigs, Topic, "orders"), want, "{granted}");
        }
    }

    #[test]
    fn a_deny_implies_nothing() {
        let s = state(vec![alice(All, Allow), alice(Read, Deny)]);
        assert_eq!(ask(&s, Read, Topic, "orders"), Decision::Denied);
        assert_eq!(ask(&s, Describe, Topic, "orders"), Decision::Allowed);
        let s = state(vec![alice(All, Allow), alice(AlterConfigs, Deny)]);
        assert_eq!(ask(&s, DescribeConfigs, Topic, "orders"), Decision::Allowed);
    }

    fn any(s: &ControlState, operation: AclOperation) -> bool {
        s.authorize_any("User:alice", "10.0.0.1", operation, Topic)
    }

    #[test]
    fn authorize_any_needs_an_allow_of_the_type_and_operation() {
        assert!(!any(&state(vec![]), Write));
        let s = state(vec![alice(Write, Allow).on(Topic, Literal, "a")]);
        assert!(any(&s, Write));
        assert!(!any(&s, Read));
        assert!(!s.authorize_any("User:alice", "10.0.0.1", Write, Group));
        assert!(any(&state(vec![alice(All, Allow)]), IdempotentWrite));
        assert!(
            !any(&state(vec![alice(Read, Allow)]), Describe),
            "no implied operations"
        );
        assert!(any(&state(vec![acl("User:*", "*", Write, Allow)]), Write));
        assert!(!any(
            &state(vec![acl("User:bob", "*", Write, Allow)]),
            Write
        ));
        assert!(!any(
            &state(vec![acl("User:alice", "10.0.0.2", Write, Allow)]),
            Write
        ));
    }

    #[test]
    fn authorize_any_looks_for_an_allow_no_deny_covers() {
        let allow_a = || alice(Write, Allow).on(Topic, Literal, "a");
        let allow_prefix_a = || alice(Write, Allow).on(Topic, Prefixed, "a");
        let deny = |pattern, name| alice(Write, Deny).on(Topic, pattern, name);
        assert!(!any(&state(vec![allow_a(), deny(Literal, "a")]), Write));
        assert!(!any(&state(vec![allow_a(), deny(Prefixed, "a")]), Write));
        assert!(any(&state(vec![allow_a(), deny(Prefixed, "ab")]), Write));
        assert!(any(
            &state(vec![allow_prefix_a(), deny(Literal, "a")]),
            Write
        ));
        assert!(any(
            &state(vec![allow_prefix_a(), deny(Prefixed, "ab")]),
            Write
        ));
        assert!(!any(
            &state(vec![allow_prefix_a(), deny(Prefixed, "")]),
            Write
        ));
        assert!(!any(&state(vec![allow_a(), deny(Literal, "*")]), Write));
        let wildcard = || alice(Write, Allow).on(Topic, Literal, "*");
        assert!(any(&state(vec![wildcard(), deny(Literal, "x")]), Write));
        assert!(any(&state(vec![wildcard(), deny(Prefixed, "")]), Write));
        assert!(!any(&state(vec![wildcard(), deny(Literal, "*")]), Write));
        let deny_read = alice(Read, Deny).on(Topic, Literal, "*");
        assert!(any(&state(vec![allow_a(), deny_read]), Write));
    }

    #[test]
    fn filters_select_by_equal_fields() {
        let s = state(vec![
            alice(Read, Allow),
            alice(All, Allow).on(Topic, Literal, "*"),
            acl("User:bob", "*", Write, Deny).on(Group, Prefixed, "g"),
        ]);
        assert_eq!(s.acls_matching(&AclFilter::default()).len(), 3);
        let of = |f: AclFilter| s.acls_matching(&f).len();
        let alice_only = AclFilter {
            principal: Some("User:alice".into()),
            ..AclFilter::default()
        };
        assert_eq!(of(alice_only), 2);
        let named_star = AclFilter {
            name: Some("*".into()),
            ..AclFilter::default()
        };
        assert_eq!(of(named_star), 1);
        let read = AclFilter {
            operation: Some(Read),
            ..AclFilter::default()
        };
        assert_eq!(of(read), 1, "ALL bindings are not READ bindings");
        let group_deny = AclFilter {
            resource_type: Some(Group),
            permission: Some(Deny),
            pattern_type: Some(Prefixed),
            ..AclFilter::default()
        };
        assert_eq!(of(group_deny), 1);
    }

    #[test]
    fn each_resource_type_finds_all_its_bindings() {
        let mut acls = Vec::new();
        for &t in ResourceType::VALUES {
            for name in ["", "*", "a", "\u{10ffff}"] {
                for &p in PatternType::VALUES {
                    acls.push(acl("", "", All, Allow).on(t, p, name));
                    acls.push(acl("User:\u{10ffff}", "~", IdempotentWrite, Deny).on(t, p, name));
                }
            }
        }
        let s = state(acls);
        for &t in ResourceType::VALUES {
            let by_type = AclFilter {
                resource_type: Some(t),
                ..AclFilter::default()
            };
            let scanned = s.acls.iter().filter(|b| b.resource_type == t).count();
            assert_eq!(s.acls_matching(&by_type).len(), scanned);
            assert_eq!(scanned, 16);
        }
    }

    #[test]
    fn names_parse_in_every_spelling_kafka_tools_use() {
        let tid = ResourceType::TransactionalId;
        for spelling in [
            "transactional-id",
            "TransactionalId",
            "TRANSACTIONAL_ID",
            "transactionalid",
        ] {
            assert_eq!(spelling.parse::<ResourceType>(), Ok(tid), "{spelling}");
        }
        for spelling in ["IdempotentWrite", "idempotent_write", "IDEMPOTENT-WRITE"] {
            assert_eq!(
                spelling.parse::<AclOperation>(),
                Ok(IdempotentWrite),
                "{spelling}"
            );
        }
        assert_eq!("Read".parse::<AclOperation>(), Ok(Read));
        assert_eq!(
            "describeConfigs".parse::<AclOperation>(),
            Ok(DescribeConfigs)
        );
        assert_eq!("prefixed".parse::<PatternType>(), Ok(Prefixed));
        assert_eq!("Allow".parse::<AclPermission>(), Ok(Allow));
        assert_eq!(
            "scram-sha-512".parse::<ScramMechanism>(),
            Ok(ScramMechanism::Sha512)
        );
        assert_eq!(
            "SCRAM_SHA_256".parse::<ScramMechanism>(),
            Ok(ScramMechanism::Sha256)
        );
        assert_eq!(" Admin ".parse::<TokenScope>(), Ok(TokenScope::Admin));
        let err = "sha1".parse::<ScramMechanism>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown SCRAM mechanism "sha1"; expected one of SCRAM-SHA-256, SCRAM-SHA-512"#
        );
        assert!("topics".parse::<ResourceType>().is_err());
        assert!("".parse::<AclOperation>().is_err());
    }

    #[test]
    fn names_display_as_kafka_prints_them() {
        assert_eq!(TransactionalId.to_string(), "TRANSACTIONAL_ID");
        assert_eq!(ClusterAction.to_string(), "CLUSTER_ACTION");
        assert_eq!(ScramMechanism::Sha256.name(), "SCRAM-SHA-256");
        assert_eq!(ScramMechanism::Sha512.to_string(), "SCRAM-SHA-512");
        for &v in AclOperation::VALUES {
            assert_eq!(v.to_string().parse::<AclOperation>(), Ok(v));
        }
    }

    #[test]
    fn protocol_codes_are_kafkas() {
        let types: Vec<i8> = [Topic, Group, Cluster, TransactionalId]
            .map(|t| t.code())
            .into();
        assert_eq!(types, [2, 3, 4, 5]);
        assert_eq!([Literal.code(), Prefixed.code()], [3, 4]);
        let ops: Vec<i8> = AclOperation::VALUES.iter().map(|o| o.code()).collect();
        assert_eq!(ops, (2..=12).collect::<Vec<i8>>());
        assert_eq!([Deny.code(), Allow.code()], [2, 3]);
        assert_eq!(ResourceType::from_code(5), Some(TransactionalId));
        assert_eq!(AclOperation::from_code(12), Some(IdempotentWrite));
        assert_eq!(
            AclOperation::from_code(1),
            None,
            "ANY is a filter, not an operation"
        );
        assert_eq!(PatternType::from_code(0), None);
        assert_eq!(AclPermission::from_code(-1), None);
    }

    fn credential(mechanism: ScramMechanism) -> ScramCredential {
        ScramCredential {
            salt: vec![1; 16],
            iterations: 4096,
            stored_key: vec![0xab; mechanism.key_len()],
            server_key: vec![0xcd; mechanism.key_len()],
        }
    }

    #[test]
    fn credentials_are_checked_as_kafka_does() {
        let ok = credential(ScramMechanism::Sha512);
        assert_eq!(ok.validate(ScramMechanism::Sha512), Ok(()));
        assert!(ok.validate(ScramMechanism::Sha256).is_err());
        let few = ScramCredential {
            iterations: 4095,
            ..ok.clone()
        };
        assert!(few.validate(ScramMechanism::Sha512).is_err());
        let unsalted = ScramCredential { salt: vec![], ..ok };
        assert!(unsalted.validate(ScramMechanism::Sha512).is_err());
    }

    #[test]
    fn bindings_are_checked_as_kafka_does() {
        assert_eq!(alice(Read, Allow).0.validate(), Ok(()));
        assert!(acl("alice", "*", Read, Allow).0.validate().is_err());
        assert!(acl("User:", "*", Read, Allow).0.validate().is_err());
        assert!(acl("User:alice", "", Read, Allow).0.validate().is_err());
        assert!(alice(Read, Allow)
            .on(Topic, Literal, "")
            .0
            .validate()
            .is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let debug = format!("{:?}", credential(ScramMechanism::Sha256));
        assert!(!debug.contains("171") && !debug.contains("205"), "{debug}");
        let token = AdminToken {
            scope: TokenScope::Read,
            sha256: [0x5a; 32],
        };
        assert!(!format!("{token:?}").contains("90"));
    }

    #[test]
    fn tokens_are_found_by_hash() {
        let mut s = ControlState::default();
        let token = |b, scope| AdminToken {
            scope,
            sha256: [b; 32],
        };
        s.put_token("ops", &token(1, TokenScope::Admin));
        s.put_token("grafana", &token(2, TokenScope::Read));
        let (name, found) = s.find_token(&[2; 32]).unwrap();
        assert_eq!((name, found.scope), ("grafana", TokenScope::Read));
        assert!(s.find_token(&[3; 32]).is_none());
        assert!(TokenScope::Admin.covers(TokenScope::Read));
        assert!(!TokenScope::Read.covers(TokenScope::Admin));
    }

    #[test]
    fn deleting_the_last_mechanism_removes_the_user() {
        let mut s = ControlState::default();
        s.put_scram_credential(
            "alice",
            ScramMechanism::Sha256,
            &credential(ScramMechanism::Sha256),
        );
        s.put_scram_credential(
            "alice",
            ScramMechanism::Sha512,
            &credential(ScramMechanism::Sha512),
        );
        s.delete_scram_credential("alice", Some(ScramMechanism::Sha256));
        assert!(s
            .scram_credential("alice", ScramMechanism::Sha256)
            .is_none());
        assert!(s
            .scram_credential("alice", ScramMechanism::Sha512)
            .is_some());
        s.delete_scram_credential("alice", Some(ScramMechanism::Sha512));
        assert!(s.users.is_empty());
        s.put_scram_credential(
            "bob",
            ScramMechanism::Sha256,
            &credential(ScramMechanism::Sha256),
        );
        s.put_scram_credential(
            "bob",
            ScramMechanism::Sha512,
            &credential(ScramMechanism::Sha512),
        );
        s.delete_scram_credential("bob", None);
        assert!(s.users.is_empty());
        assert!(!s.has_security_data());
    }
}
