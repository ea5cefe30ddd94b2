//! The `inspect` tables that `worker inspect` and `broker inspect` share: one column layout each,
//! fed rows built from whichever view of the fleet the binary reads.

use std::io::{self, Write};

/// One task a worker runs (`active`) or holds ahead of a free slot (`reserved`).
#[derive(Debug, Clone, Copy)]
pub struct RunningRow<'a> {
    pub worker: &'a str,
    pub task: &'a str,
    pub kind: &'a str,
    pub attempt: u32,
    /// When it started (or was fetched), ms since the epoch.
    pub since_ms: u64,
}

/// `inspect active|reserved`: one line per task, then the number of workers.
pub fn write_running<'a>(
    out: &mut impl Write,
    rows: impl IntoIterator<Item = RunningRow<'a>>,
    workers: usize,
    now_ms: u64,
) -> io::Result<()> {
    writeln!(
        out,
        "{:<32} {:<48} {:<10} {:>7} {:>9}",
        "WORKER", "TASK", "KIND", "ATTEMPT", "FOR"
    )?;
    for r in rows {
        let secs = now_ms.saturating_sub(r.since_ms) as f64 / 1000.0;
        writeln!(
            out,
            "{:<32} {:<48} {:<10} {:>7} {:>8.1}s",
            r.worker, r.task, r.kind, r.attempt, secs
        )?;
    }
    writeln!(out, "({workers} workers)")
}

/// One worker's slots and counters.
#[derive(Debug, Clone)]
pub struct WorkerRow<'a> {
    pub id: &'a str,
    pub queues: String,
    pub active: usize,
    pub concurrency: usize,
    pub processed: u64,
    pub succeeded: u64,
    pub retried: u64,
    /// Dead and failed for good.
    pub dead: u64,
    pub state: &'a str,
}

/// The worker half of `inspect stats`.
pub fn write_workers<'a>(
    out: &mut impl Write,
    rows: impl IntoIterator<Item = WorkerRow<'a>>,
) -> io::Result<()> {
    writeln!(
        out,
        "{:<32} {:<20} {:>6} {:>6} {:>9} {:>9} {:>7} {:>6} {:>9}",
        "WORKER", "QUEUES", "ACTIVE", "CONC", "PROCESSED", "SUCCEEDED", "RETRIED", "DEAD", "STATE"
    )?;
    for w in rows {
        writeln!(
            out,
            "{:<32} {:<20} {:>6} {:>6} {:>9} {:>9} {:>7} {:>6} {:>9}",
            w.id,
            w.queues,
            w.active,
            w.concurrency,
            w.processed,
            w.succeeded,
            w.retried,
            w.dead,
            w.state
        )?;
    }
    Ok(())
}

/// One queue's depths and its two main counters.
#[derive(Debug, Clone, Copy)]
pub struct QueueRow<'a> {
    pub queue: &'a str,
    pub queued: u64,
    pub scheduled: u64,
    pub running: u64,
    pub dead: u64,
    pub enqueued: u64,
    pub succeeded: u64,
}

/// The queue half of `inspect stats`.
pub fn write_queue_depths<'a>(
    out: &mut impl Write,
    rows: impl IntoIterator<Item = QueueRow<'a>>,
) -> io::Result<()> {
    writeln!(
        out,
        "{:<20} {:>8} {:>9} {:>8} {:>6} {:>10} {:>10}",
        "QUEUE", "QUEUED", "SCHEDULED", "RUNNING", "DEAD", "ENQUEUED", "SUCCEEDED"
    )?;
    for q in rows {
        writeln!(
            out,
            "{:<20} {:>8} {:>9} {:>8} {:>6} {:>10} {:>10}",
            q.queue, q.queued, q.scheduled, q.running, q.dead, q.enqueued, q.succeeded
        )?;
    }
    Ok(())
}

/// One dead-lettered task.
#[derive(Debug, Clone)]
pub struct DeadRow<'a> {
    pub task: &'a str,
    pub kind: &'a str,
    pub state: String,
    pub attempts: u32,
    pub error: &'a str,
}

/// `inspect dead`.
pub fn write_dead<'a>(
    out: &mut impl Write,
    rows: impl IntoIterator<Item = DeadRow<'a>>,
) -> io::Result<()> {
    writeln!(
        out,
        "{:<48} {:<10} {:<7} {:>8}  ERROR",
        "TASK", "KIND", "STATE", "ATTEMPTS"
    )?;
    for t in rows {
        writeln!(
            out,
            "{:<48} {:<10} {:<7} {:>8}  {}",
            t.task, t.kind, t.state, t.attempts, t.error
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_rows_line_up_under_the_header_and_show_seconds() {
        let mut out = Vec::new();
        let row = RunningRow {
            worker: "w-1",
            task: "q.1",
            kind: "noop",
            attempt: 2,
            since_ms: 1_000,
        };
        write_running(&mut out, [row], 1, 3_500).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].starts_with("w-1"), "{text}");
        assert!(lines[1].ends_with("2.5s"), "{text}");
        assert_eq!(lines[0].find("TASK"), lines[1].find("q.1"), "{text}");
        assert_eq!(lines[2], "(1 workers)");
    }
}
