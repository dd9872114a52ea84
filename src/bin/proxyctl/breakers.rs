//! `proxyctl breaker`: topic circuit breakers, opened by hand or by rules. `open` holds
//! (or rejects) a topic or every topic of a prefix (`orders.*`) fleet-wide, `close` ends
//! it, `list` shows who opened each, why and until when; `rule` manages the automatic
//! trips. The node checks the input and names the field it refuses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use flotilla::api::{
    BreakerClosed, BreakerRuleDeleted, BreakerRuleSummary, BreakerSummary, NewBreaker,
};

use crate::client::{encoded, Api};
use crate::output::{json, table, Output};

#[derive(Subcommand, Debug)]
pub enum BreakerCommand {
    /// Open a breaker on a topic, or on every topic of a prefix ending in `*`.
    Open(OpenArgs),
    /// Close the breaker on exactly this topic or prefix.
    Close { pattern: String },
    /// Breakers open in the fleet: pattern, origin, mode, reason, until.
    List,
    /// Rules that open breakers by themselves.
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
}

#[derive(Args, Debug)]
pub struct OpenArgs {
    /// A topic, or a prefix followed by `*`.
    pattern: String,
    /// Stop Produce (neither --produce nor --fetch: both).
    #[arg(long)]
    produce: bool,
    /// Stop Fetch.
    #[arg(long)]
    fetch: bool,
    /// hold (clients wait and retry, nothing lost) or reject (producers get a policy error).
    #[arg(long, default_value = "hold")]
    mode: String,
    /// Shown in `list`, and to rejected producers.
    #[arg(long)]
    reason: Option<String>,
    /// Close by itself after this long (e.g. 30s, 10m); open until closed otherwise.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    for_: Option<Duration>,
}

#[derive(Subcommand, Debug)]
pub enum RuleCommand {
    /// Add or replace a rule.
    Set(RuleArgs),
    /// Delete a rule (breakers it opened stay until their cool-down ends).
    Delete { name: String },
    /// The rules.
    List,
}

#[derive(Args, Debug)]
pub struct RuleArgs {
    name: String,
    /// The topics watched, each on its own: a topic, or a prefix followed by `*`.
    #[arg(long)]
    topic: String,
    /// Trip when a topic's produce bytes per second, fleet-wide, stay above this.
    #[arg(
        long,
        conflicts_with = "error_per_mille",
        required_unless_present = "error_per_mille"
    )]
    produce_bytes_per_sec: Option<u64>,
    /// Trip when a topic's broker errors per thousand produce partition responses stay
    /// above this.
    #[arg(long)]
    error_per_mille: Option<u64>,
    /// How long the metric must stay above the threshold (e.g. 10 or 10s).
    #[arg(long = "for", value_parser = seconds)]
    sustain: u32,
    /// How long a breaker it opens stays open (e.g. 60 or 5m).
    #[arg(long, value_parser = seconds)]
    cool_down: u32,
    /// hold or reject.
    #[arg(long, default_value = "hold")]
    mode: String,
    /// Hold Produce (neither --produce nor --fetch: both).
    #[arg(long)]
    produce: bool,
    /// Hold Fetch.
    #[arg(long)]
    fetch: bool,
}

/// Whole seconds, given bare or as a duration (`90`, `90s`, `2m`).
fn seconds(text: &str) -> Result<u32, String> {
    let secs = match text.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| e.to_string())?
            .as_secs(),
    };
    u32::try_from(secs).map_err(|_| format!("{text} is too long"))
}

pub fn run(api: &Api, command: &BreakerCommand, output: Output) -> Result<String, String> {
    match command {
        BreakerCommand::Open(args) => {
            let new = NewBreaker {
                pattern: args.pattern.clone(),
                produce: args.produce,
                fetch: args.fetch,
                mode: Some(args.mode.clone()),
                reason: args.reason.clone(),
                for_ms: args.for_.map(|d| d.as_millis() as u64),
            };
            let opened: BreakerSummary = api.post("/api/v1/breakers", Some(&new))?;
            Ok(match output {
                Output::Json => json(&opened),
                Output::Table => format!(
                    "breaker open on {} ({}, {}) until {}\n",
                    opened.pattern,
                    opened.mode,
                    directions(opened.produce, opened.fetch),
                    until(opened.until_ms)
                ),
            })
        }
        BreakerCommand::Close { pattern } => {
            let closed: BreakerClosed =
                api.delete(&format!("/api/v1/breakers/{}", encoded(pattern)))?;
            Ok(match output {
                Output::Json => json(&closed),
                Output::Table => format!("breaker on {} closed\n", closed.closed),
            })
        }
        BreakerCommand::List => {
            let breakers: Vec<BreakerSummary> = api.get("/api/v1/breakers")?;
            Ok(match output {
                Output::Json => json(&breakers),
                Output::Table => breaker_table(&breakers),
            })
        }
        BreakerCommand::Rule { command } => run_rule(api, command, output),
    }
}

