//! The independent record: one JSON line per event, appended by the worker processes' handlers
//! and write observer (one file per worker incarnation, `O_APPEND`, one `write` per line, no
//! buffering), read back by the checker. It owes nothing to Redis, so it can contradict it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One line of a record file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Line {
    /// A handler began an attempt.
    Start {
        id: String,
        token: String,
        attempt: u32,
        worker: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u32>,
        t_us: u64,
    },
    /// A handler returned (`ok`: it returned success).
    End {
        id: String,
        token: String,
        ok: bool,
        t_us: u64,
    },
    /// The engine wrote the attempt's outcome (`ack`, `fail`, `hand back`) and Redis said
    /// `accepted`, `refused` (fencing) or nothing (`unanswered`).
    Write {
        id: String,
        token: String,
        write: String,
        outcome: String,
        t_us: u64,
    },
}

/// Microseconds since the Unix epoch (wall clock; every process runs on this machine).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Appends lines to one record file; each line is one `write(2)` on an `O_APPEND` file, so a
/// SIGKILL leaves at most the last line cut short.
#[derive(Debug)]
pub struct Recorder {
    file: Mutex<File>,
}

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Writes one line now. A record that cannot be written is fatal for a chaos worker: the
    /// checker would report runs as missing, so the caller aborts the process.
    pub fn write(&self, line: &Line) -> std::io::Result<()> {
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(text.as_bytes())
    }
}

/// Every line of a record file, and how many lines could not be parsed (at most the last one of
/// a killed process is expected).
pub fn read(path: &Path) -> std::io::Result<(Vec<Line>, usize)> {
    let mut lines = Vec::new();
    let mut torn = 0;
    for raw in BufReader::new(File::open(path)?).lines() {
        let raw = raw?;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&raw) {
            Ok(line) => lines.push(line),
            Err(_) => torn += 1,
        }
    }
    Ok((lines, torn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_a_torn_last_line_is_counted_not_fatal() {
        let dir = std::env::temp_dir().join(format!("chaos-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("w.jsonl");
        let _ = std::fs::remove_file(&path);
        let rec = Recorder::create(&path).expect("create");
        let start = Line::Start {
            id: "q.1".into(),
            token: "7".into(),
            attempt: 1,
            worker: "w".into(),
            kind: "serial".into(),
            key: Some("k1".into()),
            seq: Some(3),
            t_us: 10,
        };
        rec.write(&start).expect("write");
        drop(rec);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"ev\":\"end\",\"id\":\"q.").expect("torn");
        let (lines, torn) = read(&path).expect("read");
        assert_eq!(lines, vec![start]);
        assert_eq!(torn, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
