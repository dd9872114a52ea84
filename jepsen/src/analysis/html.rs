//! `report.html`: one file without scripts or external styles, so it opens anywhere, can
//! be attached to a bug and still reads the same in a year. The timeline is inline SVG
//! with two panels on one time axis: throughput per client process as lines, and the
//! latency of every send and commit as dots on a log scale; fault windows are shaded
//! across both and labelled.

use std::fmt::Write;

use super::checker::Example;
use super::liveness::Gap;
use super::report::Report;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const PANEL: f64 = 200.0;
const PANEL_GAP: f64 = 40.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f",
];
/// More dots than this make the page slow to open; the slow ones are always kept.
const MAX_DOTS: usize = 20_000;

pub fn render(report: &Report) -> String {
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>flotilla chaos report</title>\
         <style>body{font-family:sans-serif;margin:2em;max-width:1200px}\
         table{border-collapse:collapse;margin-bottom:1em}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\
         .bad{color:#b00}.good{color:#070}ul{margin:0;padding-left:1.2em}\
         svg text{font-family:sans-serif}</style></head><body>",
    );
    let class = if report.valid { "good" } else { "bad" };
    let _ = write!(
        page,
        "<h1>flotilla chaos run, seed {}</h1><p class=\"{class}\"><b>{}</b></p>",
        report.seed,
        escape(report.summary_line())
    );
    page += &summary_table(report);
    page += &anomaly_table(report);
    page += "<h2>Timeline</h2>";
    page += &Timeline::new(report).svg();
    page += &library_table(report);
    page += &fault_table(report);
    page += &process_table(report);
    let config = serde_json::to_string_pretty(&report.config).unwrap_or_default();
    let _ = write!(
        page,
        "<h2>Configuration</h2><pre>{}</pre></body></html>",
        escape(&config)
    );
    page
}

fn summary_table(report: &Report) -> String {
    let d = &report.durations;
    let rows = [
        (
            "verdict",
            if report.valid { "valid" } else { "INVALID" }.to_string(),
        ),
        ("seed", report.seed.to_string()),
        (
            "acknowledged writes",
            report.acknowledged_writes.to_string(),
        ),
        ("history", seconds(d.history_ms)),
        ("sending", seconds(d.sending_ms)),
        (
            "faults",
            format!("{}, in force for {}", d.faults, seconds(d.under_fault_ms)),
        ),
    ];
    let mut out = String::from("<h2>Summary</h2><table>");
    for (name, value) in rows {
        let _ = write!(out, "<tr><th>{name}</th><td>{}</td></tr>", escape(&value));
    }
    out + "</table>"
}

fn anomaly_table(report: &Report) -> String {
    let mut out = String::from(
        "<h2>Anomalies</h2><table><tr><th>kind</th><th>count</th><th>examples</th></tr>",
    );
    for (anomaly, count) in &report.anomaly_counts {
        let class = if *count > 0 && anomaly.invalidates() {
            " class=\"bad\""
        } else {
            ""
        };
        let examples: String = report
            .examples
            .get(anomaly)
            .into_iter()
            .flatten()
            .map(|e| format!("<li>{}</li>", escape(&describe(e))))
            .collect();
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td>{count}</td><td><ul>{examples}</ul></td></tr>",
            anomaly.name()
        );
    }
    out + "</table>"
}

fn describe(e: &Example) -> String {
    let offset = e.offset.map_or("-".to_string(), |o| o.to_string());
    let value = e.value.as_deref().unwrap_or("-");
    format!(
        "partition {} offset {offset} value {value} at {:.3} s ({}): {}",
        e.partition,
        e.time_ms / 1000.0,
        e.processes.join(", "),
        e.detail
    )
}

fn library_table(report: &Report) -> String {
    let mut out = String::from(
        "<h2>Availability per client library</h2><table><tr><th>library</th>\
         <th>longest gap between successes</th><th>longest gap between acks of one partition</th>\
         <th>acknowledged again after a fault: median / max</th><th>faults never recovered from</th></tr>",
    );
    for (library, f) in &report.liveness.libraries {
        let partition = f
            .longest_ack_gap_partition
            .map_or(String::new(), |p| format!(", partition {p}"));
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}{partition}</td><td>{} / {}</td><td>{}</td></tr>",
            escape(library),
            gap(&f.longest_gap),
            gap(&f.longest_ack_gap),
            millis(f.median_fault_recovery_ms),
            millis(f.max_fault_recovery_ms),
            f.faults_never_recovered
        );
    }
    out + "</table>"
}

