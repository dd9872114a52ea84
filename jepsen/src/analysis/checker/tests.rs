//! One hand-made history per anomaly, each proving the anomaly is caught and counted
//! exactly, plus histories that must pass.

use std::collections::BTreeMap;

use super::*;
use crate::analysis::history::{Event, Mode, Op, Phase, Record};

/// A hand-made history, one builder call per line; time advances 1 ms per line.
#[derive(Default)]
struct History(Vec<Event>);

impl History {
    fn push(&mut self, process: &str, phase: Phase, op: Op) -> &mut Self {
        let time_ms = self.0.len() as f64;
        self.0
            .push(Event::new(time_ms, process, "rdkafka", phase, op));
        self
    }

    fn invoke(&mut self, process: &str, partition: i32, value: &str) -> &mut Self {
        self.push(process, Phase::Invoke, send(partition, value, None))
    }

    fn ack(&mut self, process: &str, partition: i32, offset: i64, value: &str) -> &mut Self {
        self.push(process, Phase::Ok, send(partition, value, Some(offset)))
    }

    fn ended(&mut self, process: &str, phase: Phase, partition: i32, value: &str) -> &mut Self {
        self.push(process, phase, send(partition, value, None))
    }

    fn sent(&mut self, process: &str, partition: i32, offset: i64, value: &str) -> &mut Self {
        self.invoke(process, partition, value)
            .ack(process, partition, offset, value)
    }

    fn poll(&mut self, process: &str, mode: Mode, records: &[(i32, i64, &str)]) -> &mut Self {
        let records = records
            .iter()
            .map(|&(partition, offset, value)| Record {
                partition,
                offset,
                value: Some(value.into()),
            })
            .collect();
        let group = (mode == Mode::Subscribe).then(|| "g".to_string());
        self.push(
            process,
            Phase::Ok,
            Op::Poll {
                mode,
                group,
                records,
            },
        )
    }

    fn final_read(&mut self, records: &[(i32, i64, &str)]) -> &mut Self {
        self.poll("final", Mode::Final, records)
    }

    fn assign(&mut self, process: &str, mode: Mode, phase: Phase, partitions: &[i32]) -> &mut Self {
        let group = (mode == Mode::Subscribe).then(|| "g".to_string());
        self.push(
            process,
            phase,
            Op::Assign {
                mode,
                group,
                partitions: partitions.to_vec(),
            },
        )
    }

    fn commit(&mut self, process: &str, phase: Phase, partition: i32, offset: i64) -> &mut Self {
        let offsets = BTreeMap::from([(partition.to_string(), offset)]);
        self.push(
            process,
            phase,
            Op::Commit {
                group: "g".into(),
                offsets,
            },
        )
    }

    fn fault(&mut self, phase: Phase) -> &mut Self {
        self.push(
            "nemesis",
            phase,
            Op::Fault {
                fault: "kill".into(),
                nodes: vec![1],
            },
        )
    }

    fn check(&self) -> CheckResult {
        check(&self.0)
    }
}

fn send(partition: i32, value: &str, offset: Option<i64>) -> Op {
    Op::Send {
        partition: Some(partition),
        offset,
        value: value.into(),
        idempotent: None,
    }
}

/// Three writes over two partitions, all read back by the final reads.
fn clean() -> History {
    let mut h = History::default();
    h.sent("p", 0, 0, "a")
        .sent("p", 0, 1, "b")
        .sent("p", 1, 0, "c");
    h.final_read(&[(0, 0, "a"), (0, 1, "b"), (1, 0, "c")]);
    h
}

#[test]
fn a_clean_history_is_valid() {
    let result = clean().check();
    assert_eq!(result.found(), vec![]);
    assert!(result.valid);
    assert_eq!(result.acknowledged_writes, 3);
}

#[test]
fn an_empty_history_is_valid() {
    let result = History::default().check();
    assert!(result.valid);
    assert_eq!(result.acknowledged_writes, 0);
    assert_eq!(
        result.anomalies.len(),
        Anomaly::ALL.len(),
        "every kind is listed"
    );
}

#[test]
fn acknowledged_writes_missing_below_the_highest_read_are_lost() {
    let mut h = History::default();
    h.sent("p", 0, 0, "a")
        .sent("p", 0, 1, "b")
        .sent("p", 0, 2, "c")
        .sent("p", 0, 3, "d");
    h.final_read(&[(0, 0, "a"), (0, 3, "d")]);
    let result = h.check();
    assert_eq!(result.found(), vec![(Anomaly::Lost, 2)]);
    let lost = &result.anomalies[&Anomaly::Lost].examples;
    assert_eq!(lost[0].value.as_deref(), Some("b"));
    assert_eq!(lost[0].offset, Some(1));
    assert_eq!(lost[0].processes, vec!["p".to_string()]);
    assert_eq!(lost[1].value.as_deref(), Some("c"));
    assert!(!result.valid);
}

