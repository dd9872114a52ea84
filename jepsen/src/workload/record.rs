//! How a client process writes its part of the history: one JSON object per line, flushed
//! per line so a client killed mid-run leaves a readable file. Times are milliseconds
//! since the run's start (`epoch_ms`, passed to every client), so the histories of
//! separate processes merge on one clock.
//!
//! The line format is the history format (`crate::history`); the Java client prints the
//! same objects.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub struct Recorder {
    out: Mutex<BufWriter<File>>,
    epoch_ms: f64,
    process: String,
    client: String,
}

pub fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        * 1000.0
}

impl Recorder {
    pub fn create(
        path: &Path,
        epoch_ms: f64,
        process: &str,
        client: &str,
    ) -> std::io::Result<Self> {
        Ok(Recorder {
            out: Mutex::new(BufWriter::new(File::create(path)?)),
            epoch_ms,
            process: process.to_string(),
            client: client.to_string(),
        })
    }

    /// Writes one event: `kind` and `type` plus the event's own fields.
    pub fn event(&self, kind: &str, phase: &str, fields: Value) {
        let mut line = json!({
            "time_ms": unix_ms() - self.epoch_ms,
            "process": self.process,
            "client": self.client,
            "kind": kind,
            "type": phase,
        });
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A full disk loses history lines; the checker then reports unseen writes, which
        // is the safe direction.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}