fn fault_table(report: &Report) -> String {
    let mut out = String::from(
        "<h2>Faults</h2><table><tr><th>fault</th><th>nodes</th><th>from</th><th>to</th>\
         <th>first success after</th><th>acknowledged again after</th></tr>",
    );
    for f in &report.liveness.faults {
        let first: Vec<String> = f
            .first_ok_after_ms
            .iter()
            .map(|(library, ms)| format!("{library} {}", millis(*ms)))
            .collect();
        let again: Vec<String> = f
            .acked_again_ms
            .iter()
            .map(|(library, ms)| format!("{library} {}", ms.map_or("never".into(), millis)))
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&f.fault),
            f.nodes,
            seconds(f.start_ms),
            f.end_ms.map_or("-".into(), seconds),
            escape(&first.join(", ")),
            escape(&again.join(", "))
        );
    }
    out + "</table>"
}

fn process_table(report: &Report) -> String {
    let mut out = String::from(
        "<h2>Processes</h2><table><tr><th>process</th><th>client</th><th>successful operations</th>\
         <th>longest gap between successes</th></tr>",
    );
    for p in &report.liveness.processes {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.process),
            escape(&p.client),
            p.ok_operations,
            gap(&p.longest_gap)
        );
    }
    out + "</table>"
}

fn gap(g: &Gap) -> String {
    format!("{} from {}", millis(g.ms), seconds(g.from_ms))
}

fn millis(ms: f64) -> String {
    format!("{ms:.0} ms")
}

fn seconds(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

/// The two panels' geometry and the processes' colours.
struct Timeline<'a> {
    report: &'a Report,
    span_s: f64,
    processes: Vec<&'a str>,
}

impl<'a> Timeline<'a> {
    fn new(report: &'a Report) -> Timeline<'a> {
        let liveness = &report.liveness;
        let longest_series = liveness
            .throughput
            .values()
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let span_s = (report.durations.history_ms / 1000.0)
            .max(longest_series as f64)
            .max(1.0);
        let mut processes: Vec<&str> = liveness.throughput.keys().map(String::as_str).collect();
        processes.extend(liveness.latencies.iter().map(|l| l.process.as_str()));
        processes.sort();
        processes.dedup();
        Timeline {
            report,
            span_s,
            processes,
        }
    }

    fn x(&self, time_ms: f64) -> f64 {
        LEFT + (time_ms / 1000.0 / self.span_s).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }

    fn color(&self, process: &str) -> &'static str {
        let n = self
            .processes
            .iter()
            .position(|p| *p == process)
            .unwrap_or(0);
        COLORS[n % COLORS.len()]
    }

    fn latency_top(&self) -> f64 {
        TOP + PANEL + PANEL_GAP
    }

