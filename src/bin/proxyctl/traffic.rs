//! `proxyctl top` and `proxyctl clients`: the fleet's busiest topics and clients right
//! now, and the client connections with what they do (acks, compression, idempotence,
//! groups, software), so an operator can find the clients that break the house rules.

use flotilla::api::{ClientsReport, TrafficReport};

use crate::client::Api;
use crate::output::{join, json, table, Output};

pub fn top(api: &Api, limit: usize, output: Output) -> Result<String, String> {
    let report: TrafficReport = api.get("/api/v1/traffic")?;
    Ok(match output {
        Output::Json => json(&report),
        Output::Table => top_tables(&report, limit),
    })
}

pub fn clients(api: &Api, output: Output) -> Result<String, String> {
    let report: ClientsReport = api.get("/api/v1/clients")?;
    Ok(match output {
        Output::Json => json(&report),
        Output::Table => clients_table(&report),
    })
}

fn coverage(nodes: &[u64], missing: &[u64]) -> String {
    let mut line = format!("nodes {}", join(nodes));
    if !missing.is_empty() {
        line += &format!(
            "  NOT ANSWERING {} (their traffic is missing)",
            join(missing)
        );
    }
    line
}

fn top_tables(report: &TrafficReport, limit: usize) -> String {
    let mut out = format!(
        "{}  rates per second over the last {:.0}s\n\n",
        coverage(&report.nodes, &report.missing),
        report.window_seconds
    );
    let topics = report.topics.iter().take(limit).map(|t| {
        vec![
            t.topic.clone(),
            bytes(t.bytes_in_per_sec),
            bytes(t.bytes_out_per_sec),
            count(t.records_in_per_sec),
            count(t.records_out_per_sec),
            count(t.requests_per_sec),
        ]
    });
    out += &table(
        &[
            "TOPIC",
            "BYTES IN/S",
            "BYTES OUT/S",
            "RECORDS IN/S",
            "RECORDS OUT/S",
            "REQUESTS/S",
        ],
        topics.collect(),
    );
    out += "\n";
    let clients = report.clients.iter().take(limit).map(|c| {
        vec![
            if c.client_id.is_empty() {
                "-".into()
            } else {
                c.client_id.clone()
            },
            bytes(c.bytes_in_per_sec),
            bytes(c.bytes_out_per_sec),
            count(c.records_per_sec),
            count(c.requests_per_sec),
        ]
    });
    out += &table(
        &[
            "CLIENT ID",
            "BYTES IN/S",
            "BYTES OUT/S",
            "RECORDS/S",
            "REQUESTS/S",
        ],
        clients.collect(),
    );
    out
}

fn clients_table(report: &ClientsReport) -> String {
    let mut out = format!("{}\n\n", coverage(&report.nodes, &report.missing));
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let rows = report.clients.iter().map(|c| {
        let software = match (&c.software_name, &c.software_version) {
            (Some(name), Some(version)) => format!("{name} {version}"),
            _ => "-".into(),
        };
        vec![
            dash(&c.client_id),
            software,
            c.address.clone(),
            c.node.to_string(),
            dash(&c.zone),
            dash(&c.principal),
            join(&c.acks),
            join(&c.codecs),
            if c.idempotent { "yes" } else { "no" }.into(),
            dash(&c.transactional_id),
            join(&c.groups),
        ]
    });
    out += &table(
        &[
            "CLIENT ID",
            "SOFTWARE",
            "ADDRESS",
            "NODE",
            "ZONE",
            "PRINCIPAL",
            "ACKS",
            "CODECS",
            "IDEMPOTENT",
            "TRANSACTIONAL ID",
            "GROUPS",
        ],
        rows.collect(),
    );
    out
}

/// Bytes per second in binary units.
fn bytes(per_second: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = per_second;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn count(per_second: f64) -> String {
    format!("{per_second:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(bytes(512.0), "512.0 B");
        assert_eq!(bytes(3.5 * 1024.0 * 1024.0), "3.5 MiB");
        assert_eq!(count(0.25), "0.2");
    }
}
