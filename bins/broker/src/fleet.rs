//! Reads the fleet from Redis: queues with depths and counters, live workers, rate limiters and
//! semaphores, and (for the dashboard) the next waiting tasks and newest dead letters. Shared by
//! the dashboard stream, `/metrics`, `GET /api/limiters` and `broker inspect`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use lanes_queue::{Lanes, TaskId};
use lanes_ratelimit::{Limits, RetryPolicy, SemaphoreConfig};

use crate::error::AppError;
use crate::model::{
    KeyView, LimiterView, QueueView, SemaphoreView, Snapshot, TaskView, Totals, WorkerView,
};

/// Keys listed in a snapshot (the busiest); `totals.keys` counts them all.
const SNAPSHOT_KEYS: usize = 50;

/// Everything `/metrics` needs, read in a handful of round trips.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Broker clock, ms since the epoch.
    pub now_ms: u64,
    pub queues: Vec<QueueView>,
    pub workers: Vec<WorkerView>,
    pub limiters: Vec<LimiterView>,
    pub semaphores: Vec<SemaphoreView>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Rate limiters and semaphores under the engine's prefix, sharing its connection. One attempt
/// per call, bounded by `timeout`: a reader would rather skip a beat than queue retries.
pub fn limits_for(lanes: &Lanes, timeout: std::time::Duration) -> Result<Limits, AppError> {
    let retry = RetryPolicy {
        attempts: 1,
        attempt_timeout: timeout,
        ..RetryPolicy::default()
    };
    Ok(Limits::new(lanes.connection(), lanes.keys().prefix())?.with_retry(retry)?)
}

/// Queues, workers, limiters and semaphores as they are now.
pub async fn fleet(lanes: &Lanes, limits: &Limits) -> Result<Fleet, AppError> {
    let names = lanes.queues().await?;
    let (queues, workers, (limiters, semaphores)) = tokio::try_join!(
        async { Ok::<_, AppError>(lanes.queue_stats_many(&names).await?) },
        async { Ok::<_, AppError>(lanes.workers().await?) },
        limiters(limits),
    )?;
    let now_ms = now_ms();
    Ok(Fleet {
        now_ms,
        queues: queues.into_iter().map(QueueView::from).collect(),
        workers: workers
            .into_iter()
            .map(|w| WorkerView::new(w, now_ms))
            .collect(),
        limiters,
        semaphores,
    })
}

/// Every rate limiter and semaphore the fleet has used, with its state now. One that cannot be
/// read (an unreadable entry) is skipped with a warning; Redis being down is an error.
pub async fn limiters(limits: &Limits) -> Result<(Vec<LimiterView>, Vec<SemaphoreView>), AppError> {
    let (infos, sems) = tokio::try_join!(limits.list_limiters(), limits.list_semaphores())?;
    let limiter_states = join_all(
        infos
            .iter()
            .map(|info| async move { limits.limiter(&info.name, info.rate)?.state().await }),
    )
    .await;
    let mut limiters = Vec::with_capacity(infos.len());
    for (info, st) in infos.iter().zip(limiter_states) {
        match st {
            Ok(st) => limiters.push(LimiterView {
                name: info.name.clone(),
                rate: info.rate.to_string(),
                per_second: info.rate.per_second_f64(),
                burst: info.rate.burst(),
                available: st.available,
                next_free_ms: st.next_free.as_millis() as u64,
                paused_until_ms: st.paused_until.map(|t| t.as_micros() / 1000),
            }),
            Err(e @ lanes_ratelimit::Error::Unavailable { .. }) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(limiter = %info.name, error = %e, "skipping unreadable limiter")
            }
        }
    }
    let sem_states = join_all(sems.iter().map(|info| async move {
        limits
            .semaphore(&info.name, SemaphoreConfig::new(info.capacity))?
            .state()
            .await
    }))
    .await;
    let mut semaphores = Vec::with_capacity(sems.len());
    for (info, st) in sems.iter().zip(sem_states) {
        match st {
            Ok(st) => semaphores.push(SemaphoreView {
                name: info.name.clone(),
                capacity: info.capacity,
                held: u32::try_from(st.holders.len()).unwrap_or(u32::MAX),
            }),
            Err(e @ lanes_ratelimit::Error::Unavailable { .. }) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(semaphore = %info.name, error = %e, "skipping unreadable semaphore")
            }
        }
    }
    Ok((limiters, semaphores))
}

