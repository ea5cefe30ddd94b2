//! Prometheus metrics. Fleet metrics (queue depths, task counters, workers, slots, limiters) are
//! read from Redis at scrape time, so every broker reports the same fleet-wide numbers; HTTP
//! metrics (requests and latency by route and status) are this broker's own.
//!
//! Everything here is derived from what the engine keeps in Redis: per-queue outcome counters
//! (including lease expiries), depths, the live workers' records (their own counters, running
//! tasks with their kinds, heartbeats) and the limiters' state. The engine keeps no per-kind
//! outcome counters, no fleet-wide "attempts started" counter, no task-duration samples and no
//! count of limiter waits, so those are not exported (a task's start and end times live only in
//! its own hash, which no index lists once it succeeded: reading them would scan the keyspace).

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::fleet::Fleet;
use crate::state::AppState;

/// The content type of the exposition format we write.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The route template (`/api/tasks/{id}`), never the raw path, to bound cardinality.
    route: String,
    status: u16,
}

/// This broker's HTTP metrics.
#[derive(Debug)]
pub struct HttpMetrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<HttpLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl HttpMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<HttpLabels, Counter>::default();
        let latency =
            Family::<HttpLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "lanes_http_requests",
            "HTTP requests answered by this broker",
            requests.clone(),
        );
        registry.register(
            "lanes_http_request_duration_seconds",
            "Time to answer HTTP requests (to the response head)",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
        }
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = HttpLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: counts and times every request by route template and status, and logs it.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    state
        .http_metrics()
        .observe(&method, &route, status, elapsed.as_secs_f64());
    let ms = elapsed.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %route, status, ms, "request failed");
    } else {
        tracing::debug!(%method, %route, status, ms, "request");
    }
    resp
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueState {
    queue: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueOutcome {
    queue: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Named {
    name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerOutcome {
    worker: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueKind {
    queue: String,
    kind: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The fleet counters every queue reports (others the engine adds are exported too).
const OUTCOMES: [&str; 7] = [
    "enqueued",
    "succeeded",
    "failed",
    "retried",
    "dead",
    "cancelled",
    "expired",
];

/// Renders the exposition text: fleet metrics when `fleet` could be read (else only
/// `lanes_redis_up 0`), then this broker's HTTP metrics.
pub fn render(fleet: Option<&Fleet>, http: &HttpMetrics) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::default();
    let up = Gauge::<i64>::default();
    up.set(i64::from(fleet.is_some()));
    reg.register(
        "lanes_redis_up",
        "1 when this broker could read the fleet from Redis for this scrape",
        up,
    );
    if let Some(f) = fleet {
        let depth = Family::<QueueState, Gauge>::default();
        let tasks = Family::<QueueOutcome, Counter>::default();
        for q in &f.queues {
            for (state, n) in [
                ("queued", q.queued),
                ("scheduled", q.scheduled),
                ("running", q.running),
                ("dead", q.dead),
            ] {
                depth
                    .get_or_create(&QueueState {
                        queue: q.queue.clone(),
                        state: state.into(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            let extra = q
                .counters
                .keys()
                .filter(|k| !OUTCOMES.contains(&k.as_str()))
                .map(String::as_str);
            for outcome in OUTCOMES.into_iter().chain(extra) {
                tasks
                    .get_or_create(&QueueOutcome {
                        queue: q.queue.clone(),
                        outcome: outcome.into(),
                    })
                    .inc_by(q.counter(outcome));
            }
        }
        let on_key = Family::<QueueLabel, Gauge>::default();
        for q in &f.queues {
            on_key
                .get_or_create(&QueueLabel {
                    queue: q.queue.clone(),
                })
                .set(i64::try_from(q.waiting_on_key).unwrap_or(i64::MAX));
        }
        reg.register(
            "lanes_queue_waiting_on_key",
            "Queued tasks waiting behind an earlier task of their key (included in state=queued)",
            on_key,
        );
        reg.register(
            "lanes_queue_depth",
            "Tasks per queue and state (queued, scheduled, running, dead)",
            depth,
        );
        reg.register(
            "lanes_tasks",
            "Tasks per queue and outcome since the queue was created, fleet-wide \
             (outcome=expired counts lease expiries: a worker stopped renewing a lease)",
            tasks,
        );

        let workers = Gauge::<i64>::default();
        workers.set(f.workers.len() as i64);
        reg.register(
            "lanes_workers_alive",
            "Worker processes with a live heartbeat",
            workers,
        );
        let busy = Gauge::<i64>::default();
        busy.set(f.workers.iter().map(|w| w.active.len() as i64).sum());
        reg.register(
            "lanes_worker_busy_slots",
            "Slots running a task, over all workers",
            busy,
        );
        let slots = Gauge::<i64>::default();
        slots.set(f.workers.iter().map(|w| w.concurrency as i64).sum());
        reg.register("lanes_worker_slots", "Slots over all workers", slots);
        register_workers(&mut reg, f);

        let available = Family::<Named, Gauge>::default();
        let rate = Family::<Named, FloatGauge>::default();
        let burst = Family::<Named, Gauge>::default();
        let paused = Family::<Named, Gauge>::default();
        let next_free = Family::<Named, FloatGauge>::default();
        for l in &f.limiters {
            let name = Named {
                name: l.name.clone(),
            };
            available.get_or_create(&name).set(i64::from(l.available));
            rate.get_or_create(&name).set(l.per_second);
            burst.get_or_create(&name).set(i64::from(l.burst));
            paused
                .get_or_create(&name)
                .set(i64::from(l.paused_until_ms.is_some()));
            next_free
                .get_or_create(&name)
                .set(l.next_free_ms as f64 / 1000.0);
        }
        reg.register(
            "lanes_limiter_available_tokens",
            "Tokens a rate limiter could grant right now",
            available,
        );
        reg.register(
            "lanes_limiter_rate_per_second",
            "A rate limiter's configured rate",
            rate,
        );
        reg.register(
            "lanes_limiter_burst",
            "A rate limiter's configured burst",
            burst,
        );
        reg.register(
            "lanes_limiter_paused",
            "1 while a rate limiter is paused by a retry-after",
            paused,
        );
        reg.register_with_unit(
            "lanes_limiter_wait",
            "How long a new acquire would wait for a token now (0 while tokens are available; \
             includes a pause)",
            Unit::Seconds,
            next_free,
        );
        let held = Family::<Named, Gauge>::default();
        let capacity = Family::<Named, Gauge>::default();
        for s in &f.semaphores {
            let name = Named {
                name: s.name.clone(),
            };
            held.get_or_create(&name).set(i64::from(s.held));
            capacity.get_or_create(&name).set(i64::from(s.capacity));
        }
        reg.register(
            "lanes_semaphore_held",
            "Permits of a semaphore held now",
            held,
        );
        reg.register(
            "lanes_semaphore_capacity",
            "A semaphore's capacity",
            capacity,
        );
    }
    let mut out = String::with_capacity(4096);
    encode_registry(&mut out, &reg)?;
    encode_registry(&mut out, &http.registry)?;
    encode_eof(&mut out)?;
    Ok(out)
}

/// Per-worker counters and heartbeats, and the tasks running now by queue and kind, from the
/// live workers' records.
fn register_workers(reg: &mut Registry, f: &Fleet) {
    let tasks = Family::<WorkerOutcome, Counter>::default();
    let heartbeat = Family::<WorkerLabel, FloatGauge>::default();
    let active = Family::<QueueKind, Gauge>::default();
    for w in &f.workers {
        let s = &w.stats;
        for (outcome, n) in [
            ("started", s.processed),
            ("succeeded", s.succeeded),
            ("failed", s.failed),
            ("retried", s.retried),
            ("dead", s.dead),
            ("cancelled", s.cancelled),
            ("handed_back", s.handed_back),
            ("stale", s.stale),
        ] {
            tasks
                .get_or_create(&WorkerOutcome {
                    worker: w.id.clone(),
                    outcome: outcome.into(),
                })
                .inc_by(n);
        }
        heartbeat
            .get_or_create(&WorkerLabel {
                worker: w.id.clone(),
            })
            .set(w.heartbeat_age_ms as f64 / 1000.0);
        for t in &w.active {
            // A task id is `<queue>.<hex>`, and queue names have no dot.
            let queue = t.id.split_once('.').map_or("", |(q, _)| q);
            active
                .get_or_create(&QueueKind {
                    queue: queue.to_owned(),
                    kind: t.kind.clone(),
                })
                .inc();
        }
    }
    reg.register(
        "lanes_worker_tasks",
        "Attempts of each live worker process since it started, by outcome (started = attempts \
         begun); a restarted process starts a new series",
        tasks,
    );
    reg.register_with_unit(
        "lanes_worker_heartbeat_age",
        "Time since each live worker process last published its record",
        Unit::Seconds,
        heartbeat,
    );
    reg.register(
        "lanes_tasks_running",
        "Tasks running now by queue and kind, from the live workers' records",
        active,
    );
}
