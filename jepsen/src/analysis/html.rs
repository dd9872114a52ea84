//! `report.html`: one file with no scripts or external styles, so it opens anywhere and can
//! be attached to a bug. The timeline is inline SVG: sends and reads per second for every
//! client process, send latencies as dots on a log scale, fault windows shaded.

use std::fmt::Write;

use super::report::Report;

const WIDTH: f64 = 1100.0;
const PLOT_HEIGHT: f64 = 220.0;
const MARGIN: f64 = 50.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

pub fn render(report: &Report) -> String {
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>flotilla chaos report</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.bad{color:#b00}\
         .good{color:#070}</style></head><body>",
    );
    let class = if report.valid { "good" } else { "bad" };
    let _ = write!(
        page,
        "<h1>Chaos run, seed {}</h1><p class=\"{class}\"><b>{}</b></p>",
        report.seed,
        escape(&report.summary)
    );
    page += &anomaly_table(report);
    page += &library_table(report);
    page += &fault_table(report);
    page += "<h2>Throughput (operations per second)</h2>";
    page += &throughput_svg(report);
    page += "<h2>Send latency (ms, log scale)</h2>";
    page += &latency_svg(report);
    let _ = write!(
        page,
        "<h2>Configuration</h2><pre>{}</pre></body></html>",
        escape(&report.config.to_string())
    );
    page
}

fn anomaly_table(report: &Report) -> String {
    let mut out = String::from(
        "<h2>Anomalies</h2><table><tr><th>kind</th><th>count</th><th>first example</th></tr>",
    );
    for (name, count) in &report.anomaly_counts {
        let example = report.examples.get(name).and_then(|e| e.first()).map(|e| {
            format!(
                "partition {} offset {:?} value {:?} ({}): {}",
                e.partition, e.offset, e.value, e.process, e.detail
            )
        });
        let class = if *count > 0 && name != "duplicate_explained" {
            " class=\"bad\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{class}><td>{name}</td><td>{count}</td><td>{}</td></tr>",
            escape(&example.unwrap_or_default())
        );
    }
    out + "</table>"
}

fn library_table(report: &Report) -> String {
    let mut out = String::from(
        "<h2>Availability per client library</h2><table><tr><th>library</th><th>longest pause (ms)</th>\
         <th>median recovery after a fault (ms)</th><th>max recovery (ms)</th></tr>",
    );
    for (library, f) in &report.liveness.libraries {
        let _ = write!(
            out,
            "<tr><td>{library}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td></tr>",
            f.longest_gap_ms, f.median_fault_recovery_ms, f.max_fault_recovery_ms
        );
    }
    out + "</table>"
}

fn fault_table(report: &Report) -> String {
    let mut out = String::from("<h2>Faults</h2><table><tr><th>fault</th><th>nodes</th><th>from (s)</th><th>to (s)</th><th>acknowledged again after (ms)</th></tr>");
    for f in &report.liveness.faults {
        let again: Vec<String> = f
            .acked_again_ms
            .iter()
            .map(|(l, ms)| format!("{l} {ms:.0}"))
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{:?}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
            f.fault,
            f.nodes,
            f.start_ms / 1000.0,
            f.end_ms
                .map_or("-".into(), |e| format!("{:.1}", e / 1000.0)),
            again.join(", ")
        );
    }
    out + "</table>"
}

/// The run's length in seconds, from the throughput series.
fn seconds(report: &Report) -> f64 {
    report
        .liveness
        .throughput
        .values()
        .map(Vec::len)
        .max()
        .unwrap_or(1)
        .max(1) as f64
}

fn x_of(report: &Report, time_ms: f64) -> f64 {
    MARGIN + time_ms / 1000.0 / seconds(report) * (WIDTH - 2.0 * MARGIN)
}

fn frame(report: &Report, body: &str, legend: &str) -> String {
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\">",
        PLOT_HEIGHT + 2.0 * MARGIN
    );
    for f in &report.liveness.faults {
        let (x0, x1) = (
            x_of(report, f.start_ms),
            x_of(report, f.end_ms.unwrap_or(f.start_ms + 1000.0)),
        );
        let _ = write!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{MARGIN}\" width=\"{:.1}\" height=\"{PLOT_HEIGHT}\" fill=\"#f4cccc\"/>\
             <text x=\"{x0:.1}\" y=\"{:.1}\" font-size=\"10\">{} {:?}</text>",
            (x1 - x0).max(1.0),
            MARGIN - 4.0,
            f.fault,
            f.nodes
        );
    }
    let bottom = MARGIN + PLOT_HEIGHT;
    let _ = write!(
        svg,
        "<line x1=\"{MARGIN}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\" stroke=\"black\"/>\
         <text x=\"{MARGIN}\" y=\"{:.1}\" font-size=\"11\">0 s</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{:.0} s</text>",
        WIDTH - MARGIN,
        bottom + 14.0,
        WIDTH - MARGIN - 30.0,
        bottom + 14.0,
        seconds(report)
    );
    svg + body + legend + "</svg>"
}

fn legend(names: &[&String]) -> String {
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{}\">{}</text>",
            MARGIN + (i % 4) as f64 * 250.0,
            MARGIN + PLOT_HEIGHT + 30.0 + (i / 4) as f64 * 13.0,
            COLORS[i % COLORS.len()],
            escape(name)
        );
    }
    out
}

fn throughput_svg(report: &Report) -> String {
    let peak = report
        .liveness
        .throughput
        .values()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let names: Vec<&String> = report.liveness.throughput.keys().collect();
    let mut body = String::new();
    for (i, (_, series)) in report.liveness.throughput.iter().enumerate() {
        let points: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(s, v)| {
                let y = MARGIN + PLOT_HEIGHT - f64::from(*v) / peak * PLOT_HEIGHT;
                format!("{:.1},{y:.1}", x_of(report, s as f64 * 1000.0 + 500.0))
            })
            .collect();
        let _ = write!(
            body,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
            COLORS[i % COLORS.len()],
            points.join(" ")
        );
    }
    let _ = write!(
        body,
        "<text x=\"4\" y=\"{MARGIN}\" font-size=\"11\">{peak:.0}/s</text>"
    );
    frame(report, &body, &legend(&names))
}

fn latency_svg(report: &Report) -> String {
    let latencies = &report.liveness.latencies;
    let peak = latencies.iter().map(|l| l.2).fold(1.0_f64, f64::max);
    let mut names: Vec<&String> = latencies.iter().map(|l| &l.0).collect();
    names.sort();
    names.dedup();
    let y_of = |ms: f64| {
        MARGIN + PLOT_HEIGHT - (ms.max(1.0).log10() / peak.log10().max(1.0)) * PLOT_HEIGHT
    };
    let mut body = String::new();
    // Every send would make the file huge: keep one in `step`, and every slow one.
    let step = (latencies.len() / 20_000).max(1);
    for (n, (process, time, ms)) in latencies.iter().enumerate() {
        if n % step != 0 && *ms < 1000.0 {
            continue;
        }
        let color = COLORS[names.iter().position(|p| *p == process).unwrap_or(0) % COLORS.len()];
        let _ = write!(
            body,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.2\" fill=\"{color}\"/>",
            x_of(report, *time),
            y_of(*ms)
        );
    }
    let _ = write!(
        body,
        "<text x=\"4\" y=\"{MARGIN}\" font-size=\"11\">{peak:.0} ms</text>"
    );
    frame(report, &body, &legend(&names))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