fn run_rule(api: &Api, command: &RuleCommand, output: Output) -> Result<String, String> {
    match command {
        RuleCommand::Set(args) => {
            let (metric, threshold) = match (args.produce_bytes_per_sec, args.error_per_mille) {
                (Some(bytes), _) => ("produce-bytes-per-sec", bytes),
                (None, Some(per_mille)) => ("error-per-mille", per_mille),
                (None, None) => {
                    return Err("give --produce-bytes-per-sec or --error-per-mille".into())
                }
            };
            let rule = BreakerRuleSummary {
                name: args.name.clone(),
                topic: args.topic.clone(),
                metric: metric.into(),
                threshold,
                sustain_secs: args.sustain,
                cool_down_secs: args.cool_down,
                mode: Some(args.mode.clone()),
                produce: args.produce,
                fetch: args.fetch,
            };
            let saved: BreakerRuleSummary = api.post("/api/v1/breaker-rules", Some(&rule))?;
            Ok(match output {
                Output::Json => json(&saved),
                Output::Table => format!("breaker rule {} saved\n", saved.name),
            })
        }
        RuleCommand::Delete { name } => {
            let deleted: BreakerRuleDeleted =
                api.delete(&format!("/api/v1/breaker-rules/{}", encoded(name)))?;
            Ok(match output {
                Output::Json => json(&deleted),
                Output::Table => format!("breaker rule {} deleted\n", deleted.deleted),
            })
        }
        RuleCommand::List => {
            let rules: Vec<BreakerRuleSummary> = api.get("/api/v1/breaker-rules")?;
            Ok(match output {
                Output::Json => json(&rules),
                Output::Table => rule_table(&rules),
            })
        }
    }
}

fn directions(produce: bool, fetch: bool) -> &'static str {
    match (produce, fetch) {
        (true, true) => "produce+fetch",
        (true, false) => "produce",
        (false, true) => "fetch",
        (false, false) => "-",
    }
}

/// An instant in Unix milliseconds, as UTC to the second; "closed" for none.
fn until(until_ms: Option<u64>) -> String {
    match until_ms {
        None => "closed".into(),
        Some(ms) => {
            let at = UNIX_EPOCH + Duration::from_millis(ms);
            let shown = humantime::format_rfc3339_seconds(at).to_string();
            match at.duration_since(SystemTime::now()) {
                Ok(left) => format!("{shown} (in {}s)", left.as_secs()),
                Err(_) => format!("{shown} (passed)"),
            }
        }
    }
}

fn breaker_table(breakers: &[BreakerSummary]) -> String {
    let rows = breakers
        .iter()
        .map(|b| {
            vec![
                b.pattern.clone(),
                b.origin.clone(),
                b.mode.clone(),
                directions(b.produce, b.fetch).into(),
                until(b.until_ms),
                if b.reason.is_empty() {
                    "-".into()
                } else {
                    b.reason.clone()
                },
            ]
        })
        .collect();
    table(
        &["PATTERN", "ORIGIN", "MODE", "STOPS", "UNTIL", "REASON"],
        rows,
    )
}

fn rule_table(rules: &[BreakerRuleSummary]) -> String {
    let rows = rules
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.topic.clone(),
                format!("{} > {}", r.metric, r.threshold),
                format!("{}s", r.sustain_secs),
                format!("{}s", r.cool_down_secs),
                r.mode.clone().unwrap_or_else(|| "hold".into()),
                directions(r.produce, r.fetch).into(),
            ]
        })
        .collect();
    table(
        &["NAME", "TOPIC", "WHEN", "FOR", "COOL-DOWN", "MODE", "STOPS"],
        rows,
    )
}
