//! `/api/v1/breakers` and `/api/v1/breaker-rules`: topic circuit breakers and the rules
//! that trip them. Input is checked on the node that received it, so a bad pattern or
//! mode is refused with the field named before anything reaches the leader; the leader
//! stamps the opening with its clock (`opened_at_ms`, `until_ms`).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use flotilla_raft::governance::{unix_millis, TopicPattern};
use flotilla_raft::governance::{Breaker, BreakerMode, BreakerOrigin, BreakerRule, RuleMetric};

use super::auth::Caller;
use super::{answer, fleet_at_level, invalid_input, json_bytes};
use crate::api::{
    BreakerClosed, BreakerRuleDeleted, BreakerRuleSummary, BreakerSummary, NewBreaker,
};
use crate::cluster::breakers::{self, origin_label, LEVEL};
use crate::cluster::error::ClusterError;
use crate::cluster::peer_api::Write;
use crate::cluster::writes::on_leader;
use crate::context::Context;

/// Longest reason kept: it travels in every refused client's error message.
const MAX_REASON: usize = 200;

pub fn routes() -> Router<Arc<Context>> {
    Router::new()
        .route("/api/v1/breakers", get(list).post(open))
        .route("/api/v1/breakers/{pattern}", delete(close))
        .route("/api/v1/breaker-rules", get(list_rules).post(put_rule))
        .route("/api/v1/breaker-rules/{name}", delete(delete_rule))
}

async fn list(State(ctx): State<Arc<Context>>) -> Response {
    let now_ms = unix_millis();
    let state = ctx.control.load();
    let breakers: Vec<BreakerSummary> = state
        .breakers
        .values()
        .map(|b| summary_of(b, now_ms))
        .collect();
    answer(Ok(breakers))
}

async fn open(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<NewBreaker>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Json(new) = body.map_err(|e| invalid_input(&e))?;
            breaker_of(&new, 0)?;
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&new)));
            on_leader(fleet, &replay, || async {
                let now_ms = unix_millis();
                let breaker = breaker_of(&new, now_ms)?;
                let summary = summary_of(&breaker, now_ms);
                breakers::open(fleet, breaker).await?;
                Ok(summary)
            })
            .await
        }
        .await,
    )
}

async fn close(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path(pattern): Path<String>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let parsed = pattern_of(&pattern)?;
            let replay = caller.replay(Write::Delete, &uri, None);
            on_leader(fleet, &replay, || async {
                breakers::close(fleet, parsed).await?;
                Ok(BreakerClosed { closed: pattern })
            })
            .await
        }
        .await,
    )
}

async fn list_rules(State(ctx): State<Arc<Context>>) -> Response {
    let state = ctx.control.load();
    let rules: Vec<BreakerRuleSummary> = state.breaker_rules.values().map(rule_summary).collect();
    answer(Ok(rules))
}

async fn put_rule(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    body: Result<Json<BreakerRuleSummary>, JsonRejection>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let Json(new) = body.map_err(|e| invalid_input(&e))?;
            let rule = rule_of(&new)?;
            let replay = caller.replay(Write::Post, &uri, Some(json_bytes(&new)));
            on_leader(fleet, &replay, || async {
                let summary = rule_summary(&rule);
                breakers::put_rule(fleet, rule).await?;
                Ok(summary)
            })
            .await
        }
        .await,
    )
}

