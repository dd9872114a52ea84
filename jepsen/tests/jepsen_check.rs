//! `jepsen-check` end to end: a history file in, the summary line and the report path
//! out, and an exit code a script can trust.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jepsen-check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary; returns (exit code, stdout lines).
fn check(history: &Path, out: &Path) -> (i32, Vec<String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_jepsen-check"))
        .arg(history)
        .arg("--out")
        .arg(out)
        .args(["--seed", "9"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (
        output.status.code().unwrap(),
        stdout.lines().map(str::to_string).collect(),
    )
}

const WRITES: &str = r#"{"time_ms":0,"process":"rdkafka-producer-0","client":"rdkafka","kind":"send","type":"invoke","partition":0,"value":"a"}
{"time_ms":5,"process":"rdkafka-producer-0","client":"rdkafka","kind":"send","type":"ok","partition":0,"offset":0,"value":"a"}
{"time_ms":6,"process":"rdkafka-producer-0","client":"rdkafka","kind":"send","type":"invoke","partition":0,"value":"b"}
{"time_ms":9,"process":"rdkafka-producer-0","client":"rdkafka","kind":"send","type":"ok","partition":0,"offset":1,"value":"b"}
"#;

#[test]
fn a_valid_history_exits_zero_and_prints_the_report_path_last() {
    let dir = scratch("valid");
    let history = dir.join("history.jsonl");
    let read = r#"{"time_ms":20,"process":"final-reader","client":"rdkafka","kind":"poll","type":"ok","mode":"final","records":[{"partition":0,"offset":0,"value":"a"},{"partition":0,"offset":1,"value":"b"}]}"#;
    std::fs::write(&history, format!("{WRITES}{read}\n")).unwrap();
    let (code, lines) = check(&history, &dir.join("report"));
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines[0].starts_with("valid: 2 acknowledged writes"),
        "{lines:?}"
    );
    let json = dir.join("report/report.json");
    assert_eq!(lines.last().map(PathBuf::from), Some(json.clone()));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(report["seed"], 9);
    assert!(dir.join("report/report.html").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_invalid_history_exits_one() {
    let dir = scratch("invalid");
    let history = dir.join("history.jsonl");
    let read = r#"{"time_ms":20,"process":"final-reader","client":"rdkafka","kind":"poll","type":"ok","mode":"final","records":[{"partition":0,"offset":1,"value":"b"}]}"#;
    std::fs::write(&history, format!("{WRITES}{read}\n")).unwrap();
    let (code, lines) = check(&history, &dir);
    assert_eq!(code, 1);
    assert_eq!(lines[0], "INVALID: 1 lost write (of 2 acknowledged writes)");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unreadable_history_exits_two_without_a_report() {
    let dir = scratch("unreadable");
    let history = dir.join("history.jsonl");
    std::fs::write(&history, format!("not json\n{WRITES}")).unwrap();
    let (code, lines) = check(&history, &dir);
    assert_eq!(code, 2);
    assert!(lines.is_empty());
    assert!(!dir.join("report.json").exists());
    let (code, _) = check(&dir.join("missing.jsonl"), &dir);
    assert_eq!(code, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
