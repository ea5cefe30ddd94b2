//! The worker CLI's client commands: submit tasks, read their status, inspect workers and
//! queues, cancel, re-queue dead letters. Each returns the process exit code.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lanes_cli::tables;
use lanes_queue::{CancelOutcome, Lanes, NewTask, TaskId, TaskState, TaskSummary, WorkerInfo};

use crate::tickets::Tickets;
use serde_json::{Value, json};

/// What `worker submit` sends.
#[derive(Debug, Clone)]
pub struct Submit {
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub delay: Option<Duration>,
    pub priority: u8,
    pub count: usize,
    pub max_retries: Option<u32>,
    pub soft_limit: Option<Duration>,
    pub hard_limit: Option<Duration>,
    pub key: Option<String>,
    pub key_policy: String,
    pub key_concurrency: u32,
}

/// Enqueues `count` tasks (one round trip) and prints their ids, one per line.
pub async fn submit(lanes: &Lanes, s: Submit) -> Result<i32> {
    let payload: Value = serde_json::from_str(&s.payload)
        .with_context(|| format!("--payload is not JSON: {}", s.payload))?;
    if s.count == 0 {
        bail!("--count must be at least 1");
    }
    let mut task = NewTask::new(s.kind, payload)
        .priority(s.priority)
        .delay(s.delay.unwrap_or_default());
    task.max_retries = s.max_retries;
    task.soft_limit = s.soft_limit;
    task.hard_limit = s.hard_limit;
    if let Some(key) = s.key {
        task = task
            .key(key, s.key_policy.parse()?)
            .key_concurrency(s.key_concurrency);
    }
    let ids = lanes.enqueue_bulk(&s.queue, vec![task; s.count]).await?;
    let mut out = std::io::stdout().lock();
    for id in ids {
        writeln!(out, "{id}")?;
    }
    Ok(0)
}

