//! Generators of security data for the property tests, from small pools so that
//! generated bindings collide, overlap and shadow each other often.
#![allow(dead_code)]

use flotilla_raft::{
    AclBinding, AclOperation, AclPermission, AdminToken, Command, PatternType, ResourceType,
    ScramCredential, ScramMechanism, TokenScope,
};
use proptest::prelude::*;

pub const NAMES: &[&str] = &["*", "", "o", "or", "orders", "orders-eu", "p", "payments"];

pub fn principal() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["User:alice", "User:bob", "User:*"]).prop_map(str::to_string)
}

pub fn host() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["*", "10.0.0.1", "10.0.0.2"]).prop_map(str::to_string)
}

pub fn resource_type() -> impl Strategy<Value = ResourceType> {
    prop::sample::select(ResourceType::VALUES)
}

pub fn operation() -> impl Strategy<Value = AclOperation> {
    prop::sample::select(AclOperation::VALUES)
}

pub fn name_from(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(names).prop_map(str::to_string)
}

pub fn binding_named(names: &'static [&'static str]) -> impl Strategy<Value = AclBinding> {
    (
        resource_type(),
        name_from(names),
        prop::sample::select(PatternType::VALUES),
        principal(),
        host(),
        operation(),
        prop::sample::select(AclPermission::VALUES),
    )
        .prop_map(
            |(resource_type, name, pattern_type, principal, host, operation, permission)| {
                AclBinding {
                    resource_type,
                    name,
                    pattern_type,
                    principal,
                    host,
                    operation,
                    permission,
                }
            },
        )
}

pub fn binding() -> impl Strategy<Value = AclBinding> {
    binding_named(NAMES)
}

pub fn bindings() -> impl Strategy<Value = Vec<AclBinding>> {
    prop::collection::vec(binding(), 0..6)
}

fn mechanism() -> impl Strategy<Value = ScramMechanism> {
    prop::sample::select(ScramMechanism::VALUES)
}

fn credential() -> impl Strategy<Value = ScramCredential> {
    (
        prop::collection::vec(any::<u8>(), 1..4),
        4096u32..4100,
        prop::collection::vec(0u8..3, 1..3),
    )
        .prop_map(|(salt, iterations, key)| ScramCredential {
            salt,
            iterations,
            stored_key: key.clone(),
            server_key: key,
        })
}

fn user() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["alice", "bob"]).prop_map(str::to_string)
}

fn token_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["ops", "grafana"]).prop_map(str::to_string)
}

fn token() -> impl Strategy<Value = AdminToken> {
    (
        prop::sample::select(vec![TokenScope::Read, TokenScope::Admin]),
        prop::array::uniform32(0u8..2),
    )
        .prop_map(|(scope, sha256)| AdminToken { scope, sha256 })
}

/// Any of the level-2 commands.
pub fn security_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (user(), mechanism(), credential()).prop_map(|(user, mechanism, credential)| {
            Command::PutScramCredential {
                user,
                mechanism,
                credential,
            }
        }),
        (user(), prop::option::of(mechanism()))
            .prop_map(|(user, mechanism)| Command::DeleteScramCredential { user, mechanism }),
        bindings().prop_map(|bindings| Command::AddAcls { bindings }),
        bindings().prop_map(|bindings| Command::RemoveAcls { bindings }),
        (token_name(), token()).prop_map(|(name, token)| Command::PutToken { name, token }),
        token_name().prop_map(|name| Command::DeleteToken { name }),
    ]
}