#[test]
fn acknowledged_writes_no_read_reached_are_unseen() {
    let mut h = History::default();
    h.sent("p", 0, 0, "a")
        .sent("p", 0, 1, "b")
        .sent("p", 1, 0, "c");
    h.final_read(&[(0, 0, "a")]);
    let result = h.check();
    assert_eq!(result.found(), vec![(Anomaly::Unseen, 2)]);
    assert!(!result.valid);
}

#[test]
fn a_value_at_two_offsets_sent_once_is_an_unexplained_duplicate() {
    let mut h = History::default();
    h.sent("p", 0, 0, "a").sent("p", 0, 2, "b");
    h.final_read(&[(0, 0, "a"), (0, 1, "a"), (0, 2, "b")]);
    let result = h.check();
    assert_eq!(result.found(), vec![(Anomaly::DuplicateUnexplained, 1)]);
    let example = &result.anomalies[&Anomaly::DuplicateUnexplained].examples[0];
    assert_eq!((example.partition, example.offset), (0, Some(0)));
    assert!(example.detail.contains("0:0, 0:1"), "{}", example.detail);
    assert!(!result.valid);
}

#[test]
fn a_value_the_application_sent_twice_is_an_explained_duplicate() {
    let mut h = History::default();
    h.invoke("p", 0, "a")
        .ended("p", Phase::Info, 0, "a")
        .sent("p", 0, 1, "a");
    h.final_read(&[(0, 0, "a"), (0, 1, "a")]);
    let result = h.check();
    assert_eq!(result.found(), vec![(Anomaly::DuplicateExplained, 1)]);
    assert!(result.valid, "a resend the client asked for explains it");
}

#[test]
fn an_indeterminate_send_explains_a_duplicate_only_for_a_non_idempotent_producer() {
    let history = |idempotent: Option<bool>| {
        let mut h = History::default();
        let op = |offset| Op::Send {
            partition: Some(0),
            offset,
            value: "a".into(),
            idempotent,
        };
        h.push("p", Phase::Invoke, op(None))
            .push("p", Phase::Info, op(None));
        h.final_read(&[(0, 0, "a"), (0, 1, "a")]);
        h
    };
    assert_eq!(
        history(Some(false)).check().found(),
        vec![(Anomaly::DuplicateExplained, 1)]
    );
    assert_eq!(
        history(None).check().found(),
        vec![(Anomaly::DuplicateUnexplained, 1)],
        "an idempotent producer must never write twice"
    );
}

#[test]
fn an_acknowledgement_and_a_read_at_different_offsets_count_as_a_duplicate() {
    let mut h = History::default();
    h.sent("p", 0, 0, "a");
    h.final_read(&[(0, 0, "a"), (0, 1, "a")]);
    let mut acked_elsewhere = History::default();
    acked_elsewhere.sent("p", 0, 1, "a");
    acked_elsewhere.final_read(&[(0, 0, "a"), (0, 1, "a")]);
    assert_eq!(h.check().count(Anomaly::DuplicateUnexplained), 1);
    assert_eq!(
        acked_elsewhere.check().count(Anomaly::DuplicateUnexplained),
        1
    );
}

#[test]
fn one_offset_read_with_two_values_is_inconsistent() {
    let mut h = History::default();
    h.sent("p", 0, 0, "a").sent("p", 0, 1, "b");
    h.poll("c1", Mode::Assign, &[(0, 0, "a"), (0, 1, "b")]);
    h.poll("c2", Mode::Assign, &[(0, 0, "a"), (0, 1, "x")]);
    let result = h.check();
    assert_eq!(result.found(), vec![(Anomaly::InconsistentOffset, 1)]);
    let example = &result.anomalies[&Anomaly::InconsistentOffset].examples[0];
    assert_eq!((example.partition, example.offset), (0, Some(1)));
    assert_eq!(example.processes, vec!["c1", "c2", "p"]);
}

#[test]
fn an_acknowledgement_contradicting_the_reads_is_inconsistent_and_lost() {
    let mut h = History::default();
    h.sent("p", 0, 0, "a")
        .sent("q", 0, 0, "z")
        .sent("p", 0, 1, "b");
    h.final_read(&[(0, 0, "a"), (0, 1, "b")]);
    let result = h.check();
    assert_eq!(
        result.found(),
        vec![(Anomaly::Lost, 1), (Anomaly::InconsistentOffset, 1)]
    );
}

