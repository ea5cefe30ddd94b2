//! `broker inspect active|reserved|stats|dead|queues|keys`: the fleet from a shell, as tables or
//! JSON (`--json`, for scripts).
//!
//! `active`, `reserved`, `stats` and `dead` mirror `worker inspect` (same subcommands, flags and
//! columns: both print through `lanes_cli::tables`) but read the broker's own fleet view rather
//! than depend on the `worker` crate, which would compile the worker's HTTP client and task kinds
//! into the broker.
//! `stats` also lists rate limiters and semaphores. `queues` is every queue's depths and
//! counters; `keys` is every key (lane) with work and its tasks, executing and queued with their
//! positions: what `redis-cli KEYS` was used for, without touching the keyspace.

use std::io::Write;

use anyhow::Result;
use futures::future::join_all;
use lanes_cli::tables;
use lanes_queue::Lanes;
use serde::Serialize;
use serde_json::{Value, json};

use crate::fleet::{self, Fleet};
use crate::model::{KeyView, QueueView, TaskView, WorkerTask, WorkerView};

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
    /// Every queue with its depths and counters.
    Queues,
    /// Keys (lanes) with work: the tasks executing and queued behind each, with positions.
    Keys,
}

/// One key (lane) with work and its unfinished tasks in run order: running first, then the
/// waiting ones by `key_position` (1 = next of its key to run).
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    #[serde(flatten)]
    pub key: KeyView,
    pub tasks: Vec<TaskView>,
}

/// Every key with work in `queues`, with its tasks. One `keys_status` per queue, one
/// `key_tasks` per key, and the queue's running tasks (a key of several slots has no single
/// holder, so its running tasks are found by their `key`). For a shell, not a hot path.
pub async fn keys_report(lanes: &Lanes, queues: &[String]) -> Result<Vec<KeyReport>> {
    let mut out = Vec::new();
    for q in queues {
        let keys = lanes.keys_status(q).await?;
        if keys.is_empty() {
            continue;
        }
        let running: Vec<TaskView> = lanes
            .tasks(&lanes.running(q).await?)
            .await?
            .into_iter()
            .filter(|t| t.key.is_some())
            .map(TaskView::from)
            .collect();
        let lists = join_all(keys.iter().map(|k| lanes.key_tasks(q, &k.key))).await;
        for (k, list) in keys.into_iter().zip(lists) {
            let mut tasks: Vec<TaskView> = running
                .iter()
                .filter(|t| t.key.as_deref() == Some(k.key.as_str()))
                .cloned()
                .collect();
            for t in list? {
                if !t.state.is_final() && !tasks.iter().any(|x| x.id == t.id.as_str()) {
                    tasks.push(t.into());
                }
            }
            tasks.sort_by_key(|t| (t.state != "running", t.key_position.unwrap_or(0)));
            out.push(KeyReport {
                key: KeyView::new(q, k),
                tasks,
            });
        }
    }
    Ok(out)
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
            let tasks: Vec<(&str, WorkerTask)> = f
                .workers
                .iter()
                .flat_map(|w| pick(w).into_iter().map(|t| (w.id.as_str(), t)))
                .collect();
            let rows = tasks.iter().map(|(worker, t)| tables::RunningRow {
                worker,
                task: &t.id,
                kind: &t.kind,
                attempt: t.attempt,
                since_ms: t.since_ms,
            });
            tables::write_running(out, rows, f.workers.len(), f.now_ms)?;
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
        Inspect::Queues => {
            if as_json {
                writeln!(out, "{}", serde_json::to_string_pretty(&f.queues)?)?;
                return Ok(());
            }
            write_queues(&f.queues, out)?;
        }
        Inspect::Keys => {
            let names: Vec<String> = f.queues.iter().map(|q| q.queue.clone()).collect();
            let keys = keys_report(lanes, &names).await?;
            if as_json {
                writeln!(out, "{}", serde_json::to_string_pretty(&keys)?)?;
                return Ok(());
            }
            write_keys(&keys, out)?;
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
            tables::write_dead(
                out,
                all.iter().map(|t| tables::DeadRow {
                    task: &t.id,
                    kind: &t.kind,
                    state: t.state.clone(),
                    attempts: t.attempts,
                    error: t.error.as_deref().unwrap_or(""),
                }),
            )?;
        }
    }
    Ok(())
}

fn write_stats(f: &Fleet, out: &mut impl Write) -> Result<()> {
    tables::write_workers(
        out,
        f.workers.iter().map(|w| tables::WorkerRow {
            id: &w.id,
            queues: w.queues.join(","),
            active: w.active.len(),
            concurrency: w.concurrency,
            processed: w.stats.processed,
            succeeded: w.stats.succeeded,
            retried: w.stats.retried,
            dead: w.stats.dead + w.stats.failed,
            state: &w.state,
        }),
    )?;
    writeln!(out)?;
    tables::write_queue_depths(
        out,
        f.queues.iter().map(|q| tables::QueueRow {
            queue: &q.queue,
            queued: q.queued,
            scheduled: q.scheduled,
            running: q.running,
            dead: q.dead,
            enqueued: q.counter("enqueued"),
            succeeded: q.counter("succeeded"),
        }),
    )?;
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

fn write_queues(queues: &[QueueView], out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "{:<20} {:>8} {:>7} {:>9} {:>8} {:>6} {:>10} {:>10} {:>7} {:>7} {:>7} {:>9}",
        "QUEUE",
        "QUEUED",
        "ON KEY",
        "SCHEDULED",
        "RUNNING",
        "DEAD",
        "ENQUEUED",
        "SUCCEEDED",
        "FAILED",
        "RETRIED",
        "EXPIRED",
        "CANCELLED"
    )?;
    for q in queues {
        writeln!(
            out,
            "{:<20} {:>8} {:>7} {:>9} {:>8} {:>6} {:>10} {:>10} {:>7} {:>7} {:>7} {:>9}",
            q.queue,
            q.queued,
            q.waiting_on_key,
            q.scheduled,
            q.running,
            q.dead,
            q.counter("enqueued"),
            q.counter("succeeded"),
            q.counter("failed") + q.counter("dead"),
            q.counter("retried"),
            q.counter("expired"),
            q.counter("cancelled")
        )?;
    }
    writeln!(out, "({} queues)", queues.len())?;
    Ok(())
}

fn write_keys(keys: &[KeyReport], out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "{:<20} {:<24} {:<10} {:>4}  {:<48} {:<12} WORKER",
        "QUEUE", "KEY", "STATE", "POS", "TASK", "KIND"
    )?;
    for k in keys {
        for t in &k.tasks {
            let pos = t
                .key_position
                .map_or_else(|| "-".to_owned(), |p| p.to_string());
            writeln!(
                out,
                "{:<20} {:<24} {:<10} {:>4}  {:<48} {:<12} {}",
                k.key.queue,
                k.key.key,
                t.state,
                pos,
                t.id,
                t.kind,
                t.worker.as_deref().unwrap_or("")
            )?;
        }
        if k.tasks.is_empty() {
            writeln!(
                out,
                "{:<20} {:<24} {:<10} {:>4}  ({} slots held, {} waiting)",
                k.key.queue, k.key.key, "-", "-", k.key.slots_held, k.key.waiting
            )?;
        }
    }
    writeln!(out, "({} keys with work)", keys.len())?;
    Ok(())
}
