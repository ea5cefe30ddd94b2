//! `chaos worker`: the engine's own `Worker` with handlers that append every attempt's start and
//! end, and every fenced write's outcome, to this process's record file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lanes_queue::{
    ChildProgress, Config, KindConfig, Lanes, TaskContext, TaskError, Worker, WorkerConfig,
    WriteOutcome,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::record::{Line, Recorder, now_us};
use crate::workload::{CHILD_KIND, FINALIZE_KIND, GEN_KIND, QUEUES, SERIAL_KIND, Spec};

/// How one chaos worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub redis_url: String,
    pub prefix: String,
    pub name: String,
    pub record: PathBuf,
    pub lease: Duration,
    pub concurrency: usize,
}

/// Retries are quick (the campaign is bounded in time) and plentiful: a task may lose several
/// leases to kills, the zombie and Redis pauses before one attempt sticks.
pub const MAX_RETRIES: u32 = 15;

pub fn engine_config(prefix: &str, lease: Duration) -> Config {
    Config {
        prefix: prefix.to_owned(),
        lease,
        result_ttl: Duration::from_secs(3600),
        ..Config::default()
    }
}

/// Runs until `shutdown` fires.
pub async fn run(s: WorkerSettings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let lanes = Lanes::connect(&s.redis_url, engine_config(&s.prefix, s.lease))
        .await
        .context("connect to redis")?;
    let rec = Arc::new(
        Recorder::create(&s.record)
            .with_context(|| format!("open the record {}", s.record.display()))?,
    );
    let kind = KindConfig::default()
        .max_retries(MAX_RETRIES)
        .backoff(Duration::from_millis(20), Duration::from_millis(200));
    let cfg = WorkerConfig {
        name: s.name.clone(),
        queues: QUEUES.iter().map(|q| (*q).to_owned()).collect(),
        concurrency: s.concurrency,
        grace: Duration::from_secs(5),
        idle_wait: Duration::from_secs(1),
        default_kind: kind.clone(),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(lanes, cfg);
    let id: Arc<str> = worker.id().into();
    let handler = |rec: Arc<Recorder>, id: Arc<str>| {
        move |ctx: TaskContext| {
            let (rec, id) = (rec.clone(), id.clone());
            async move { handle(&rec, &id, ctx).await }
        }
    };
    let observer = rec.clone();
    let worker = worker
        .register(GEN_KIND, kind.clone(), handler(rec.clone(), id.clone()))
        .register(SERIAL_KIND, kind.clone(), handler(rec.clone(), id.clone()))
        .register(CHILD_KIND, kind.clone(), handler(rec.clone(), id.clone()))
        .register(FINALIZE_KIND, kind, handler(rec.clone(), id.clone()))
        .on_write(move |r| {
            let outcome = match r.outcome {
                WriteOutcome::Accepted => "accepted",
                WriteOutcome::Refused => "refused",
                WriteOutcome::Unanswered => "unanswered",
            };
            must(observer.write(&Line::Write {
                id: r.lease.id.to_string(),
                token: r.lease.token.clone(),
                write: r.write.to_owned(),
                outcome: outcome.to_owned(),
                t_us: now_us(),
            }));
        });
    worker.run(shutdown).await?;
    Ok(())
}

/// A record line that cannot be written makes the campaign's evidence incomplete: stop here,
/// loudly, rather than let the checker report a phantom loss.
fn must(r: std::io::Result<()>) {
    if let Err(e) = r {
        eprintln!("chaos worker: cannot write the record: {e}");
        std::process::abort();
    }
}

async fn handle(rec: &Recorder, worker: &str, ctx: TaskContext) -> Result<Value, TaskError> {
    let spec: Spec = ctx.payload_as()?;
    let token = ctx.lease().token.clone();
    must(rec.write(&Line::Start {
        id: ctx.id.to_string(),
        token: token.clone(),
        attempt: ctx.attempt,
        worker: worker.to_owned(),
        kind: ctx.kind.clone(),
        key: spec.key.clone(),
        seq: spec.seq,
        t_us: now_us(),
    }));
    let end = |ok: bool| {
        must(rec.write(&Line::End {
            id: ctx.id.to_string(),
            token: token.clone(),
            ok,
            t_us: now_us(),
        }))
    };
    tokio::time::sleep(Duration::from_millis(spec.sleep_ms)).await;
    if ctx.attempt <= spec.fail_first {
        end(false);
        return Err(TaskError::retry(format!(
            "designed failure of attempt {} (fails the first {})",
            ctx.attempt, spec.fail_first
        )));
    }
    if spec.permanent {
        end(false);
        return Err(TaskError::permanent("designed permanent failure"));
    }
    let outcome = finish(&ctx, &spec, worker, &token).await;
    end(outcome.is_ok());
    outcome
}

/// The successful part of an attempt: batch progress for a child, the batch's counters for a
/// finalize task; the result names the attempt, so the accepted ack says which run it was.
async fn finish(
    ctx: &TaskContext,
    spec: &Spec,
    worker: &str,
    token: &str,
) -> Result<Value, TaskError> {
    let mut result = json!({ "worker": worker, "token": token, "attempt": ctx.attempt });
    if ctx.kind == CHILD_KIND {
        let p = ChildProgress {
            processed: spec.items,
            succeeded: spec.items,
            errors: 0,
        };
        ctx.batch_progress(p).await?;
    }
    if ctx.kind == FINALIZE_KIND {
        // What the batch looked like when its finalize ran: every child must have ended.
        let bid = ctx
            .batch_id()
            .await?
            .ok_or_else(|| TaskError::permanent("a finalize task without a batch"))?;
        let b = ctx
            .lanes()
            .batch(&bid)
            .await?
            .ok_or_else(|| TaskError::retry(format!("batch {bid} not found")))?;
        result["children_done"] = json!(b.children_done);
        result["total_children"] = json!(b.total_children);
    }
    Ok(result)
}