#[test]
fn a_failed_write_that_is_read_is_reported() {
    let mut h = History::default();
    h.invoke("p", 0, "a").ended("p", Phase::Fail, 0, "a");
    h.invoke("p", 0, "b").ended("p", Phase::Fail, 0, "b");
    h.final_read(&[(0, 0, "a")]);
    let result = h.check();
    assert_eq!(result.found(), vec![(Anomaly::ReadOfFailedWrite, 1)]);
    let example = &result.anomalies[&Anomaly::ReadOfFailedWrite].examples[0];
    assert_eq!(example.processes, vec!["p", "final"]);
}

#[test]
fn a_failed_send_that_was_resent_successfully_may_be_read() {
    let mut h = History::default();
    h.invoke("p", 0, "a")
        .ended("p", Phase::Fail, 0, "a")
        .sent("p", 0, 0, "a");
    h.final_read(&[(0, 0, "a")]);
    assert_eq!(h.check().found(), vec![]);
}

#[test]
fn indeterminate_writes_may_show_up_or_not() {
    let mut h = History::default();
    h.invoke("p", 0, "a").ended("p", Phase::Info, 0, "a");
    h.invoke("p", 0, "b").ended("p", Phase::Info, 0, "b");
    h.invoke("p", 0, "c"); // never completed: the producer died
    h.final_read(&[(0, 0, "a")]);
    let result = h.check();
    assert_eq!(result.found(), vec![]);
    assert!(result.valid);
}

#[test]
fn later_sends_acknowledged_at_lower_offsets_are_non_monotonic() {
    let mut h = History::default();
    h.invoke("p", 0, "a")
        .invoke("p", 0, "b")
        .invoke("p", 0, "c");
    h.ack("p", 0, 5, "a")
        .ack("p", 0, 3, "b")
        .ack("p", 0, 4, "c");
    h.final_read(&[(0, 3, "b"), (0, 4, "c"), (0, 5, "a")]);
    let result = h.check();
    assert_eq!(
        result.found(),
        vec![(Anomaly::NonMonotonicSend, 2)],
        "b and c were both sent after a and acknowledged below it"
    );
}

#[test]
fn acknowledgements_completing_out_of_order_are_fine_if_offsets_follow_the_sends() {
    let mut h = History::default();
    h.invoke("p", 0, "a")
        .invoke("p", 0, "b")
        .invoke("q", 0, "c");
    h.ack("p", 0, 1, "b")
        .ack("q", 0, 2, "c")
        .ack("p", 0, 0, "a");
    h.final_read(&[(0, 0, "a"), (0, 1, "b"), (0, 2, "c")]);
    assert_eq!(h.check().found(), vec![]);
}

#[test]
fn an_assigned_consumer_reading_backwards_is_non_monotonic() {
    let mut h = clean();
    h.poll("c", Mode::Assign, &[(0, 0, "a"), (0, 1, "b"), (1, 0, "c")]);
    h.poll("c", Mode::Assign, &[(0, 0, "a"), (0, 1, "b"), (1, 0, "c")]);
    let result = h.check();
    assert_eq!(
        result.found(),
        vec![(Anomaly::NonMonotonicPoll, 2)],
        "one step back in each partition"
    );
}

#[test]
fn a_seek_or_reassignment_allows_reading_back() {
    let mut h = clean();
    h.poll("c", Mode::Assign, &[(0, 0, "a"), (0, 1, "b"), (1, 0, "c")]);
    h.assign("c", Mode::Assign, Phase::Ok, &[0]);
    h.poll("c", Mode::Assign, &[(0, 0, "a")]);
    h.poll("c", Mode::Assign, &[(1, 0, "c")]);
    assert_eq!(
        h.check().found(),
        vec![(Anomaly::NonMonotonicPoll, 1)],
        "the seek covered partition 0 only"
    );
}

#[test]
fn group_members_may_read_back_without_a_seek() {
    let mut h = clean();
    h.poll("g1", Mode::Subscribe, &[(0, 0, "a"), (0, 1, "b")]);
    h.poll("g1", Mode::Subscribe, &[(0, 0, "a")]);
    assert!(h.check().valid);
}