    fn svg(&self) -> String {
        let height =
            self.latency_top() + PANEL + 40.0 + 16.0 * self.processes.len().div_ceil(4) as f64;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" font-size=\"11\">"
        );
        svg += &self.fault_windows();
        svg += &self.throughput_panel();
        svg += &self.latency_panel();
        svg += &self.time_axis();
        svg += &self.legend();
        svg + "</svg>"
    }

    fn fault_windows(&self) -> String {
        let bottom = self.latency_top() + PANEL;
        let mut out = String::new();
        for f in &self.report.liveness.faults {
            let end = f.end_ms.unwrap_or(self.span_s * 1000.0);
            let (x0, x1) = (self.x(f.start_ms), self.x(end));
            let label = format!("{} {:?}", f.fault, f.nodes);
            let _ = write!(
                out,
                "<rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f4cccc\" opacity=\"0.7\">\
                 <title>{}</title></rect><text x=\"{x0:.1}\" y=\"{:.1}\" fill=\"#900\">{}</text>",
                (x1 - x0).max(1.0),
                bottom - TOP,
                escape(&label),
                TOP - 6.0,
                escape(&label)
            );
        }
        out
    }

    fn throughput_panel(&self) -> String {
        let throughput = &self.report.liveness.throughput;
        let peak = throughput.values().flatten().copied().max().unwrap_or(0);
        // Log scale: the final reads run thousands of times faster than the producers,
        // whose dips during faults would vanish on a linear one.
        let scale = LogScale::new(TOP, f64::from(peak));
        let mut out = self.panel_frame(TOP, "operations per second (log scale)");
        out += &scale.ticks();
        for (process, series) in throughput {
            let points: Vec<String> = series
                .iter()
                .enumerate()
                .map(|(second, v)| {
                    let x = self.x(second as f64 * 1000.0 + 500.0);
                    format!("{x:.1},{:.1}", scale.y(f64::from(*v)))
                })
                .collect();
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
                self.color(process),
                points.join(" "),
                escape(process)
            );
        }
        out
    }

    fn latency_panel(&self) -> String {
        let latencies = &self.report.liveness.latencies;
        let top = self.latency_top();
        let scale = LogScale::new(top, latencies.iter().map(|l| l.ms).fold(0.0, f64::max));
        let mut out = self.panel_frame(top, "latency of sends and commits (ms, log scale)");
        out += &scale.ticks();
        let step = (latencies.len() / MAX_DOTS).max(1);
        for (n, l) in latencies.iter().enumerate() {
            if n % step != 0 && l.ms < 1000.0 {
                continue;
            }
            // Operations that did not end ok are hollow: their latency is how long the
            // client waited before giving up.
            let fill = if l.phase == super::history::Phase::Ok {
                self.color(&l.process)
            } else {
                "none"
            };
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.5\" fill=\"{fill}\" stroke=\"{}\" stroke-width=\"0.5\"/>",
                self.x(l.completed_ms),
                scale.y(l.ms),
                self.color(&l.process)
            );
        }
        out
    }

    fn panel_frame(&self, top: f64, title: &str) -> String {
        format!(
            "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{:.1}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#888\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\">{title}</text>",
            WIDTH - LEFT - RIGHT,
            LEFT + 4.0,
            top + 14.0
        )
    }

    fn time_axis(&self) -> String {
        let bottom = self.latency_top() + PANEL;
        let step = tick_step(self.span_s);
        let mut out = String::new();
        let mut t = 0.0;
        while t <= self.span_s + 1e-9 {
            let x = self.x(t * 1000.0);
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#eee\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t:.0} s</text>",
                bottom + 14.0
            );
            t += step;
        }
        out
    }

    fn legend(&self) -> String {
        let top = self.latency_top() + PANEL + 34.0;
        let mut out = String::new();
        for (i, process) in self.processes.iter().enumerate() {
            let (x, y) = (LEFT + (i % 4) as f64 * 250.0, top + (i / 4) as f64 * 16.0);
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
                y - 9.0,
                self.color(process),
                x + 14.0,
                escape(process)
            );
        }
        out
    }
}

/// A panel's vertical axis: log10(1 + v), so that 0 still has a place, at the bottom.
struct LogScale {
    top: f64,
    decades: f64,
}

impl LogScale {
    fn new(top: f64, peak: f64) -> LogScale {
        let decades = (1.0 + peak.max(0.0)).log10().ceil().max(1.0);
        LogScale { top, decades }
    }

    fn y(&self, v: f64) -> f64 {
        self.top + PANEL - (1.0 + v.max(0.0)).log10() / self.decades * PANEL
    }

    /// 0, 1, 10, 100, ... up to the top.
    fn ticks(&self) -> String {
        let mut out = y_tick(self.y(0.0), "0");
        for decade in 0..=self.decades as i32 {
            let v = 10f64.powi(decade);
            out += &y_tick(self.y(v), &format!("{v:.0}"));
        }
        out
    }
}

fn y_tick(y: f64, label: &str) -> String {
    format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>\
         <line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{LEFT}\" y2=\"{y:.1}\" stroke=\"#888\"/>",
        LEFT - 6.0,
        y + 4.0,
        LEFT - 3.0
    )
}

/// A round number of seconds between time ticks, for about ten ticks.
fn tick_step(span_s: f64) -> f64 {
    [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0]
        .into_iter()
        .find(|step| span_s / step <= 12.0)
        .unwrap_or(span_s / 10.0)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_history_cannot_inject_markup() {
        assert_eq!(
            escape("<b>\"x\" & y</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
    }

    #[test]
    fn about_ten_round_time_ticks() {
        assert_eq!(tick_step(5.0), 1.0);
        assert_eq!(tick_step(90.0), 10.0);
        assert_eq!(tick_step(600.0), 60.0);
    }
}
