//! What the faults cost the clients. Safety says nothing was lost; these figures say how
//! long clients waited: the longest stretch each process (and each client library) went
//! without a successful operation, how soon after each fault each library succeeded again,
//! and the throughput and latency over time that the report plots.
//!
//! A library's pauses are measured per partition of its producers' acknowledgements as
//! well as over all its operations: a dead node makes only the partitions it led
//! unavailable, and the other partitions' acknowledgements would hide that stall in a
//! library-wide figure.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::history::{Event, Op, Phase};

#[derive(Debug, Clone, Serialize)]
pub struct Liveness {
    pub processes: Vec<ProcessFigures>,
    pub libraries: BTreeMap<String, LibraryFigures>,
    pub faults: Vec<FaultFigures>,
    /// Per process, index = second of the run: acknowledged sends plus records read (a
    /// poll counts as the records it returned, so producers and consumers share a scale).
    pub throughput: BTreeMap<String, Vec<u32>>,
    /// Every completed send and commit. Only the HTML plots them: in report.json they
    /// would add megabytes.
    #[serde(skip)]
    pub latencies: Vec<Latency>,
}

/// A stretch without success: how long, and from when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Gap {
    pub ms: f64,
    pub from_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessFigures {
    pub process: String,
    pub client: String,
    pub ok_operations: usize,
    /// Between consecutive successful operations.
    pub longest_gap: Gap,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LibraryFigures {
    /// Between consecutive successful operations of any of the library's processes.
    pub longest_gap: Gap,
    /// The longest time one partition went without an acknowledgement from the library's
    /// producers, and which partition (none without producers).
    pub longest_ack_gap: Gap,
    pub longest_ack_gap_partition: Option<i32>,
    /// Over the faults, of [`FaultFigures::acked_again_ms`].
    pub median_fault_recovery_ms: f64,
    pub max_fault_recovery_ms: f64,
    /// Faults after which some partition of this library was never acknowledged again.
    pub faults_never_recovered: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultFigures {
    pub fault: String,
    pub nodes: Vec<u8>,
    pub start_ms: f64,
    /// When it was healed (none if the history ends first).
    pub end_ms: Option<f64>,
    /// Per library: from the fault's start to the library's first successful operation
    /// after it.
    pub first_ok_after_ms: BTreeMap<String, f64>,
    /// Per library: from the fault's start to the end of the longest pause in one
    /// partition's acknowledgements that began during the fault (0 when none paused;
    /// absent when a partition was never acknowledged again).
    pub acked_again_ms: BTreeMap<String, Option<f64>>,
}

/// One completed operation, for the latency plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub process: String,
    /// "send" or "commit".
    pub kind: &'static str,
    pub phase: Phase,
    pub completed_ms: f64,
    pub ms: f64,
}

pub fn measure(history: &[Event]) -> Liveness {
    let acks = ack_times(history);
    let faults = fault_figures(history, &acks);
    Liveness {
        processes: process_figures(history),
        libraries: library_figures(history, &acks, &faults),
        faults,
        throughput: throughput(history),
        latencies: latencies(history),
    }
}

fn process_figures(history: &[Event]) -> Vec<ProcessFigures> {
    let mut times: BTreeMap<&str, (&str, Vec<f64>)> = BTreeMap::new();
    for event in history.iter().filter(|e| e.is_ok_operation()) {
        times
            .entry(&event.process)
            .or_insert((&event.client, Vec::new()))
            .1
            .push(event.time_ms);
    }
    times
        .into_iter()
        .map(|(process, (client, times))| ProcessFigures {
            process: process.to_string(),
            client: client.to_string(),
            ok_operations: times.len(),
            longest_gap: longest_gap(&times),
        })
        .collect()
}

/// The longest gap between consecutive times (ascending).
fn longest_gap(times: &[f64]) -> Gap {
    let start = Gap {
        ms: 0.0,
        from_ms: times.first().copied().unwrap_or(0.0),
    };
    times
        .windows(2)
        .map(|w| Gap {
            ms: w[1] - w[0],
            from_ms: w[0],
        })
        .fold(start, |best, gap| if gap.ms > best.ms { gap } else { best })
}

/// Acknowledgement times per (client library, partition), ascending.
type AckTimes = BTreeMap<(String, i32), Vec<f64>>;

fn ack_times(history: &[Event]) -> AckTimes {
    let mut acks = AckTimes::new();
    for event in history {
        if let Some((partition, _, _)) = event.ack() {
            acks.entry((event.client.clone(), partition))
                .or_default()
                .push(event.time_ms);
        }
    }
    acks
}

fn fault_figures(history: &[Event], acks: &AckTimes) -> Vec<FaultFigures> {
    let mut faults = fault_windows(history);
    let ok_times = ok_times_by_library(history);
    for fault in &mut faults {
        for (library, times) in &ok_times {
            let first = times.partition_point(|t| *t < fault.start_ms);
            if let Some(t) = times.get(first) {
                fault
                    .first_ok_after_ms
                    .insert(library.clone(), t - fault.start_ms);
            }
        }
        let end = fault.end_ms.unwrap_or(f64::INFINITY);
        for ((library, _), times) in acks {
            let again = acked_again(times, fault.start_ms, end);
            let worst = fault
                .acked_again_ms
                .entry(library.clone())
                .or_insert(Some(0.0));
            *worst = match (*worst, again) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
    }
    faults
}

/// Fault windows from the nemesis's start and stop lines. A stop closes the latest open
/// window of the same fault on the same nodes, so overlapping faults pair up correctly.
fn fault_windows(history: &[Event]) -> Vec<FaultFigures> {
    let mut faults: Vec<FaultFigures> = Vec::new();
    for event in history {
        let Op::Fault { fault, nodes } = &event.op else {
            continue;
        };
        if event.phase == Phase::Invoke {
            faults.push(FaultFigures {
                fault: fault.clone(),
                nodes: nodes.clone(),
                start_ms: event.time_ms,
                end_ms: None,
                first_ok_after_ms: BTreeMap::new(),
                acked_again_ms: BTreeMap::new(),
            });
            continue;
        }
        let open = |f: &&mut FaultFigures| f.end_ms.is_none();
        let same = faults
            .iter_mut()
            .rev()
            .filter(open)
            .find(|f| &f.fault == fault && &f.nodes == nodes);
        if let Some(window) = same {
            window.end_ms = Some(event.time_ms);
        }
    }
    faults
}

/// Successful operation times per client library, ascending.
fn ok_times_by_library(history: &[Event]) -> BTreeMap<String, Vec<f64>> {
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for event in history.iter().filter(|e| e.is_ok_operation()) {
        times
            .entry(event.client.clone())
            .or_default()
            .push(event.time_ms);
    }
    times
}

/// From `start` to the end of the longest pause in `times` that began before `end`
/// (pauses are counted from `start` at the earliest); `None` if the last such pause never
/// ended.
fn acked_again(times: &[f64], start: f64, end: f64) -> Option<f64> {
    let after = &times[times.partition_point(|t| *t <= start)..];
    let mut pause_start = start;
    let mut longest = (0.0, start);
    for &t in after {
        if pause_start > end {
            return Some(longest.1 - start);
        }
        if t - pause_start > longest.0 {
            longest = (t - pause_start, t);
        }
        pause_start = t;
    }
    // Out of acknowledgements: recovered if the last one came after the fault was over,
    // or, for a fault the history ends in, if there was one at all.
    let recovered = pause_start > end || (end.is_infinite() && !after.is_empty());
    recovered.then_some(longest.1 - start)
}

fn library_figures(
    history: &[Event],
    acks: &AckTimes,
    faults: &[FaultFigures],
) -> BTreeMap<String, LibraryFigures> {
    let mut figures: BTreeMap<String, LibraryFigures> = ok_times_by_library(history)
        .into_iter()
        .map(|(library, times)| {
            let f = LibraryFigures {
                longest_gap: longest_gap(&times),
                ..LibraryFigures::default()
            };
            (library, f)
        })
        .collect();
    for ((library, partition), times) in acks {
        let f = figures.entry(library.clone()).or_default();
        let gap = longest_gap(times);
        if f.longest_ack_gap_partition.is_none() || gap.ms > f.longest_ack_gap.ms {
            f.longest_ack_gap = gap;
            f.longest_ack_gap_partition = Some(*partition);
        }
    }
    for (library, f) in &mut figures {
        let outcomes: Vec<Option<f64>> = faults
            .iter()
            .filter_map(|fault| fault.acked_again_ms.get(library).copied())
            .collect();
        let mut recoveries: Vec<f64> = outcomes.iter().flatten().copied().collect();
        recoveries.sort_by(f64::total_cmp);
        f.faults_never_recovered = outcomes.len() - recoveries.len();
        f.median_fault_recovery_ms = recoveries.get(recoveries.len() / 2).copied().unwrap_or(0.0);
        f.max_fault_recovery_ms = recoveries.last().copied().unwrap_or(0.0);
    }
    figures
}

fn throughput(history: &[Event]) -> BTreeMap<String, Vec<u32>> {
    let mut per_second: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for event in history {
        let count = match (&event.op, event.phase) {
            (Op::Send { .. }, Phase::Ok) => 1,
            (Op::Poll { .. }, Phase::Ok) => event.records_read().len() as u32,
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

/// Invoke-to-completion times of sends (matched by value) and commits (one at a time per
/// consumer, so matched by process).
fn latencies(history: &[Event]) -> Vec<Latency> {
    let mut invoked: HashMap<(&str, Option<&str>), f64> = HashMap::new();
    let mut out = Vec::new();
    for event in history {
        let (kind, key) = match &event.op {
            Op::Send { value, .. } => ("send", (event.process.as_str(), Some(value.as_str()))),
            Op::Commit { .. } => ("commit", (event.process.as_str(), None)),
            _ => continue,
        };
        if event.phase == Phase::Invoke {
            invoked.insert(key, event.time_ms);
        } else if let Some(start) = invoked.remove(&key) {
            out.push(Latency {
                process: event.process.clone(),
                kind,
                phase: event.phase,
                completed_ms: event.time_ms,
                ms: event.time_ms - start,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_ms: f64, process: &str, phase: Phase, op: Op) -> Event {
        let client = process.split('-').next().unwrap_or(process);
        Event::new(time_ms, process, client, phase, op)
    }

    fn send(time_ms: f64, process: &str, phase: Phase, partition: i32, value: &str) -> Event {
        let offset = (phase == Phase::Ok).then_some(0);
        let op = Op::Send {
            partition: Some(partition),
            offset,
            value: value.into(),
            idempotent: None,
        };
        event(time_ms, process, phase, op)
    }

    fn fault(time_ms: f64, phase: Phase, name: &str, node: u8) -> Event {
        let op = Op::Fault {
            fault: name.into(),
            nodes: vec![node],
        };
        event(time_ms, "nemesis", phase, op)
    }

    /// Sends invoked every 100 ms and acknowledged 50 ms later until 5 s, by rdkafka on
    /// partitions 0 and 1 and by java on partition 0, except that no rdkafka send to
    /// partition 1 is acknowledged between 1.25 s and 3.15 s; a kill lasts from 1.1 s to
    /// 2 s.
    fn run() -> Vec<Event> {
        let mut history = vec![
            fault(1_100.0, Phase::Invoke, "kill", 2),
            fault(2_000.0, Phase::Ok, "kill", 2),
        ];
        for step in 0..50 {
            let t = f64::from(step) * 100.0;
            for (process, partition) in [("rdkafka-p", 0), ("rdkafka-p", 1), ("java-p", 0)] {
                let stalled =
                    process == "rdkafka-p" && partition == 1 && (1_250.0..3_050.0).contains(&t);
                if !stalled {
                    let value = format!("{process}-{partition}-{step}");
                    history.push(send(t, process, Phase::Invoke, partition, &value));
                    history.push(send(t + 50.0, process, Phase::Ok, partition, &value));
                }
            }
        }
        history.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
        history
    }

    #[test]
    fn the_longest_gap_and_where_it_starts() {
        assert_eq!(
            longest_gap(&[0.0, 1.0, 5.0, 6.0]),
            Gap {
                ms: 4.0,
                from_ms: 1.0
            }
        );
        assert_eq!(longest_gap(&[]), Gap::default());
        assert_eq!(
            longest_gap(&[7.0]),
            Gap {
                ms: 0.0,
                from_ms: 7.0
            }
        );
    }

    #[test]
    fn recovery_ends_with_the_longest_pause_that_began_during_the_fault() {
        let acks = [0.0, 100.0, 200.0, 2_500.0, 2_600.0, 9_000.0];
        // The fault runs from 150 to 2550: the pause 200..2500 began during it; the later
        // pause (2600..9000) began after its end and is not its doing.
        assert_eq!(acked_again(&acks, 150.0, 2_550.0), Some(2_350.0));
        assert_eq!(acked_again(&[0.0, 10.0, 20.0], 5.0, 15.0), Some(15.0));
        assert_eq!(
            acked_again(&[0.0, 10.0, 20.0], 30.0, 40.0),
            None,
            "never again"
        );
        assert_eq!(acked_again(&[0.0, 10.0, 20.0], 3.0, 15.0), Some(17.0));
        let unhealed = f64::INFINITY;
        assert_eq!(acked_again(&[0.0, 10.0, 40.0], 5.0, unhealed), Some(35.0));
        assert_eq!(acked_again(&[0.0], 5.0, unhealed), None);
    }

    #[test]
    fn process_figures_find_each_processes_longest_gap() {
        let liveness = measure(&run());
        let rdkafka = &liveness.processes[1];
        assert_eq!(rdkafka.process, "rdkafka-p");
        assert_eq!(rdkafka.ok_operations, 50 + 32);
        assert_eq!(
            rdkafka.longest_gap,
            Gap {
                ms: 100.0,
                from_ms: 50.0
            },
            "partition 0 kept going"
        );
        assert_eq!(liveness.processes[0].process, "java-p");
    }

    #[test]
    fn library_figures_see_the_stalled_partition() {
        let liveness = measure(&run());
        let rdkafka = &liveness.libraries["rdkafka"];
        assert_eq!(rdkafka.longest_gap.ms, 100.0);
        assert_eq!(rdkafka.longest_ack_gap_partition, Some(1));
        assert_eq!(
            rdkafka.longest_ack_gap,
            Gap {
                ms: 1_900.0,
                from_ms: 1_250.0
            }
        );
        assert_eq!(rdkafka.max_fault_recovery_ms, 3_150.0 - 1_100.0);
        let java = &liveness.libraries["java"];
        assert_eq!(java.longest_ack_gap.ms, 100.0);
        assert_eq!(
            java.max_fault_recovery_ms, 150.0,
            "the usual pause, ending at 1.25 s"
        );
        assert!(!liveness.libraries.contains_key("nemesis"));
    }

    #[test]
    fn fault_figures_per_library() {
        let liveness = measure(&run());
        let [kill] = &liveness.faults[..] else {
            panic!("one fault: {:?}", liveness.faults)
        };
        assert_eq!((kill.start_ms, kill.end_ms), (1_100.0, Some(2_000.0)));
        assert_eq!(kill.first_ok_after_ms["rdkafka"], 50.0);
        assert_eq!(kill.first_ok_after_ms["java"], 50.0);
        assert_eq!(kill.acked_again_ms["rdkafka"], Some(2_050.0));
    }

    #[test]
    fn overlapping_faults_pair_by_name_and_nodes() {
        let history = [
            fault(1.0, Phase::Invoke, "kill", 1),
            fault(2.0, Phase::Invoke, "pause", 2),
            fault(3.0, Phase::Ok, "kill", 1),
            fault(4.0, Phase::Invoke, "kill", 3),
            fault(5.0, Phase::Info, "pause", 2),
        ];
        let windows: Vec<(String, f64, Option<f64>)> = fault_windows(&history)
            .into_iter()
            .map(|f| (f.fault, f.start_ms, f.end_ms))
            .collect();
        assert_eq!(
            windows,
            vec![
                ("kill".into(), 1.0, Some(3.0)),
                ("pause".into(), 2.0, Some(5.0)),
                ("kill".into(), 4.0, None),
            ]
        );
    }

    #[test]
    fn throughput_counts_acknowledged_sends_and_records_read_per_second() {
        let mut history = run();
        let records = (0..3)
            .map(|offset| crate::analysis::history::Record {
                partition: 0,
                offset,
                value: Some("v".into()),
            })
            .collect();
        let poll = Op::Poll {
            mode: crate::analysis::history::Mode::Assign,
            group: None,
            records,
        };
        history.push(event(6_500.0, "java-c", Phase::Ok, poll));
        let liveness = measure(&history);
        assert_eq!(liveness.throughput["java-p"], vec![10; 5]);
        assert_eq!(liveness.throughput["rdkafka-p"][0], 20);
        assert_eq!(
            liveness.throughput["rdkafka-p"][2], 10,
            "partition 1 stalled"
        );
        assert_eq!(liveness.throughput["java-c"], vec![0, 0, 0, 0, 0, 0, 3]);
    }

    #[test]
    fn latency_of_every_completed_send_and_commit() {
        let commit = Op::Commit {
            group: "g".into(),
            offsets: BTreeMap::new(),
        };
        let history = [
            send(0.0, "rdkafka-p", Phase::Invoke, 0, "a"),
            send(1.0, "rdkafka-p", Phase::Invoke, 0, "b"),
            send(5.0, "rdkafka-p", Phase::Info, 0, "b"),
            send(9.0, "rdkafka-p", Phase::Ok, 0, "a"),
            send(9.0, "rdkafka-p", Phase::Invoke, 0, "never-completed"),
            event(10.0, "rdkafka-g", Phase::Invoke, commit.clone()),
            event(12.5, "rdkafka-g", Phase::Ok, commit),
        ];
        let ms: Vec<(&str, Phase, f64)> = latencies(&history)
            .iter()
            .map(|l| (l.kind, l.phase, l.ms))
            .collect();
        assert_eq!(
            ms,
            vec![
                ("send", Phase::Info, 4.0),
                ("send", Phase::Ok, 9.0),
                ("commit", Phase::Ok, 2.5)
            ]
        );
    }

    #[test]
    fn an_empty_history_measures_nothing() {
        let liveness = measure(&[]);
        assert!(liveness.processes.is_empty() && liveness.faults.is_empty());
        assert!(liveness.libraries.is_empty() && liveness.throughput.is_empty());
    }
}
