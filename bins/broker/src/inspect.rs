//! `broker inspect active|reserved|stats|dead`: the fleet from a shell, as tables or JSON.
//!
//! It mirrors `worker inspect` (same subcommands, flags and columns) but is written over the
//! broker's own fleet reader rather than by depending on the `worker` crate, which would compile
//! the worker's HTTP client and task kinds into the broker. `stats` also lists rate limiters
//! and semaphores.

use std::io::Write;

use anyhow::Result;
use lanes_queue::Lanes;
use serde_json::{Value, json};

use crate::fleet::{self, Fleet};
use crate::model::{QueueView, TaskView, WorkerTask, WorkerView};

/// What `inspect` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Inspect {
    /// Tasks running now, per worker.
    Active,
    /// Tasks leased ahead of a free slot (prefetch), per worker.
    Reserved,
    /// Per-worker counters, per-queue depths and counters, rate limiters and semaphores.
    Stats,
    /// Dead-lettered tasks of the given queues, newest first.
    Dead,
}

/// Reads the fleet and writes the table (or JSON) for `what` to `out`. `queues` narrows the
/// queues shown (default: every known queue).
pub async fn inspect(
    lanes: &Lanes,
    what: Inspect,
    queues: Option<Vec<String>>,
    as_json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let limits = fleet::limits_for(lanes, std::time::Duration::from_secs(5))?;
    let mut f: Fleet = fleet::fleet(lanes, &limits).await?;
    if let Some(only) = &queues {
        f.queues.retain(|q| only.contains(&q.queue));
    }
    match what {
        Inspect::Active | Inspect::Reserved => {
            let pick = |w: &WorkerView| -> Vec<WorkerTask> {
                if what == Inspect::Active {
                    w.active.clone()
                } else {
                    w.reserved.clone()
                }
            };
            if as_json {
                let v: serde_json::Map<String, Value> = f
                    .workers
                    .iter()
                    .map(|w| {
                        (
                            w.id.clone(),
                            serde_json::to_value(pick(w)).unwrap_or_default(),
                        )
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<32} {:<48} {:<10} {:>7} {:>9}",
                "WORKER", "TASK", "KIND", "ATTEMPT", "FOR"
            )?;
            for w in &f.workers {
                for t in pick(w) {
                    let secs = f.now_ms.saturating_sub(t.since_ms) as f64 / 1000.0;
                    writeln!(
                        out,
                        "{:<32} {:<48} {:<10} {:>7} {:>8.1}s",
                        w.id, t.id, t.kind, t.attempt, secs
                    )?;
                }
            }
            writeln!(out, "({} workers)", f.workers.len())?;
        }
        Inspect::Stats => {
            if as_json {
                let v = json!({
                    "workers": f.workers,
                    "queues": f.queues,
                    "limiters": f.limiters,
                    "semaphores": f.semaphores,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                return Ok(());
            }
            write_stats(&f, out)?;
        }
        Inspect::Dead => {
            let names: Vec<String> = f.queues.iter().map(|q| q.queue.clone()).collect();
            let mut all: Vec<TaskView> = Vec::new();
            for q in &names {
                all.extend(
                    lanes
                        .dead_letters(q, 100)
                        .await?
                        .into_iter()
                        .map(TaskView::from),
                );
            }
            if as_json {
                writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<48} {:<10} {:<7} {:>8}  ERROR",
                "TASK", "KIND", "STATE", "ATTEMPTS"
            )?;
            for t in &all {
                writeln!(
                    out,
                    "{:<48} {:<10} {:<7} {:>8}  {}",
                    t.id,
                    t.kind,
                    t.state,
                    t.attempts,
                    t.error.as_deref().unwrap_or("")
                )?;
            }
        }
    }
    Ok(())
}

fn write_stats(f: &Fleet, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "{:<32} {:<20} {:>6} {:>6} {:>9} {:>9} {:>7} {:>6} {:>9}",
        "WORKER", "QUEUES", "ACTIVE", "CONC", "PROCESSED", "SUCCEEDED", "RETRIED", "DEAD", "STATE"
    )?;
    for w in &f.workers {
        let s = &w.stats;
        writeln!(
            out,
            "{:<32} {:<20} {:>6} {:>6} {:>9} {:>9} {:>7} {:>6} {:>9}",
            w.id,
            w.queues.join(","),
            w.active.len(),
            w.concurrency,
            s.processed,
            s.succeeded,
            s.retried,
            s.dead + s.failed,
            w.state
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<20} {:>8} {:>9} {:>8} {:>6} {:>10} {:>10}",
        "QUEUE", "QUEUED", "SCHEDULED", "RUNNING", "DEAD", "ENQUEUED", "SUCCEEDED"
    )?;
    for q in &f.queues {
        write_queue(q, out)?;
    }
    if !f.limiters.is_empty() || !f.semaphores.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{:<32} {:<16} {:>9} {:>11}  PAUSED",
            "LIMITER", "RATE", "AVAILABLE", "NEXT FREE"
        )?;
        for l in &f.limiters {
            writeln!(
                out,
                "{:<32} {:<16} {:>9} {:>10}ms  {}",
                l.name,
                l.rate,
                format!("{}/{}", l.available, l.burst),
                l.next_free_ms,
                if l.paused_until_ms.is_some() {
                    "yes"
                } else {
                    "no"
                }
            )?;
        }
        for s in &f.semaphores {
            writeln!(
                out,
                "{:<32} {:<16} {:>9}",
                s.name,
                "semaphore",
                format!("{}/{}", s.held, s.capacity)
            )?;
        }
    }
    Ok(())
}

fn write_queue(q: &QueueView, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "{:<20} {:>8} {:>9} {:>8} {:>6} {:>10} {:>10}",
        q.queue,
        q.queued,
        q.scheduled,
        q.running,
        q.dead,
        q.counter("enqueued"),
        q.counter("succeeded")
    )?;
    Ok(())
}