#[test]
fn a_group_member_starting_below_the_committed_offset_is_reported() {
    let mut h = clean();
    h.assign("g1", Mode::Subscribe, Phase::Ok, &[0]);
    h.poll("g1", Mode::Subscribe, &[(0, 0, "a"), (0, 1, "b")]);
    h.commit("g1", Phase::Ok, 0, 2);
    h.assign("g1", Mode::Subscribe, Phase::Revoke, &[0]);
    h.assign("g2", Mode::Subscribe, Phase::Ok, &[0]);
    h.poll("g2", Mode::Subscribe, &[(0, 1, "b")]);
    let result = h.check();
    assert_eq!(result.found(), vec![(Anomaly::ResumedBelowCommitted, 1)]);
    let example = &result.anomalies[&Anomaly::ResumedBelowCommitted].examples[0];
    assert_eq!(example.processes, vec!["g2"]);
    assert_eq!(example.offset, Some(1));
}

#[test]
fn a_group_member_starting_at_the_committed_offset_is_fine() {
    let mut h = clean();
    h.assign("g1", Mode::Subscribe, Phase::Ok, &[0]);
    h.poll("g1", Mode::Subscribe, &[(0, 0, "a")]);
    h.commit("g1", Phase::Ok, 0, 1);
    h.assign("g2", Mode::Subscribe, Phase::Ok, &[0]);
    h.poll("g2", Mode::Subscribe, &[(0, 1, "b")]);
    assert_eq!(h.check().found(), vec![]);
}

#[test]
fn only_acknowledged_commits_before_the_assignment_bind_the_new_member() {
    let mut h = clean();
    h.commit("g1", Phase::Info, 0, 2); // may not have happened
    h.assign("g2", Mode::Subscribe, Phase::Ok, &[0]);
    h.commit("g1", Phase::Ok, 0, 2); // after the assignment: a zombie's late commit
    h.poll("g2", Mode::Subscribe, &[(0, 0, "a")]);
    assert_eq!(h.check().found(), vec![]);
}

#[test]
fn only_the_first_read_after_each_assignment_is_held_to_the_commit() {
    let mut h = clean();
    h.commit("g1", Phase::Ok, 0, 1);
    h.assign("g2", Mode::Subscribe, Phase::Ok, &[0]);
    h.poll("g2", Mode::Subscribe, &[(0, 1, "b")]);
    h.poll("g2", Mode::Subscribe, &[(0, 0, "a")]); // not the first read
    h.assign("g2", Mode::Subscribe, Phase::Revoke, &[0]);
    h.poll("g2", Mode::Subscribe, &[(0, 0, "a")]); // no longer awaited
    h.assign("g3", Mode::Subscribe, Phase::Ok, &[0]);
    h.poll("g3", Mode::Subscribe, &[(0, 0, "a")]); // below the commit
    assert_eq!(h.check().found(), vec![(Anomaly::ResumedBelowCommitted, 1)]);
}

#[test]
fn reads_across_a_fault_are_judged_like_any_other() {
    let mut h = History::default();
    h.sent("p", 0, 0, "a").sent("p", 0, 1, "b");
    h.poll("c", Mode::Assign, &[(0, 0, "a")]);
    h.fault(Phase::Invoke);
    h.invoke("p", 0, "c").ended("p", Phase::Info, 0, "c");
    h.invoke("p", 0, "d");
    h.poll("c", Mode::Assign, &[(0, 1, "b")]);
    h.fault(Phase::Ok);
    h.ack("p", 0, 3, "d");
    h.poll("c", Mode::Assign, &[(0, 2, "c"), (0, 3, "d")]);
    h.final_read(&[(0, 0, "a"), (0, 1, "b"), (0, 2, "c"), (0, 3, "d")]);
    let result = h.check();
    assert_eq!(result.found(), vec![]);
    assert_eq!(result.acknowledged_writes, 3);

    // The same run where the fault lost b, acknowledged before it.
    let mut lossy = History::default();
    lossy.sent("p", 0, 0, "a").sent("p", 0, 1, "b");
    lossy.fault(Phase::Invoke).fault(Phase::Ok);
    lossy.sent("q", 0, 1, "c").sent("q", 0, 2, "d");
    lossy.final_read(&[(0, 0, "a"), (0, 1, "c"), (0, 2, "d")]);
    assert_eq!(
        lossy.check().found(),
        vec![(Anomaly::Lost, 1), (Anomaly::InconsistentOffset, 1)]
    );
}

#[test]
fn counts_are_exact_while_examples_are_capped() {
    let mut h = History::default();
    for offset in 0..25 {
        h.sent("p", 0, offset, &format!("v{offset}"));
    }
    h.final_read(&[(0, 25, "later")]);
    let result = h.check();
    assert_eq!(result.found(), vec![(Anomaly::Lost, 25)]);
    assert_eq!(result.anomalies[&Anomaly::Lost].examples.len(), EXAMPLES);
}
