//! The benchmark's table and JSON.

use serde::Serialize;
use serde_json::{Value, json};

use crate::engine::Settings;

/// One measured line.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    /// Tasks (or requests) per second, when the row is a throughput.
    pub per_sec: Option<f64>,
    /// Latency percentiles in ms, when the row is a latency.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// A dimensionless ratio between two rows of the same run.
    pub ratio: Option<f64>,
    /// A memory figure, MiB.
    pub mib: Option<f64>,
    /// Free-form context (counts, settings, ratios).
    pub note: String,
}

impl Row {
    fn base(name: impl Into<String>, note: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            per_sec: None,
            p50_ms: None,
            p99_ms: None,
            ratio: None,
            mib: None,
            note: note.into(),
        }
    }

    pub fn rate(name: impl Into<String>, per_sec: f64, note: impl Into<String>) -> Self {
        Self {
            per_sec: Some(per_sec),
            ..Self::base(name, note)
        }
    }

    pub fn ratio(name: impl Into<String>, ratio: f64, note: impl Into<String>) -> Self {
        Self {
            ratio: Some(ratio),
            ..Self::base(name, note)
        }
    }

    pub fn memory(name: impl Into<String>, mib: f64, note: impl Into<String>) -> Self {
        Self {
            mib: Some(mib),
            ..Self::base(name, note)
        }
    }

    pub fn latency(name: impl Into<String>, p50: f64, p99: f64, note: impl Into<String>) -> Self {
        Self {
            p50_ms: Some(p50),
            p99_ms: Some(p99),
            ..Self::base(name, note)
        }
    }
}

pub fn print(rows: &[Row]) {
    println!(
        "\n{:<44} {:>12} {:>9} {:>9}  note",
        "benchmark", "value", "p50 ms", "p99 ms"
    );
    println!("{}", "-".repeat(110));
    let f = |v: Option<f64>, p: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.p$}"));
    for r in rows {
        let first = match (r.ratio, r.mib) {
            (Some(x), _) => format!("{x:.2}x"),
            (None, Some(m)) => format!("{m:.0} MiB"),
            _ => f(r.per_sec, 0),
        };
        println!(
            "{:<44} {:>12} {:>9} {:>9}  {}",
            r.name,
            first,
            f(r.p50_ms, 2),
            f(r.p99_ms, 2),
            r.note
        );
    }
}

pub fn json(rows: &[Row], cfg: &Settings, suite: &str) -> Value {
    json!({
        "suite": suite,
        "tasks_per_run": cfg.tasks,
        "latency_samples": cfg.samples,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "rows": rows,
    })
}
