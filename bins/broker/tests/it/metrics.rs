//! `/metrics` against real work: an in-process worker runtime (the engine's `Worker`, as the
//! `worker` binary runs it) succeeds, retries, fails and dead-letters tasks, one lease expires,
//! limiters are used; the exposition must parse as OpenMetrics text (checked by the small
//! parser below) and its counters must equal the work done.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use lanes_queue::{KindConfig, Lanes, TaskContext, TaskError, TaskResult, Worker, WorkerConfig};
use lanes_ratelimit::{Limits, SemaphoreConfig};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::support::{Ctx, delete, get};

// ---- an OpenMetrics text parser -----------------------------------------------------------

/// One sample: its labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: samples by sample name, and each family's type.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, String>,
    pub samples: HashMap<String, Vec<Sample>>,
}

impl Exposition {
    /// The value of the series `name{labels}` (exactly these labels).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .get(name)?
            .iter()
            .find(|s| s.labels == want)
            .map(|s| s.value)
    }

    /// Every series of `name` whose labels include `labels`.
    pub fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y"}` at the start of `s`: the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The family a sample belongs to, given the declared types: the longest declared name that
/// the sample name is, or is plus a suffix its type allows.
fn family_of<'a>(sample: &str, types: &'a HashMap<String, String>) -> Option<&'a str> {
    types
        .iter()
        .filter_map(|(family, ty)| {
            let suffix = sample.strip_prefix(family.as_str())?;
            let allowed: &[&str] = match ty.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" | "gaugehistogram" => &["_bucket", "_count", "_sum", "_created"],
                "summary" => &["", "_count", "_sum", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            allowed
                .contains(&suffix)
                .then_some((family.len(), family.as_str()))
        })
        .max()
        .map(|(_, f)| f)
}