/// The dashboard's view: the fleet, plus the next `rows` waiting tasks and newest `rows` dead
/// letters per queue, and per-queue rates from the counters' change since `prev`.
pub async fn snapshot(
    lanes: &Lanes,
    limits: &Limits,
    rows: usize,
    prev: Option<&Snapshot>,
) -> Result<Snapshot, AppError> {
    let fleet = fleet(lanes, limits).await?;
    let names: Vec<String> = fleet.queues.iter().map(|q| q.queue.clone()).collect();
    let key_lists = async {
        let lists = join_all(names.iter().map(|q| lanes.keys_status(q))).await;
        let mut keys = Vec::new();
        for (q, list) in names.iter().zip(lists) {
            keys.extend(list?.into_iter().map(|k| KeyView::new(q, k)));
        }
        Ok::<_, lanes_queue::Error>(keys)
    };
    let (waiting, dead_ids, mut keys) = tokio::try_join!(
        lanes.waiting_many(&names, rows),
        lanes.dead_ids_many(&names, rows),
        key_lists,
    )?;
    let keys_total = keys.len() as u64;
    keys.sort_by(|a, b| {
        (b.waiting, b.slots_held)
            .cmp(&(a.waiting, a.slots_held))
            .then_with(|| (&a.queue, &a.key).cmp(&(&b.queue, &b.key)))
    });
    keys.truncate(SNAPSHOT_KEYS);
    let mut ids: Vec<TaskId> = Vec::new();
    let mut positions: HashMap<String, u64> = HashMap::new();
    for w in &waiting {
        for (i, id) in w.queued.iter().enumerate() {
            positions.insert(id.to_string(), i as u64);
        }
        ids.extend(w.queued.iter().cloned());
        ids.extend(w.scheduled.iter().cloned());
    }
    let waiting_count = ids.len();
    ids.extend(dead_ids);
    let infos = lanes.tasks(&ids).await?.into_iter().map(TaskView::from);
    // `tasks` skips ids that vanished meanwhile, so split by state, not by index.
    let mut waiting_tasks = Vec::with_capacity(waiting_count);
    let mut dead = Vec::new();
    for mut t in infos {
        match t.state.as_str() {
            "queued" | "scheduled" | "retrying" => {
                t.position = positions
                    .get(&t.id)
                    .copied()
                    .filter(|_| t.state == "queued");
                waiting_tasks.push(t);
            }
            "dead" | "failed" => dead.push(t),
            _ => {}
        }
    }
    dead.sort_by_key(|t| std::cmp::Reverse(t.finished_at_ms));

    let mut queues = fleet.queues;
    if let Some(prev) = prev {
        let dt = fleet.now_ms.saturating_sub(prev.at_ms) as f64 / 1000.0;
        let before: HashMap<&str, u64> = prev
            .queues
            .iter()
            .map(|q| (q.queue.as_str(), q.counter("succeeded")))
            .collect();
        for q in &mut queues {
            if let Some(b) = before.get(q.queue.as_str())
                && dt > 0.0
            {
                q.succeeded_per_s = Some(q.counter("succeeded").saturating_sub(*b) as f64 / dt);
            }
        }
    }
    let totals = Totals {
        queued: queues.iter().map(|q| q.queued).sum(),
        scheduled: queues.iter().map(|q| q.scheduled).sum(),
        running: queues.iter().map(|q| q.running).sum(),
        dead: queues.iter().map(|q| q.dead).sum(),
        workers: fleet.workers.len() as u64,
        busy_slots: fleet.workers.iter().map(|w| w.active.len() as u64).sum(),
        slots: fleet.workers.iter().map(|w| w.concurrency as u64).sum(),
        keys: keys_total,
        succeeded_per_s: queues
            .iter()
            .filter_map(|q| q.succeeded_per_s)
            .reduce(|a, b| a + b),
    };
    Ok(Snapshot {
        at_ms: fleet.now_ms,
        redis_ok: true,
        message: None,
        totals,
        queues,
        workers: fleet.workers,
        waiting: waiting_tasks,
        dead,
        limiters: fleet.limiters,
        semaphores: fleet.semaphores,
        keys,
        batches: Vec::new(),
    })
}

impl Snapshot {
    /// What the stream sends while Redis cannot be read.
    pub fn unavailable(message: String) -> Self {
        Self {
            at_ms: now_ms(),
            redis_ok: false,
            message: Some(message),
            totals: Totals::default(),
            queues: Vec::new(),
            workers: Vec::new(),
            waiting: Vec::new(),
            dead: Vec::new(),
            limiters: Vec::new(),
            semaphores: Vec::new(),
            keys: Vec::new(),
            batches: Vec::new(),
        }
    }
}
