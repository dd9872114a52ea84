//! What the faults cost the clients: how long each went without a success, how long after
//! each fault the producers of each client library were acknowledged again, and the
//! throughput and latency over time that the report plots.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::history::{Event, Op, Phase};

#[derive(Debug, Serialize)]
pub struct Liveness {
    pub processes: Vec<ProcessFigures>,
    pub faults: Vec<FaultFigures>,
    /// Per client library: the longest time one partition went without an
    /// acknowledgement from its producers, and how long after each fault they recovered.
    pub libraries: BTreeMap<String, LibraryFigures>,
    /// Successful sends and records read per second, per process (index = second).
    pub throughput: BTreeMap<String, Vec<u32>>,
    /// (process, completion time, invoke-to-completion ms) of every completed send; only
    /// the HTML plots them (report.json would grow by megabytes).
    #[serde(skip)]
    pub latencies: Vec<(String, f64, f64)>,
}

#[derive(Debug, Serialize)]
pub struct ProcessFigures {
    pub process: String,
    pub client: String,
    pub ok_operations: usize,
    pub longest_gap_ms: f64,
    pub longest_gap_from_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct FaultFigures {
    pub fault: String,
    pub nodes: Vec<u8>,
    pub start_ms: f64,
    pub end_ms: Option<f64>,
    /// Per client library: from the fault to the end of the longest pause in
    /// acknowledgements that began during the fault, over its producers' partitions (0
    /// when none paused).
    pub acked_again_ms: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize, Default)]
pub struct LibraryFigures {
    pub longest_gap_ms: f64,
    pub median_fault_recovery_ms: f64,
    pub max_fault_recovery_ms: f64,
}

pub fn measure(history: &[Event]) -> Liveness {
    let acks = send_acks_by_library(history);
    let faults = fault_figures(history, &acks);
    let libraries = library_figures(&acks, &faults);
    Liveness {
        processes: process_figures(history),
        faults,
        libraries,
        throughput: throughput(history),
        latencies: latencies(history),
    }
}

fn process_figures(history: &[Event]) -> Vec<ProcessFigures> {
    let mut times: BTreeMap<&str, (&str, Vec<f64>)> = BTreeMap::new();
    for event in history.iter().filter(|e| e.is_ok()) {
        times
            .entry(&event.process)
            .or_insert((&event.client, Vec::new()))
            .1
            .push(event.time_ms);
    }
    times
        .into_iter()
        .map(|(process, (client, times))| {
            let (gap, from) = longest_gap(&times);
            ProcessFigures {
                process: process.to_string(),
                client: client.to_string(),
                ok_operations: times.len(),
                longest_gap_ms: gap,
                longest_gap_from_ms: from,
            }
        })
        .collect()
}

/// The longest gap between consecutive times, and where it starts.
fn longest_gap(times: &[f64]) -> (f64, f64) {
    times.windows(2).map(|w| (w[1] - w[0], w[0])).fold(
        (0.0, times.first().copied().unwrap_or(0.0)),
        |best, gap| {
            if gap.0 > best.0 {
                gap
            } else {
                best
            }
        },
    )
}

/// Acknowledgement times per (client library, partition): a partition is the unit that
/// becomes unavailable when the node advertising its leader dies.
type AckTimes = BTreeMap<(String, i32), Vec<f64>>;

fn send_acks_by_library(history: &[Event]) -> AckTimes {
    let mut acks = AckTimes::new();
    for event in history {
        if let Op::Send {
            phase: Phase::Ok,
            partition,
            ..
        } = event.op
        {
            acks.entry((event.client.clone(), partition))
                .or_default()
                .push(event.time_ms);
        }
    }
    acks
}