/// Parses OpenMetrics text and checks its rules: metadata before samples, each family once and
/// contiguous, known types, valid names, labels and values, no duplicate series, counters
/// non-negative, histogram buckets cumulative and ending with `+Inf` equal to `_count`, and
/// `# EOF` as the last line.
pub fn parse_openmetrics(text: &str) -> Result<Exposition, String> {
    let mut exp = Exposition::default();
    let mut seen_series: HashSet<String> = HashSet::new();
    let mut closed_families: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .ok_or("no final newline")?
        .split('\n')
        .collect();
    let (last, body) = lines.split_last().ok_or("empty exposition")?;
    if *last != "# EOF" {
        return Err(format!("last line is {last:?}, not # EOF"));
    }
    for (n, line) in body.iter().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let rest = parts.next().unwrap_or("");
            if !is_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            if current.as_deref() != Some(name) {
                if let Some(prev) = current.take() {
                    closed_families.insert(prev);
                }
                if closed_families.contains(name) {
                    return Err(at(format!("family {name} is split")));
                }
                current = Some(name.to_owned());
            }
            match kind {
                "TYPE" => {
                    let known = [
                        "counter",
                        "gauge",
                        "histogram",
                        "gaugehistogram",
                        "summary",
                        "info",
                        "stateset",
                        "unknown",
                    ];
                    if !known.contains(&rest) {
                        return Err(at(format!("unknown type {rest:?}")));
                    }
                    if exp.types.insert(name.to_owned(), rest.to_owned()).is_some() {
                        return Err(at(format!("{name} typed twice")));
                    }
                }
                "HELP" | "UNIT" => {}
                other => return Err(at(format!("unknown metadata {other:?}"))),
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return Err(at("blank line or stray comment".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name) {
            return Err(at(format!("bad sample name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        // Drop an exemplar, then read the value (a timestamp may follow).
        let rest = rest.split(" # ").next().unwrap_or("");
        let mut fields = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?
            .split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(at)?;
        if let Some(ts) = fields.next() {
            parse_value(ts).map_err(at)?;
        }
        let family = family_of(name, &exp.types)
            .ok_or_else(|| at(format!("sample {name} of no declared family")))?
            .to_owned();
        if current.as_deref() != Some(family.as_str()) {
            return Err(at(format!("sample of {family} outside its family's block")));
        }
        let series = format!("{name}{labels:?}");
        if !seen_series.insert(series.clone()) {
            return Err(at(format!("duplicate series {series}")));
        }
        let counts = exp.types[&family] == "counter" && name.ends_with("_total");
        if counts && (value.is_nan() || value < 0.0) {
            return Err(at("negative or NaN counter".into()));
        }
        exp.samples
            .entry(name.to_owned())
            .or_default()
            .push(Sample { labels, value });
    }
    check_histograms(&exp)?;
    Ok(exp)
}

fn check_histograms(exp: &Exposition) -> Result<(), String> {
    for (family, ty) in &exp.types {
        if ty != "histogram" {
            continue;
        }
        let mut by_series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in exp
            .samples
            .get(&format!("{family}_bucket"))
            .into_iter()
            .flatten()
        {
            let le = s
                .labels
                .get("le")
                .ok_or(format!("{family} bucket without le"))?;
            let mut rest = s.labels.clone();
            rest.remove("le");
            by_series
                .entry(format!("{rest:?}"))
                .or_default()
                .push((parse_value(le)?, s.value));
        }
        for (labels, buckets) in by_series {
            let ordered = buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
            if !ordered {
                return Err(format!(
                    "{family}{labels}: buckets not cumulative: {buckets:?}"
                ));
            }
            let Some(&(le, inf)) = buckets.last() else {
                continue;
            };
            if le != f64::INFINITY {
                return Err(format!("{family}{labels}: no +Inf bucket"));
            }
            let count = exp
                .samples
                .get(&format!("{family}_count"))
                .into_iter()
                .flatten()
                .find(|s| format!("{:?}", s.labels) == labels)
                .map(|s| s.value);
            if count != Some(inf) {
                return Err(format!(
                    "{family}{labels}: +Inf bucket {inf} != count {count:?}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn the_parser_accepts_good_text_and_refuses_bad() {
    let good = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
        a_requests_total{route=\"/x\",q=\"a\\\"b\"} 3\n\
        # TYPE lat histogram\n# UNIT lat seconds\n\
        lat_bucket{le=\"0.1\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 0.3\nlat_count 2\n\
        # TYPE up gauge\nup 1\n# EOF\n";
    let exp = parse_openmetrics(good).expect("valid text");
    assert_eq!(
        exp.value("a_requests_total", &[("route", "/x"), ("q", "a\"b")]),
        Some(3.0)
    );
    for bad in [
        "# TYPE up gauge\nup 1\n",                                // no EOF
        "up 1\n# EOF\n",                                          // no family
        "# TYPE up gauge\nup{a=\"1\"} 1\nup{a=\"1\"} 2\n# EOF\n", // duplicate series
        "# TYPE c counter\nc_total -1\n# EOF\n",                  // negative counter
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n# EOF\n",
        "# TYPE up gauge\nup one\n# EOF\n",    // bad value
        "# TYPE up gauge\nup{a=1} 1\n# EOF\n", // unquoted label
        "# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n# EOF\n", // sample outside its block
    ] {
        assert!(parse_openmetrics(bad).is_err(), "accepted: {bad:?}");
    }
}

// ---- the work ---------------------------------------------------------------------------

/// Handlers with known outcomes: `ok` succeeds, `flaky` fails its first attempt and then
/// succeeds, `bad` fails permanently, `doomed` always asks for a retry, `hold` runs until the
/// test releases it.
fn worker(lanes: Lanes, queue: &str, hold: Arc<Notify>) -> Worker {
    let cfg = WorkerConfig {
        name: "metrics-test".into(),
        queues: vec![queue.to_owned()],
        concurrency: 2,
        heartbeat: Duration::from_millis(100),
        idle_wait: Duration::from_millis(200),
        grace: Duration::from_secs(5),
        ..WorkerConfig::default()
    };
    let kinds = KindConfig::default()
        .max_retries(1)
        .backoff(Duration::from_millis(10), Duration::from_millis(10));
    Worker::new(lanes, cfg)
        .register("ok", kinds.clone(), |_ctx: TaskContext| async {
            Ok(json!({"ok": true}))
        })
        .register("flaky", kinds.clone(), |ctx: TaskContext| async move {
            if ctx.attempt == 1 {
                Err(TaskError::retry("first attempts fail"))
            } else {
                Ok(Value::Null)
            }
        })
        .register("bad", kinds.clone(), |_ctx: TaskContext| async {
            TaskResult::Err(TaskError::permanent("bad input"))
        })
        .register("doomed", kinds.clone(), |_ctx: TaskContext| async {
            TaskResult::Err(TaskError::retry("never works"))
        })
        .register("hold", kinds, move |_ctx: TaskContext| {
            let hold = hold.clone();
            async move {
                hold.notified().await;
                Ok(Value::Null)
            }
        })
}

async fn scrape(ctx: &Ctx) -> (Exposition, String) {
    let r = ctx.send(get("/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|v| v.starts_with("application/openmetrics-text")),
    );
    let text = r.text();
    let exp = parse_openmetrics(&text).unwrap_or_else(|e| panic!("not OpenMetrics: {e}\n{text}"));
    (exp, text)
}

/// Scrapes until `ready` holds (the workers publish their records every heartbeat), at most
/// about a minute; the timeout only bounds a broken run, nothing is asserted about time.
async fn scrape_until(ctx: &Ctx, ready: impl Fn(&Exposition) -> bool) -> (Exposition, String) {
    let mut last = String::new();
    for _ in 0..600 {
        let (exp, text) = scrape(ctx).await;
        if ready(&exp) {
            return (exp, text);
        }
        last = text;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the metrics never reached the expected state:\n{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_count_the_work_done() {
    let ctx = Ctx::new();
    let lanes = ctx.lanes().await;
    let hold = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let w = worker(lanes.clone(), "mx", hold.clone());
    let worker_id = w.id().to_owned();
    let running = tokio::spawn(w.run(stop.clone()));

    let kinds = [
        "ok", "ok", "ok", "ok", "ok", "flaky", "flaky", "bad", "doomed", "hold",
    ];
    let mut posts = 0u32;
    for kind in kinds {
        ctx.enqueue("mx", json!({ "kind": kind })).await;
        posts += 1;
    }
    ctx.enqueue("mx", json!({"kind": "ok", "delay_s": 600}))
        .await;
    let cancelled = ctx
        .enqueue("mx", json!({"kind": "ok", "delay_s": 600}))
        .await;
    posts += 2;
    let r = ctx.send(delete(&format!("/api/tasks/{cancelled}"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // A lease that expires: leased on a queue no worker consumes, never renewed, then reaped.
    let short = lanes_queue::Config {
        prefix: ctx.prefix.name().to_owned(),
        lease: Duration::from_millis(50),
        ..lanes_queue::Config::default()
    };
    let ghost = Lanes::connect(ctx.prefix.url(), short)
        .await
        .expect("connect");
    ctx.enqueue("mxl", json!({"kind": "ok"})).await;
    posts += 1;
    let leased = ghost.fetch("mxl", "ghost-worker", 1).await.expect("fetch");
    assert_eq!(leased.tasks.len(), 1);
    let mut expired = 0;
    for _ in 0..500 {
        expired += ghost.reap("mxl", 3, &HashMap::new()).await.expect("reap").0;
        if expired > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(expired, 1, "the lease expired and was reaped");

    // Limiters: one with its only token taken, one paused by a retry-after; a semaphore held.
    let limits = Limits::new(lanes.connection(), ctx.prefix.name()).expect("limits");
    let api = limits
        .limiter("mx-api", "1/m".parse().expect("rate"))
        .expect("limiter");
    assert!(api.try_acquire(1).await.expect("acquire").is_allowed());
    let paused = limits
        .limiter("mx-paused", "10/s".parse().expect("rate"))
        .expect("limiter");
    paused
        .pause_for(Duration::from_secs(600))
        .await
        .expect("pause");
    let browsers = limits
        .semaphore("mx-browsers", SemaphoreConfig::new(3))
        .expect("semaphore");
    let permit = browsers
        .try_acquire()
        .await
        .expect("acquire")
        .expect("a permit");

    let counter = |exp: &Exposition, outcome: &str| {
        exp.value(
            "lanes_worker_tasks_total",
            &[("worker", &worker_id), ("outcome", outcome)],
        )
    };
    let (exp, text) = scrape_until(&ctx, |exp| {
        counter(exp, "succeeded") == Some(7.0)
            && counter(exp, "failed") == Some(1.0)
            && counter(exp, "dead") == Some(1.0)
            && exp.value("lanes_tasks_running", &[("queue", "mx"), ("kind", "hold")]) == Some(1.0)
    })
    .await;

    let tasks = |queue: &str, outcome: &str| {
        exp.value(
            "lanes_tasks_total",
            &[("queue", queue), ("outcome", outcome)],
        )
    };
    // 10 run + 1 delayed + 1 cancelled; `flaky` and `doomed` retried once each.
    assert_eq!(tasks("mx", "enqueued"), Some(12.0), "{text}");
    assert_eq!(tasks("mx", "succeeded"), Some(7.0), "{text}");
    assert_eq!(tasks("mx", "retried"), Some(3.0), "{text}");
    assert_eq!(tasks("mx", "failed"), Some(1.0), "{text}");
    assert_eq!(tasks("mx", "dead"), Some(1.0), "{text}");
    assert_eq!(tasks("mx", "cancelled"), Some(1.0), "{text}");
    assert_eq!(tasks("mx", "expired"), Some(0.0), "{text}");
    assert_eq!(tasks("mxl", "expired"), Some(1.0), "{text}");
    assert_eq!(tasks("mxl", "enqueued"), Some(1.0), "{text}");

    let depth = |queue: &str, state: &str| {
        exp.value("lanes_queue_depth", &[("queue", queue), ("state", state)])
    };
    assert_eq!(depth("mx", "queued"), Some(0.0), "{text}");
    assert_eq!(depth("mx", "scheduled"), Some(1.0), "{text}");
    assert_eq!(depth("mx", "running"), Some(1.0), "{text}");
    assert_eq!(depth("mx", "dead"), Some(2.0), "{text}");
    assert_eq!(
        depth("mxl", "queued"),
        Some(1.0),
        "the expired task is back: {text}"
    );

    // The worker's own counters: 13 attempts started (two each for `flaky` and `doomed`).
    assert_eq!(counter(&exp, "started"), Some(13.0), "{text}");
    assert_eq!(counter(&exp, "retried"), Some(3.0), "{text}");
    assert_eq!(counter(&exp, "cancelled"), Some(0.0), "{text}");
    assert_eq!(exp.value("lanes_workers_alive", &[]), Some(1.0), "{text}");
    assert_eq!(exp.value("lanes_worker_slots", &[]), Some(2.0), "{text}");
    assert_eq!(
        exp.value("lanes_worker_busy_slots", &[]),
        Some(1.0),
        "{text}"
    );
    let age = exp.value(
        "lanes_worker_heartbeat_age_seconds",
        &[("worker", &worker_id)],
    );
    assert!(age.is_some_and(|a| a >= 0.0), "{text}");
    assert_eq!(exp.value("lanes_redis_up", &[]), Some(1.0));

    let limiter = |metric: &str, name: &str| exp.value(metric, &[("name", name)]);
    assert_eq!(
        limiter("lanes_limiter_available_tokens", "mx-api"),
        Some(0.0),
        "{text}"
    );
    assert!(
        limiter("lanes_limiter_wait_seconds", "mx-api").is_some_and(|s| s > 0.0),
        "{text}"
    );
    assert_eq!(
        limiter("lanes_limiter_paused", "mx-api"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        limiter("lanes_limiter_paused", "mx-paused"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        limiter("lanes_limiter_available_tokens", "mx-paused"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        limiter("lanes_limiter_rate_per_second", "mx-paused"),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        limiter("lanes_semaphore_held", "mx-browsers"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        limiter("lanes_semaphore_capacity", "mx-browsers"),
        Some(3.0),
        "{text}"
    );

    // This broker's HTTP metrics count the requests of this test.
    let enqueued = exp.value(
        "lanes_http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/api/queues/{queue}/tasks"),
            ("status", "202"),
        ],
    );
    assert_eq!(enqueued, Some(f64::from(posts)), "{text}");
    let latency = exp.matching(
        "lanes_http_request_duration_seconds_count",
        &[("method", "POST"), ("route", "/api/queues/{queue}/tasks")],
    );
    assert_eq!(
        latency.iter().map(|s| s.value).sum::<f64>(),
        f64::from(posts),
        "{text}"
    );

    // Release the held task: it succeeds and nothing runs any more.
    hold.notify_one();
    let (exp, text) = scrape_until(&ctx, |exp| counter(exp, "succeeded") == Some(8.0)).await;
    assert_eq!(
        exp.value(
            "lanes_tasks_total",
            &[("queue", "mx"), ("outcome", "succeeded")]
        ),
        Some(8.0),
        "{text}"
    );
    assert!(
        exp.matching("lanes_tasks_running", &[]).is_empty(),
        "{text}"
    );
    permit.release().await.expect("release");
    stop.cancel();
    running
        .await
        .expect("worker task")
        .expect("worker exits cleanly");
    let r = ctx.send(get("/api/workers")).await.json();
    assert_eq!(
        r["workers"],
        json!([]),
        "a stopped worker removes its record"
    );
}
