//! The shipped monitoring assets (config/monitoring/) name only series a node exports,
//! with labels those series carry. A renamed metric or label would otherwise leave an
//! alert that never fires and an empty panel, and nothing would say so. The dashboard's
//! queries must also parse as PromQL, and every alert must have a unit test that fires it.
//! The series added for the alerts are checked on running nodes: they say what they claim.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flotilla::metrics::{ExportedSeries, Metrics};
use serde_json::Value;
use support::fake_broker::FakeBroker;
use support::fleet::Fleet;
use support::wire::RawClient;
use support::{kafka, wait_for, Node};

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

fn asset(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/monitoring")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One series selector found in a query: the metric name and the label names it matches on.
#[derive(Debug)]
struct Selector {
    name: String,
    labels: Vec<String>,
}

/// Every `flotilla_*` selector in `text`, with the label names of its `{...}` matchers.
/// Quotes escaped inside a YAML string count as quotes.
fn selectors(text: &str) -> Vec<Selector> {
    let text = text.replace("\\\"", "\"");
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (start, _) in text.match_indices("flotilla_") {
        if text[..start].chars().next_back().is_some_and(word) {
            continue;
        }
        let rest = &text[start..];
        let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
        let labels = match rest[end..].strip_prefix('{') {
            Some(matchers) => matcher_labels(matchers),
            None => Vec::new(),
        };
        found.push(Selector {
            name: rest[..end].to_string(),
            labels,
        });
    }
    found
}

/// The label names of matchers such as `a="x", b=~"y"}` (up to the closing brace, outside
/// quoted values).
fn matcher_labels(matchers: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut current = String::new();
    let mut in_value = false;
    let mut chars = matchers.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_value => in_value = false,
            '\\' if in_value => {
                chars.next();
            }
            '"' => in_value = true,
            _ if in_value => {}
            '}' | ',' => {
                let name = current.split(['=', '!']).next().unwrap_or("").trim();
                if !name.is_empty() {
                    labels.push(name.to_string());
                }
                current.clear();
                if c == '}' {
                    break;
                }
            }
            _ => current.push(c),
        }
    }
    labels
}

/// Checks every selector against what the node exports, adding the problems found.
fn check(source: &str, found: &[Selector], exported: &ExportedSeries, problems: &mut Vec<String>) {
    for selector in found {
        let name = selector.name.as_str();
        let Some(labels) = exported.get(name) else {
            problems.push(format!("{source}: {name} is not a series the node exports"));
            continue;
        };
        for label in &selector.labels {
            if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                problems.push(format!(
                    "{source}: {name} has no label {label} (it has {labels:?})"
                ));
            }
        }
    }
}

/// The PromQL queries of the dashboard's panels, by panel title, and of its variables.
fn dashboard_queries(dashboard: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let mut panels = Vec::new();
    let mut pending: Vec<&Value> = vec![dashboard];
    while let Some(value) = pending.pop() {
        let Some(object) = value.as_object() else {
            continue;
        };
        let title = object.get("title").and_then(Value::as_str).unwrap_or("");
        if let Some(targets) = object.get("targets").and_then(Value::as_array) {
            assert!(!targets.is_empty(), "panel {title:?} has no query");
            for target in targets {
                let expr = target["expr"].as_str();
                let expr = expr.unwrap_or_else(|| panic!("a query of {title:?} has no expr"));
                panels.push((title.to_string(), expr.to_string()));
            }
        }
        if let Some(children) = object.get("panels").and_then(Value::as_array) {
            pending.extend(children);
        }
    }
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("dashboard variables")
        .iter()
        .map(|v| {
            v["definition"]
                .as_str()
                .expect("variable query")
                .to_string()
        })
        .collect();
    (panels, variables)
}

fn dashboard() -> Value {
    serde_json::from_str(&asset("grafana-dashboard.json")).expect("dashboard is JSON")
}