async fn delete_rule(
    State(ctx): State<Arc<Context>>,
    Extension(caller): Extension<Caller>,
    OriginalUri(uri): OriginalUri,
    Path(name): Path<String>,
) -> Response {
    answer(
        async {
            let fleet = fleet_at_level(&ctx, LEVEL)?;
            let replay = caller.replay(Write::Delete, &uri, None);
            on_leader(fleet, &replay, || async {
                breakers::delete_rule(fleet, name.clone()).await?;
                Ok(BreakerRuleDeleted { deleted: name })
            })
            .await
        }
        .await,
    )
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> ClusterError {
    ClusterError::Invalid(format!("{field}: {reason}"))
}

fn pattern_of(text: &str) -> Result<TopicPattern, ClusterError> {
    text.parse().map_err(|e| invalid("pattern", e))
}

fn mode_of(text: &Option<String>) -> Result<BreakerMode, ClusterError> {
    match text.as_deref() {
        None | Some("") => Ok(BreakerMode::Hold),
        Some(text) => text.parse().map_err(|e| invalid("mode", e)),
    }
}

/// Neither flag means both.
fn directions(produce: bool, fetch: bool) -> (bool, bool) {
    if produce || fetch {
        (produce, fetch)
    } else {
        (true, true)
    }
}

/// The breaker `new` asks for, opened at `now_ms`, or why it cannot be.
fn breaker_of(new: &NewBreaker, now_ms: u64) -> Result<Breaker, ClusterError> {
    let reason = new.reason.clone().unwrap_or_default();
    if reason.len() > MAX_REASON {
        return Err(invalid("reason", format!("longer than {MAX_REASON} bytes")));
    }
    let until_ms = match new.for_ms {
        Some(0) => return Err(invalid("for", "a breaker must last longer than 0 s")),
        Some(ms) => Some(now_ms.saturating_add(ms)),
        None => None,
    };
    let (produce, fetch) = directions(new.produce, new.fetch);
    Ok(Breaker {
        pattern: pattern_of(&new.pattern)?,
        produce,
        fetch,
        mode: mode_of(&new.mode)?,
        reason,
        origin: BreakerOrigin::Manual,
        opened_at_ms: now_ms,
        until_ms,
    })
}

fn summary_of(b: &Breaker, now_ms: u64) -> BreakerSummary {
    BreakerSummary {
        pattern: b.pattern.to_string(),
        produce: b.produce,
        fetch: b.fetch,
        mode: b.mode.to_string(),
        reason: b.reason.clone(),
        origin: origin_label(&b.origin),
        opened_at_ms: b.opened_at_ms,
        until_ms: b.until_ms,
        in_force: b.is_open_at(now_ms),
    }
}

const BYTES_METRIC: &str = "produce-bytes-per-sec";
const ERRORS_METRIC: &str = "error-per-mille";

fn rule_of(new: &BreakerRuleSummary) -> Result<BreakerRule, ClusterError> {
    if new.name.is_empty() || new.name.len() > 100 {
        return Err(invalid("name", "give a rule name of 1 to 100 bytes"));
    }
    let metric = match new.metric.as_str() {
        BYTES_METRIC => RuleMetric::ProduceBytesPerSecond,
        ERRORS_METRIC => RuleMetric::BrokerErrorsPerMille,
        other => {
            return Err(invalid(
                "metric",
                format!("unknown metric {other:?}; expected {BYTES_METRIC} or {ERRORS_METRIC}"),
            ))
        }
    };
    if new.threshold == 0 {
        return Err(invalid("threshold", "must be above 0"));
    }
    if metric == RuleMetric::BrokerErrorsPerMille && new.threshold >= 1000 {
        return Err(invalid(
            "threshold",
            "an error rate per mille is below 1000",
        ));
    }
    if new.sustain_secs == 0 {
        return Err(invalid("sustain_secs", "must be at least 1"));
    }
    if new.cool_down_secs == 0 {
        return Err(invalid("cool_down_secs", "must be at least 1"));
    }
    let (produce, fetch) = directions(new.produce, new.fetch);
    Ok(BreakerRule {
        name: new.name.clone(),
        pattern: new.topic.parse().map_err(|e| invalid("topic", e))?,
        metric,
        threshold: new.threshold,
        sustain_secs: new.sustain_secs,
        cool_down_secs: new.cool_down_secs,
        mode: mode_of(&new.mode)?,
        produce,
        fetch,
    })
}

fn rule_summary(rule: &BreakerRule) -> BreakerRuleSummary {
    BreakerRuleSummary {
        name: rule.name.clone(),
        topic: rule.pattern.to_string(),
        metric: match rule.metric {
            RuleMetric::ProduceBytesPerSecond => BYTES_METRIC.into(),
            RuleMetric::BrokerErrorsPerMille => ERRORS_METRIC.into(),
        },
        threshold: rule.threshold,
        sustain_secs: rule.sustain_secs,
        cool_down_secs: rule.cool_down_secs,
        mode: Some(rule.mode.to_string()),
        produce: rule.produce,
        fetch: rule.fetch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(pattern: &str, mode: Option<&str>) -> NewBreaker {
        NewBreaker {
            pattern: pattern.into(),
            produce: false,
            fetch: false,
            mode: mode.map(str::to_string),
            reason: None,
            for_ms: Some(30_000),
        }
    }

    #[test]
    fn bad_input_is_refused_with_the_field_named() {
        let star = breaker_of(&new("*", None), 0).unwrap_err().to_string();
        assert!(star.starts_with("pattern:"), "{star}");
        let mode = breaker_of(&new("orders", Some("pause")), 0)
            .unwrap_err()
            .to_string();
        assert!(
            mode.starts_with("mode:") && mode.contains("pause"),
            "{mode}"
        );
    }

    #[test]
    fn a_breaker_defaults_to_hold_on_both_directions_for_its_time() {
        let b = breaker_of(&new("orders.*", None), 1_000).unwrap();
        assert_eq!(b.mode, BreakerMode::Hold);
        assert!(b.produce && b.fetch);
        assert_eq!(b.until_ms, Some(31_000));
        let shown = summary_of(&b, 2_000);
        assert_eq!(shown.pattern, "orders.*");
        assert_eq!(shown.origin, "manual");
        assert!(shown.in_force);
        assert!(!summary_of(&b, 31_000).in_force);
    }

    #[test]
    fn rules_round_trip_and_refuse_nonsense() {
        let summary = BreakerRuleSummary {
            name: "hot".into(),
            topic: "orders*".into(),
            metric: BYTES_METRIC.into(),
            threshold: 1000,
            sustain_secs: 5,
            cool_down_secs: 60,
            mode: Some("reject".into()),
            produce: true,
            fetch: false,
        };
        let rule = rule_of(&summary).unwrap();
        assert_eq!(rule_summary(&rule), summary);
        let star = BreakerRuleSummary {
            topic: "*".into(),
            ..summary.clone()
        };
        assert!(rule_of(&star)
            .unwrap_err()
            .to_string()
            .starts_with("topic:"));
        let metric = BreakerRuleSummary {
            metric: "cpu".into(),
            ..summary
        };
        assert!(rule_of(&metric)
            .unwrap_err()
            .to_string()
            .starts_with("metric:"));
    }
}