/// Prints the task as JSON; with `wait`, first waits until it is final. Exit code 0 only when it
/// succeeded, 1 when it did not, 2 when it does not exist, 3 when the wait timed out.
pub async fn status(lanes: &Lanes, id: &str, wait: bool, timeout: Duration) -> Result<i32> {
    let id: TaskId = id.parse()?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        let info = lanes.task(&id).await?;
        let Some(info) = info else {
            println!(
                "{}",
                json!({"id": id, "state": "missing", "message": "no such task (never existed, or expired)"})
            );
            return Ok(2);
        };
        if !wait || info.state.is_final() || Instant::now() >= deadline {
            println!("{}", serde_json::to_string_pretty(&info)?);
            return Ok(match info.state {
                TaskState::Succeeded => 0,
                s if s.is_final() => 1,
                _ if wait => 3,
                _ => 1,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// `cancel`: removes a waiting task or stops a running one.
pub async fn cancel(lanes: &Lanes, id: &str) -> Result<i32> {
    let id: TaskId = id.parse()?;
    let outcome = lanes.cancel(&id).await?;
    println!("{}", json!({"id": id, "result": outcome}));
    Ok(match outcome {
        CancelOutcome::Cancelled | CancelOutcome::Stopping => 0,
        CancelOutcome::Finished(_) => 1,
        CancelOutcome::NotFound => 2,
    })
}

/// `requeue`: puts a dead-lettered task back on its queue.
pub async fn requeue(lanes: &Lanes, id: &str) -> Result<i32> {
    let id: TaskId = id.parse()?;
    if lanes.requeue_dead(&id).await? {
        println!("{}", json!({"id": id, "result": "requeued"}));
        Ok(0)
    } else {
        println!(
            "{}",
            json!({"id": id, "result": "not in the dead-letter set"})
        );
        Ok(1)
    }
}

/// What `inspect` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Inspect {
    /// Tasks running now, per worker.
    Active,
    /// Tasks leased ahead of a free slot (prefetch), per worker.
    Reserved,
    /// Per-worker counters and per-queue depths and counters.
    Stats,
    /// Dead-lettered tasks of the given queues.
    Dead,
}

/// `inspect`: reads every worker's record and the queues, as a table or JSON.
pub async fn inspect(
    lanes: &Lanes,
    what: Inspect,
    queues: Option<Vec<String>>,
    as_json: bool,
) -> Result<i32> {
    let workers = lanes.workers().await?;
    let queues = match queues {
        Some(q) => q,
        None => lanes.queues().await?,
    };
    let mut out = std::io::stdout().lock();
    match what {
        Inspect::Active | Inspect::Reserved => {
            let pick = |w: &WorkerInfo| {
                if what == Inspect::Active {
                    w.active.clone()
                } else {
                    w.reserved.clone()
                }
            };
            if as_json {
                let v: serde_json::Map<String, Value> = workers
                    .iter()
                    .map(|w| {
                        (
                            w.id.clone(),
                            serde_json::to_value(pick(w)).unwrap_or_default(),
                        )
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                let tasks: Vec<(&str, TaskSummary)> = workers
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
                tables::write_running(&mut out, rows, workers.len(), now_ms())?;
            }
        }
        Inspect::Stats => {
            let mut qs = Vec::new();
            for q in &queues {
                qs.push(lanes.queue_stats(q).await?);
            }
            if as_json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&json!({"workers": workers, "queues": qs}))?
                )?;
            } else {
                tables::write_workers(
                    &mut out,
                    workers.iter().map(|w| tables::WorkerRow {
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
                    &mut out,
                    qs.iter().map(|q| {
                        let c = |k: &str| q.counters.get(k).copied().unwrap_or(0);
                        tables::QueueRow {
                            queue: &q.queue,
                            queued: q.queued,
                            scheduled: q.scheduled,
                            running: q.running,
                            dead: q.dead,
                            enqueued: c("enqueued"),
                            succeeded: c("succeeded"),
                        }
                    }),
                )?;
            }
        }
        Inspect::Dead => {
            let mut all = Vec::new();
            for q in &queues {
                all.extend(lanes.dead_letters(q, 100).await?);
            }
            if as_json {
                writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
            } else {
                let ids: Vec<String> = all.iter().map(|t| t.id.to_string()).collect();
                tables::write_dead(
                    &mut out,
                    all.iter().zip(&ids).map(|(t, id)| tables::DeadRow {
                        task: id,
                        kind: &t.kind,
                        state: t.state.to_string(),
                        attempts: t.attempts,
                        error: t.error.as_deref().unwrap_or(""),
                    }),
                )?;
            }
        }
    }
    Ok(0)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What `worker tickets` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TicketCommand {
    /// Queue tickets of a project, in order; prints each with its position.
    Dispatch {
        #[arg(long)]
        project: String,
        #[arg(required = true)]
        tickets: Vec<String>,
        #[arg(long)]
        conversation: Option<String>,
    },
    /// The project's queued and executing tickets (`Queued (#N)`, `Executing`).
    Status {
        #[arg(long)]
        project: String,
    },
    /// Remove a queued ticket from its project's queue.
    Remove {
        #[arg(long)]
        project: String,
        #[arg(long)]
        ticket: String,
    },
    /// Stop an executing ticket.
    Stop {
        #[arg(long)]
        project: String,
        #[arg(long)]
        ticket: String,
    },
    /// Queue length and executing projects.
    Executor,
}

/// `worker tickets ...`: the ticket executor's operations from a shell (JSON output).
pub async fn tickets(lanes: &Lanes, cmd: TicketCommand) -> Result<i32> {
    let t = Tickets::new(lanes.clone());
    let out = match cmd {
        TicketCommand::Dispatch {
            project,
            tickets,
            conversation,
        } => {
            json!(
                t.dispatch(&project, &tickets, conversation.as_deref())
                    .await?
            )
        }
        TicketCommand::Status { project } => {
            let info = t.project_queue_info(&project).await?;
            json!(info.iter().map(|i| json!({"ticket_id": i.ticket_id, "task_id": i.task_id, "queue": i.label()})).collect::<Vec<_>>())
        }
        TicketCommand::Remove { project, ticket } => {
            let removed = t.remove_from_queue(&project, &ticket).await?;
            println!("{}", json!({"removed": removed}));
            return Ok(if removed { 0 } else { 1 });
        }
        TicketCommand::Stop { project, ticket } => {
            let stopping = t.stop(&project, &ticket).await?;
            println!("{}", json!({"stopping": stopping}));
            return Ok(if stopping { 0 } else { 1 });
        }
        TicketCommand::Executor => {
            json!({"queue_length": t.queue_length().await?, "executing_projects": t.executing_projects().await?})
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