#[test]
fn every_monitoring_query_names_series_the_node_exports() {
    let metrics = Metrics::new();
    let exported = metrics.exported();
    let mut problems = Vec::new();

    let (panels, variables) = dashboard_queries(&dashboard());
    assert!(
        panels.len() >= 30,
        "only {} panel queries found",
        panels.len()
    );
    for (title, expr) in &panels {
        let found = selectors(expr);
        if found.is_empty() && !expr.contains("up{") {
            problems.push(format!(
                "panel {title:?} queries no flotilla series: {expr}"
            ));
        }
        check(&format!("panel {title:?}"), &found, exported, &mut problems);
    }
    for query in &variables {
        check(
            "a dashboard variable",
            &selectors(query),
            exported,
            &mut problems,
        );
    }
    // The rules, their descriptions' queries, and the series their unit tests feed them.
    for file in ["alerts.yml", "alerts_test.yml"] {
        let found = selectors(&asset(file));
        assert!(
            found.len() >= 10,
            "{file}: only {} selectors found",
            found.len()
        );
        check(file, &found, exported, &mut problems);
    }

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn selectors_and_their_labels_are_read_from_queries() {
    let found = selectors(
        r#"sum by (api) (rate(flotilla_requests_total{job=~"$job", api!="a,}b"}[5m])) / flotilla_identities"#,
    );
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].name, "flotilla_requests_total");
    assert_eq!(found[0].labels, ["job", "api"]);
    assert_eq!(found[1].name, "flotilla_identities");
    assert!(found[1].labels.is_empty());
    assert!(selectors("not_flotilla_identities").is_empty());

    let mut problems = Vec::new();
    let metrics = Metrics::new();
    let wrong = selectors(r#"flotilla_bytes_total{dir="in"} + flotilla_nothing_total"#);
    check("q", &wrong, metrics.exported(), &mut problems);
    assert_eq!(problems.len(), 2, "{problems:?}");
}

/// Each panel query, with the dashboard's variables set, must be PromQL that Prometheus
/// parses: promtool checks them as recording rules.
#[test]
fn dashboard_queries_parse_as_promql() {
    let (panels, _) = dashboard_queries(&dashboard());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in panels.iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$__range", "1h")
            .replace('$', "");
        let expr = serde_json::to_string(&expr).expect("a JSON string is a YAML string");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {expr}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dashboard-rules.yml");
    std::fs::write(&file, rules).expect("write rules");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (scripts/install-deps.sh installs it)");
    let titles: Vec<String> = panels
        .iter()
        .enumerate()
        .map(|(i, (title, _))| format!("query_{i}: {title}"))
        .collect();
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        titles.join("\n")
    );
}

/// promtool passes a test that expects no alert when none fires, so an alert could lose
/// its only firing test unnoticed.
#[test]
fn every_alert_has_a_unit_test_that_fires_it() {
    let rules = asset("alerts.yml");
    let tests = asset("alerts_test.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 9, "only {} alerts found", alerts.len());
    for alert in alerts {
        let fired = tests.split("alertname: ").skip(1).any(|case| {
            let case = case.split("eval_time").next().unwrap_or("");
            case.starts_with(alert)
                && case[alert.len()..].starts_with(|c: char| !c.is_ascii_alphanumeric())
                && case.contains("exp_labels")
        });
        assert!(fired, "no test in alerts_test.yml fires {alert}");
    }
}

/// FlotillaConnectionsNearLimit divides the open connections by the configured limit.
#[test]
fn a_node_exports_its_connection_limit_beside_its_open_connections() {
    let node = Node::start_with(kafka(), "[limits]\nmax_connections = 3\n");
    let mut first = RawClient::connect(&node.bootstrap);
    let mut second = RawClient::connect(&node.bootstrap);
    assert_eq!(first.api_versions().error_code, 0);
    assert_eq!(second.api_versions().error_code, 0);
    assert_eq!(node.metric("flotilla_connections_limit", ""), 3.0);
    assert_eq!(node.metric("flotilla_connections_active", ""), 2.0);
}

/// FlotillaBackendCutOff fires on this gauge: 1 once the node has reached no broker for
/// `takeover_after`. The stand-in broker can be taken away; the shared Kafka cannot.
#[test]
fn a_fleet_node_that_reaches_no_broker_says_so_in_its_metrics() {
    let broker = FakeBroker::start("127.0.0.1");
    let fleet = Fleet::start(1, &broker.address, "2s");
    let node = &fleet.nodes[0];
    wait_for(
        "the only node to own the only identity",
        Duration::from_secs(10),
        || (node.metric("flotilla_identities_owned", "") == 1.0).then_some(()),
    );
    assert_eq!(node.metric("flotilla_backend_cut_off", ""), 0.0);

    broker.stop();
    wait_for(
        "the node to count itself cut off",
        Duration::from_secs(20),
        || (node.metric("flotilla_backend_cut_off", "") == 1.0).then_some(()),
    );
}
