//! Per-queue rate limits: a queue configured with a rate (`photos` at `50/m`) is fetched no faster
//! than that by all workers together, through one distributed GCRA limiter per queue.
//!
//! How the worker uses it (see `worker::fetch_loop`):
//! - the limiter of queue `q` is `lanes-ratelimit`'s limiter named `queue:q` under the engine's
//!   prefix, on the engine's own Redis connection (or a [`Limits`] given to
//!   `Worker::with_limits`), so every worker process and machine draws from the same one;
//! - a limited queue's fetcher leases **one task per grant**: it takes a grant, then fetches one
//!   task. When the queue turns out to be empty the grant is lost (under-delivery, never
//!   over-delivery); to keep that rare, after an empty fetch the fetcher blocks on the queue's
//!   signal as usual and *peeks* (ready tasks, due delayed tasks) before taking the next grant;
//! - ack-and-fetch chaining is off for limited queues: a chained fetch would bypass the limiter;
//! - the fetcher takes its free slot before the grant (so a task starts right after its grant,
//!   not whenever a slot frees up), and holds that slot while it waits for the grant;
//! - tasks of a limited queue wait in the queue: nothing is failed or re-queued for the limit;
//! - a limiter that cannot reach Redis is an error after `lanes-ratelimit`'s bounded retry; the
//!   fetcher logs it and backs off, and never fetches without a grant.

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

use crate::client::{FetchBatch, Lanes};
use crate::error::{Error, Result};

pub use lanes_ratelimit::{Limiter, Limits, Rate};

/// The name of a queue's limiter in `lanes-ratelimit` (`queue:<name>`), so dashboards listing
/// limiters can tell queue limits from named API limiters.
pub fn limiter_name(queue: &str) -> String {
    format!("queue:{queue}")
}

/// The limiters of the queues a worker consumes, by queue name.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueueLimits {
    by_queue: HashMap<String, Limiter>,
}

impl QueueLimits {
    /// One limiter per limited queue that the worker consumes. Rates for other queues are
    /// ignored with a warning (a shared `LANES_RATE_LIMIT` may name queues of other workers).
    /// `limits` is only called when some consumed queue is limited.
    pub(crate) fn new(
        rates: &HashMap<String, Rate>,
        queues: &[String],
        limits: impl FnOnce() -> Result<Limits>,
    ) -> Result<Self> {
        let mut unused: Vec<&str> = rates
            .keys()
            .filter(|q| !queues.contains(*q))
            .map(String::as_str)
            .collect();
        if !unused.is_empty() {
            unused.sort_unstable();
            tracing::warn!(queues = ?unused, "rate limits for queues this worker does not consume are ignored");
        }
        let limited: Vec<(&String, Rate)> = queues
            .iter()
            .filter_map(|q| rates.get(q).map(|r| (q, *r)))
            .collect();
        if limited.is_empty() {
            return Ok(Self::default());
        }
        let limits = limits()?;
        let mut by_queue = HashMap::new();
        for (queue, rate) in limited {
            let limiter = limits.limiter(&limiter_name(queue), rate)?;
            tracing::info!(queue = %queue, rate = %rate, limiter = %limiter.name(), "queue is rate limited");
            by_queue.insert(queue.clone(), limiter);
        }
        Ok(Self { by_queue })
    }

    pub(crate) fn is_limited(&self, queue: &str) -> bool {
        self.by_queue.contains_key(queue)
    }

    /// The fetch strategy of a limited queue, or `None` when the queue is not limited.
    pub(crate) fn fetcher(&self, queue: &str) -> Option<LimitedFetch> {
        self.by_queue.get(queue).map(|limiter| LimitedFetch {
            limiter: limiter.clone(),
            peek: true,
        })
    }
}

/// Fetches of one limited queue: one grant, then one task.
#[derive(Debug)]
pub(crate) struct LimitedFetch {
    limiter: Limiter,
    /// Check for work before taking a grant (at start and after an empty fetch).
    peek: bool,
}

impl LimitedFetch {
    /// Leases at most one task, after taking a grant from the queue's limiter.
    ///
    /// `Ok(None)` when `stop` fired while waiting for the grant (nothing was leased). An empty
    /// batch (with the next due time) when the queue has no work, in which case no grant was
    /// taken if the peek saw that first.
    pub(crate) async fn fetch(
        &mut self,
        lanes: &Lanes,
        queue: &str,
        worker: &str,
        stop: &CancellationToken,
    ) -> Result<Option<FetchBatch>> {
        if self.peek {
            let seen = peek(lanes, queue).await?;
            if !seen.has_work {
                return Ok(Some(seen.batch));
            }
        }
        match self.limiter.acquire(1, stop).await {
            Ok(_grant) => {}
            Err(lanes_ratelimit::Error::Cancelled) => return Ok(None),
            Err(e) => return Err(Error::RateLimit(e)),
        }
        let batch = lanes.fetch(queue, worker, 1).await?;
        self.peek = batch.tasks.is_empty();
        if self.peek {
            tracing::debug!(queue = %queue, limiter = %self.limiter.name(), "grant unused: the queue was empty");
        }
        Ok(Some(batch))
    }
}

struct Peek {
    has_work: bool,
    /// Empty, with the Redis time and the next delayed task's due time, like an empty fetch.
    batch: FetchBatch,
}

/// Whether a fetch would find a task now: any ready task, or a delayed one that is due. A hint
/// read without a script (it takes nothing); one round trip.
async fn peek(lanes: &Lanes, queue: &str) -> Result<Peek> {
    let keys = lanes.keys().queue(queue);
    let (ready, first_delayed, time): (u64, Vec<(String, f64)>, (u64, u64)) = redis::pipe()
        .zcard(&keys.ready)
        .cmd("ZRANGE")
        .arg(&keys.delayed)
        .arg(0)
        .arg(0)
        .arg("WITHSCORES")
        .cmd("TIME")
        .query_async(&mut lanes.connection())
        .await?;
    let now_ms = time.0 * 1000 + time.1 / 1000;
    let next_due_ms = first_delayed
        .first()
        .map(|(_, score)| score.max(0.0) as u64);
    let due = next_due_ms.is_some_and(|due| due <= now_ms);
    Ok(Peek {
        has_work: ready > 0 || due,
        batch: FetchBatch {
            tasks: Vec::new(),
            now_ms,
            next_due_ms,
        },
    })
}