fn fault_figures(history: &[Event], acks: &AckTimes) -> Vec<FaultFigures> {
    let mut faults: Vec<FaultFigures> = Vec::new();
    for event in history {
        let Op::Fault {
            phase,
            fault,
            nodes,
        } = &event.op
        else {
            continue;
        };
        match phase {
            Phase::Invoke => faults.push(FaultFigures {
                fault: fault.clone(),
                nodes: nodes.clone(),
                start_ms: event.time_ms,
                end_ms: None,
                acked_again_ms: BTreeMap::new(),
            }),
            _ => {
                if let Some(open) = faults.iter_mut().rev().find(|f| f.end_ms.is_none()) {
                    open.end_ms = Some(event.time_ms);
                }
            }
        }
    }
    for fault in &mut faults {
        let end = fault.end_ms.unwrap_or(f64::INFINITY);
        for ((library, _), times) in acks {
            let again = acked_again(times, fault.start_ms, end);
            let worst = fault.acked_again_ms.entry(library.clone()).or_insert(0.0);
            *worst = worst.max(again);
        }
    }
    faults
}

/// From `start` to the end of the longest pause in `times` that began before `end`.
fn acked_again(times: &[f64], start: f64, end: f64) -> f64 {
    let mut previous = start;
    let mut best = (0.0, start);
    for &t in times.iter().filter(|t| **t > start) {
        if previous > end {
            break;
        }
        if t - previous > best.0 {
            best = (t - previous, t);
        }
        previous = t;
    }
    if best.0 == 0.0 {
        0.0
    } else {
        best.1 - start
    }
}

fn library_figures(acks: &AckTimes, faults: &[FaultFigures]) -> BTreeMap<String, LibraryFigures> {
    let mut longest: BTreeMap<String, f64> = BTreeMap::new();
    for ((library, _), times) in acks {
        let gap = longest.entry(library.clone()).or_insert(0.0);
        *gap = gap.max(longest_gap(times).0);
    }
    longest
        .into_iter()
        .map(|(library, longest_gap_ms)| {
            let mut recoveries: Vec<f64> = faults
                .iter()
                .filter_map(|f| f.acked_again_ms.get(&library).copied())
                .collect();
            recoveries.sort_by(f64::total_cmp);
            let figures = LibraryFigures {
                longest_gap_ms,
                median_fault_recovery_ms: recoveries
                    .get(recoveries.len() / 2)
                    .copied()
                    .unwrap_or(0.0),
                max_fault_recovery_ms: recoveries.last().copied().unwrap_or(0.0),
            };
            (library, figures)
        })
        .collect()
}

fn throughput(history: &[Event]) -> BTreeMap<String, Vec<u32>> {
    let mut per_second: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for event in history {
        let count = match &event.op {
            Op::Send {
                phase: Phase::Ok, ..
            } => 1,
            Op::Poll {
                phase: Phase::Ok,
                records,
                ..
            } => records.len() as u32,
            _ => continue,
        };
        let second = (event.time_ms.max(0.0) / 1000.0) as usize;
        let series = per_second.entry(event.process.clone()).or_default();
        if series.len() <= second {
            series.resize(second + 1, 0);
        }
        series[second] += count;
    }
    per_second
}

fn latencies(history: &[Event]) -> Vec<(String, f64, f64)> {
    let mut invoked: HashMap<&str, f64> = HashMap::new();
    let mut out = Vec::new();
    for event in history {
        let Op::Send { phase, value, .. } = &event.op else {
            continue;
        };
        match phase {
            Phase::Invoke => {
                invoked.insert(value, event.time_ms);
            }
            _ => {
                if let Some(start) = invoked.remove(value.as_str()) {
                    out.push((event.process.clone(), event.time_ms, event.time_ms - start));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_gap_and_where_it_starts() {
        assert_eq!(longest_gap(&[0.0, 1.0, 5.0, 6.0]), (4.0, 1.0));
        assert_eq!(longest_gap(&[]), (0.0, 0.0));
    }

    #[test]
    fn recovery_ends_with_the_longest_pause_that_began_during_the_fault() {
        let acks = [0.0, 100.0, 200.0, 2_500.0, 2_600.0, 9_000.0];
        // The fault runs from 150 to 2550: the pause 200..2500 began during it; the later
        // pause (2600..9000) began after its end and is not its doing.
        assert_eq!(acked_again(&acks, 150.0, 2_550.0), 2_350.0);
        assert_eq!(acked_again(&[0.0, 10.0, 20.0], 5.0, 15.0), 15.0);
    }
}
