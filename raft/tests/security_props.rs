//! Property tests of the security state: its commands are idempotent, ACL checks agree
//! with a plain reading of Kafka's rules, and `authorize_any` means "some resource of
//! the type is allowed".

mod strategies;

use flotilla_raft::{
    AclBinding, AclOperation, AclPermission, Command, CommandResult, ControlState, Decision,
    PatternType, ResourceType,
};
use proptest::prelude::*;

use strategies::{binding_named, bindings, operation, resource_type, security_command};

fn at_level_2(commands: &[Command]) -> ControlState {
    let mut state = ControlState::default();
    state.apply(&Command::SetFeatureLevel { level: 2 });
    for c in commands {
        assert_eq!(state.apply(c), CommandResult::Ok);
    }
    state
}

fn with_acls(acls: &[AclBinding]) -> ControlState {
    at_level_2(&[Command::AddAcls {
        bindings: acls.to_vec(),
    }])
}

/// Kafka's rules read straight, over every binding: what names the resource, then what
/// applies to the client; a DENY of the operation (or ALL) wins, then an ALLOW of it,
/// of ALL, or of an operation implying it.
fn reference(
    acls: &[AclBinding],
    principal: &str,
    host: &str,
    op: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> Decision {
    use AclOperation::*;
    let names_it = |b: &&AclBinding| {
        b.resource_type == resource_type
            && match b.pattern_type {
                PatternType::Literal => b.name == name || b.name == "*",
                PatternType::Prefixed => name.starts_with(&b.name),
            }
    };
    let on_resource: Vec<&AclBinding> = acls.iter().filter(names_it).collect();
    if on_resource.is_empty() {
        return Decision::NoAclFound;
    }
    let applies = |b: &&&AclBinding| {
        [principal, "User:*"].contains(&b.principal.as_str())
            && [host, "*"].contains(&b.host.as_str())
    };
    let mine: Vec<&&AclBinding> = on_resource.iter().filter(applies).collect();
    let denied = mine
        .iter()
        .any(|b| b.permission == AclPermission::Deny && [op, All].contains(&b.operation));
    let implies = |granted: AclOperation| {
        granted == All
            || granted == op
            || (op == Describe && [Read, Write, Delete, Alter].contains(&granted))
            || (op == DescribeConfigs && granted == AlterConfigs)
    };
    let allowed = mine
        .iter()
        .any(|b| b.permission == AclPermission::Allow && implies(b.operation));
    match (denied, allowed) {
        (true, _) | (false, false) => Decision::Denied,
        (false, true) => Decision::Allowed,
    }
}

/// A client's request: principal, host, operation, resource type and name.
type Request = (String, String, AclOperation, ResourceType, String);

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(vec!["User:alice", "User:bob"]).prop_map(str::to_string),
        prop::sample::select(vec!["10.0.0.1", "10.0.0.2"]).prop_map(str::to_string),
        operation(),
        resource_type(),
        prop::sample::select(vec!["orders", "orders-eu", "or", "payments", "x", "*"])
            .prop_map(str::to_string),
    )
}

/// Either `wanted` or any value: bindings generated this way are about the request
/// often enough that every rule decides some cases.
fn or_any<T: Clone + std::fmt::Debug + 'static>(
    wanted: T,
    any: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![Just(wanted), any].boxed()
}

fn binding_near(r: &Request, names: &'static [&'static str]) -> impl Strategy<Value = AclBinding> {
    let (principal, host, op, resource_type, _) = r.clone();
    (
        binding_named(names),
        or_any(principal, strategies::principal()),
        or_any(host, strategies::host()),
        or_any(op, operation()),
        or_any(resource_type, strategies::resource_type()),
    )
        .prop_map(
            |(b, principal, host, operation, resource_type)| AclBinding {
                principal,
                host,
                operation,
                resource_type,
                ..b
            },
        )
}

fn request_and_acls(
    names: &'static [&'static str],
) -> impl Strategy<Value = (Request, Vec<AclBinding>)> {
    request().prop_flat_map(move |r| {
        let acls = prop::collection::vec(binding_near(&r, names), 0..8);
        (Just(r), acls)
    })
}

/// Names without the empty name (Kafka cannot store it) and without `~`, so a name ending
/// in `~` is one no binding names literally.
const STORABLE: &[&str] = &["*", "o", "or", "orders", "orders-eu", "p", "payments"];

/// Whether no other operation implies `op`, so that `authorize` and `authorize_any` look
/// at the same bindings.
fn unimplied(op: AclOperation) -> bool {
    !matches!(op, AclOperation::Describe | AclOperation::DescribeConfigs)
}

proptest! {
    // Pure functions of small values: cheap enough for many cases.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn every_security_command_is_idempotent(
        before in prop::collection::vec(security_command(), 0..12),
        command in security_command(),
    ) {
        let mut once = at_level_2(&before);
        once.apply(&command);
        let mut twice = once.clone();
        prop_assert_eq!(twice.apply(&command), CommandResult::Ok);
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn the_order_of_bindings_does_not_matter(acls in bindings()) {
        let reversed: Vec<AclBinding> = acls.iter().rev().cloned().collect();
        prop_assert_eq!(with_acls(&acls), with_acls(&reversed));
    }

    #[test]
    fn authorize_follows_kafkas_rules((r, acls) in request_and_acls(strategies::NAMES)) {
        let (principal, host, op, resource_type, name) = r;
        let state = with_acls(&acls);
        prop_assert_eq!(
            state.authorize(&principal, &host, op, resource_type, &name),
            reference(&acls, &principal, &host, op, resource_type, &name)
        );
    }

    #[test]
    fn authorize_any_is_true_when_some_resource_is_allowed((r, acls) in request_and_acls(STORABLE)) {
        let (principal, host, op, resource_type, _) = r;
        prop_assume!(unimplied(op));
        let state = with_acls(&acls);
        // Every resource that matters: each named one, one under each prefix that no
        // binding names, and one no binding names at all.
        let candidates: Vec<String> = STORABLE
            .iter()
            .flat_map(|n| [n.to_string(), format!("{n}~")])
            .chain(["~".to_string()])
            .collect();
        let some_allowed = candidates
            .iter()
            .any(|n| state.authorize(&principal, &host, op, resource_type, n) == Decision::Allowed);
        prop_assert_eq!(state.authorize_any(&principal, &host, op, resource_type), some_allowed);
    }
}
