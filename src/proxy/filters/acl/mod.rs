//! ACLs enforced by the fleet, with the meaning of Kafka's `StandardAuthorizer`: the
//! bindings are in the committed control state (`proxyctl acl`), the principal is the
//! connection's (SASL or client certificate; `User:ANONYMOUS` without either), super users
//! pass, a DENY wins, and a resource no binding names is refused unless
//! `acl.allow_if_no_acl`.
//!
//! A refused request is answered through the shared error builder with the authorization
//! error of the resource that failed, in the request's turn, and never reaches the broker.
//! Metadata and ListGroups answers are trimmed to what the principal may describe (and a
//! topic the principal may not create is not auto-created). Every decision is counted.
//!
//! What each API needs is in [`needs`]; how Produce and Fetch are split topic by topic in
//! [`split`], which shares its take-out and merge-back with breakers (`partial`).

mod needs;
mod split;

use std::sync::Arc;

use flotilla_config::AclConfig;
use flotilla_raft::security::{AclOperation, Decision, ResourceType, CLUSTER_NAME};
use flotilla_raft::ControlState;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::ResponseError;

use self::needs::{plan, Check, Plan};
use crate::metrics::Metrics;
use crate::protocol::error_response::error_response;
use crate::proxy::filter::{Env, Filter, Verdict};
use crate::proxy::filters::topic_names::TopicNames;
use crate::proxy::message::{Request, Response};

/// Kafka's principal for a client that has not authenticated.
const ANONYMOUS: &str = "User:ANONYMOUS";

pub struct Authorization {
    settings: AclConfig,
    names: Arc<TopicNames>,
    metrics: Arc<Metrics>,
}

/// One client's view of the ACLs, for one request.
struct Authorizer<'a> {
    settings: &'a AclConfig,
    metrics: &'a Metrics,
    control: &'a ControlState,
    principal: &'a str,
    host: String,
}

impl Authorizer<'_> {
    fn is_super_user(&self) -> bool {
        self.settings
            .super_users
            .iter()
            .any(|s| s == self.principal)
    }

    fn allows(&self, check: &Check) -> bool {
        let decision = self.control.authorize(
            self.principal,
            &self.host,
            check.operation,
            check.resource_type,
            &check.name,
        );
        let allowed = match decision {
            Decision::Allowed => true,
            Decision::Denied => false,
            Decision::NoAclFound => self.settings.allow_if_no_acl,
        };
        let label = if allowed { "allowed" } else { "denied" };
        let resource = format!("{}", check.resource_type);
        self.metrics
            .security
            .acl_decisions
            .with_label_values(&[resource.as_str(), label])
            .inc();
        allowed
    }

    /// The first check that fails, if any.
    fn first_denied<'c>(&self, checks: &'c [Check]) -> Option<&'c Check> {
        checks.iter().find(|c| !self.allows(c))
    }

    fn allows_idempotent_producer(&self) -> bool {
        let cluster = Check {
            resource_type: ResourceType::Cluster,
            name: CLUSTER_NAME.to_string(),
            operation: AclOperation::IdempotentWrite,
        };
        self.allows(&cluster)
            || self.control.authorize_any(
                self.principal,
                &self.host,
                AclOperation::Write,
                ResourceType::Topic,
            )
    }
}

impl Authorization {
    /// ACLs as `settings` say, naming topics by id through `names` (shared with every
    /// filter that needs names for ids).
    pub fn new(settings: &AclConfig, metrics: &Arc<Metrics>, names: &Arc<TopicNames>) -> Self {
        Authorization {
            settings: settings.clone(),
            names: names.clone(),
            metrics: metrics.clone(),
        }
    }

    fn authorizer<'a>(&'a self, env: &'a Env) -> Authorizer<'a> {
        Authorizer {
            settings: &self.settings,
            metrics: &self.metrics,
            control: env.control,
            principal: env.session.principal.as_deref().unwrap_or(ANONYMOUS),
            host: env.session.peer.ip().to_string(),
        }
    }
}

impl Filter for Authorization {
    fn name(&self) -> &'static str {
        "acl"
    }

    fn wants_request(&self, api_key: ApiKey, _version: i16) -> bool {
        !matches!(
            api_key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        )
    }

    fn wants_response(&self, api_key: ApiKey, _version: i16) -> bool {
        matches!(
            api_key,
            ApiKey::Metadata | ApiKey::ListGroups | ApiKey::Produce | ApiKey::Fetch
        )
    }

    fn on_request(&self, request: &mut Request, env: &Env) -> Verdict {
        let who = self.authorizer(env);
        if who.is_super_user() {
            return Verdict::Forward;
        }
        let version = request.version();
        let correlation_id = request.correlation_id();
        let plan = match request.body() {
            Ok(body) => plan(body, &self.names),
            Err(e) => {
                return Verdict::Close(format!("cannot read the request to authorize it: {e}"))
            }
        };
        match plan {
            Plan::Free if request.api_key() == ApiKey::Metadata => {
                split::metadata_request(request, &who, env, correlation_id)
            }
            Plan::Free => Verdict::Forward,
            Plan::All(checks) => match who.first_denied(&checks) {
                None => Verdict::Forward,
                Some(check) => refuse(request, version, check.error()),
            },
            Plan::IdempotentProducer if who.allows_idempotent_producer() => Verdict::Forward,
            Plan::IdempotentProducer => {
                refuse(request, version, ResponseError::ClusterAuthorizationFailed)
            }
            Plan::PerTopic(checks, operation) => match who.first_denied(&checks) {
                Some(check) => refuse(request, version, check.error()),
                None => split::per_topic(request, &who, &self.names, operation, env),
            },
        }
    }

    fn on_response(&self, response: &mut Response, env: &Env) -> Result<(), String> {
        let who = self.authorizer(env);
        match response.api_key() {
            ApiKey::Metadata => split::metadata_response(response, &who, &self.names, env),
            ApiKey::ListGroups if !who.is_super_user() => response.edit(|body| match body {
                ResponseKind::ListGroups(body) => {
                    let before = body.groups.len();
                    body.groups.retain(|g| {
                        who.allows(&Check {
                            resource_type: ResourceType::Group,
                            name: g.group_id.0.to_string(),
                            operation: AclOperation::Describe,
                        })
                    });
                    body.groups.len() != before
                }
                _ => false,
            }),
            ApiKey::Produce | ApiKey::Fetch => split::merge_removed(response, env),
            _ => Ok(()),
        }
    }
}

/// Answers the request with `error` on everything it names.
fn refuse(request: &mut Request, version: i16, error: ResponseError) -> Verdict {
    let body: &RequestKind = match request.body() {
        Ok(body) => body,
        Err(e) => return Verdict::Close(format!("cannot read the refused request: {e}")),
    };
    match error_response(body, version, error, 0) {
        Ok(answer) => Verdict::Answer(Box::new(answer)),
        Err(e) => Verdict::Close(format!("refused, and cannot build the answer: {e}")),
    }
}

#[cfg(test)]
mod tests;
