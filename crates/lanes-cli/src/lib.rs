//! What every Lanes binary shares: the connection and worker flag groups (each flag also read
//! from an environment variable), tracing setup, the shutdown signal, and duration parsing.
//!
//! Modules: this file, and `tables` (the `inspect` tables `worker` and `broker` share);
//! binaries `#[command(flatten)]` the groups they need.

pub mod tables;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use lanes_queue::limits::Rate;
use lanes_queue::{Config, KindConfig, Lanes, RetryPolicy, WorkerConfig};
use tokio_util::sync::CancellationToken;

/// Where Redis is and which namespace to use.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Redis URL: redis://[user:password@]host:port[/db], rediss:// for TLS, redis+unix:///path.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379/",
        global = true,
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Prefix of every Redis key; processes that work together must agree on it.
    #[arg(long, env = "LANES_PREFIX", default_value = "lanes", global = true)]
    pub prefix: String,
    /// Lease length: a dead worker's task returns to the queue this long after its last heartbeat.
    #[arg(long, env = "LANES_LEASE", default_value = "15s", value_parser = parse_duration, global = true)]
    pub lease: Duration,
    /// How long finished tasks and their results are kept.
    #[arg(long, env = "LANES_RESULT_TTL", default_value = "24h", value_parser = parse_duration, global = true)]
    pub result_ttl: Duration,
    /// Log format: text or json (RUST_LOG sets the level, default info).
    #[arg(long, env = "LANES_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl ConnArgs {
    pub fn config(&self) -> Config {
        Config {
            prefix: self.prefix.clone(),
            lease: self.lease,
            result_ttl: self.result_ttl,
            ..Config::default()
        }
    }

    /// Connects, naming the server (without credentials) in the error.
    pub async fn connect(&self) -> anyhow::Result<Lanes> {
        Lanes::connect(&self.redis_url, self.config())
            .await
            .with_context(|| format!("connect to redis at {}", redact(&self.redis_url)))
    }
}

/// A Redis URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// How a worker process consumes its queues. Every domain worker takes these flags.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Queues to consume, comma-separated.
    #[arg(long, env = "LANES_QUEUES", value_delimiter = ',')]
    pub queues: Option<Vec<String>>,
    /// Tasks run at once by this process.
    #[arg(long, env = "LANES_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// Tasks leased ahead of free slots (0 fetches only for free slots).
    #[arg(long, env = "LANES_PREFETCH", default_value_t = 0)]
    pub prefetch: usize,
    /// Worker name shown by inspect and the dashboard (a unique id is derived from it).
    #[arg(long, env = "LANES_WORKER_NAME")]
    pub name: Option<String>,
    /// Exit cleanly after this many tasks (recycling, like Celery's max-tasks-per-child).
    #[arg(long, env = "LANES_MAX_TASKS")]
    pub max_tasks: Option<u64>,
    /// On SIGTERM/SIGINT, how long running tasks may take before they are handed back.
    #[arg(long, env = "LANES_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Retries after a failed first attempt, for kinds without their own setting.
    #[arg(long, env = "LANES_MAX_RETRIES", default_value_t = 3)]
    pub max_retries: u32,
    /// First retry's backoff ceiling; doubles per retry, with full jitter.
    #[arg(long, env = "LANES_RETRY_BASE", default_value = "1s", value_parser = parse_duration)]
    pub retry_base: Duration,
    /// Longest backoff between retries.
    #[arg(long, env = "LANES_RETRY_CAP", default_value = "5m", value_parser = parse_duration)]
    pub retry_cap: Duration,
    /// Soft time limit: the handler is told to wind down after this long.
    #[arg(long, env = "LANES_SOFT_LIMIT", value_parser = parse_duration)]
    pub soft_limit: Option<Duration>,
    /// Hard time limit: the handler is dropped and the attempt fails after this long.
    #[arg(long, env = "LANES_HARD_LIMIT", value_parser = parse_duration)]
    pub hard_limit: Option<Duration>,
    /// Per-queue rate limits shared by every worker on this Redis, as QUEUE=RATE pairs:
    /// `photos=50/m,tickets=8/s`; a rate may carry a burst (`photos=50/m,burst=5`). Tasks of a
    /// limited queue wait in the queue until the limit allows them. Queues this worker does not
    /// consume are ignored. May be repeated.
    #[arg(long, env = "LANES_RATE_LIMIT", value_name = "QUEUE=RATE,...", value_parser = parse_rate_limits)]
    pub rate_limit: Vec<RateLimits>,
}

/// Parsed `--rate-limit` pairs (one occurrence of the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits(pub Vec<(String, Rate)>);

/// Parses `photos=50/m,tickets=8/s` and `photos=50/m,burst=5,tickets=8/s`: a `burst=N` item
/// belongs to the rate before it (a rate always holds a `/`, a burst never does, so a queue
/// named `burst` still works: `burst=2/s`).
pub fn parse_rate_limits(s: &str) -> Result<RateLimits, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!("empty item in {s:?} (expected QUEUE=RATE,...)"));
        }
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!(
                "{item:?} is not QUEUE=RATE (examples: photos=50/m, tickets=8/s)"
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        if !value.contains('/') && key.eq_ignore_ascii_case("burst") {
            let Some((_, rate)) = pairs.last_mut() else {
                return Err(format!("{item:?} must follow a QUEUE=RATE pair"));
            };
            rate.push_str(&format!(",burst={value}"));
            continue;
        }
        if key.is_empty() {
            return Err(format!("missing queue name before '=' in {item:?}"));
        }
        lanes_queue::task::validate_queue(key).map_err(|e| e.to_string())?;
        if pairs.iter().any(|(q, _)| q == key) {
            return Err(format!("queue {key:?} is given two rate limits"));
        }
        pairs.push((key.to_owned(), value.to_owned()));
    }
    pairs
        .into_iter()
        .map(|(queue, rate)| {
            let rate = rate
                .parse::<Rate>()
                .map_err(|e| format!("queue {queue:?}: {e}"))?;
            Ok((queue, rate))
        })
        .collect::<Result<_, _>>()
        .map(RateLimits)
}

impl WorkerArgs {
    /// The worker configuration, with `default_queue` when `--queues` was not given.
    pub fn config(&self, default_queue: &str) -> anyhow::Result<WorkerConfig> {
        let queues = self
            .queues
            .clone()
            .unwrap_or_else(|| vec![default_queue.to_owned()]);
        for q in &queues {
            lanes_queue::task::validate_queue(q)?;
        }
        anyhow::ensure!(self.concurrency > 0, "--concurrency must be at least 1");
        let defaults = WorkerConfig::default();
        Ok(WorkerConfig {
            name: self.name.clone().unwrap_or(defaults.name),
            queues,
            concurrency: self.concurrency,
            prefetch: self.prefetch,
            max_tasks: self.max_tasks,
            grace: self.grace,
            default_kind: self.kind_config(),
            rate_limits: self.rate_limits()?,
            ..defaults
        })
    }

    /// Every `--rate-limit` occurrence merged; a queue limited twice is an error.
    pub fn rate_limits(&self) -> anyhow::Result<HashMap<String, Rate>> {
        let mut out = HashMap::new();
        for (queue, rate) in self.rate_limit.iter().flat_map(|r| r.0.iter()) {
            anyhow::ensure!(
                out.insert(queue.clone(), *rate).is_none(),
                "--rate-limit: queue {queue:?} is given two rate limits"
            );
        }
        Ok(out)
    }

    /// Retry policy and time limits from the flags.
    pub fn kind_config(&self) -> KindConfig {
        KindConfig {
            retry: RetryPolicy {
                max_retries: self.max_retries,
                base: self.retry_base,
                cap: self.retry_cap,
            },
            soft_limit: self.soft_limit,
            hard_limit: self.hard_limit,
        }
    }
}

/// Installs the tracing subscriber: `RUST_LOG` (default `info`), text or JSON, to stderr.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A token cancelled on the first SIGTERM or SIGINT (Ctrl-C).
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = term => tracing::info!("SIGTERM received"),
        }
        t.cancel();
    });
    token
}

/// Parses `1.5` (seconds), `500ms`, `30s`, `5m`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 30s, 500ms, 5m, 1.5)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {s:?} (use ms, s, m, h, d)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn rate_limits_parse() {
        let parsed = parse_rate_limits("photos=50/m, tickets=8/s").expect("valid");
        assert_eq!(
            parsed.0,
            vec![
                ("photos".to_owned(), Rate::per_minute(50).expect("rate")),
                ("tickets".to_owned(), Rate::per_second(8).expect("rate")),
            ]
        );
        let parsed = parse_rate_limits("photos=50/m,burst=5,burst=2/s").expect("valid");
        assert_eq!(parsed.0[0].1.to_string(), "50/m,burst=5");
        assert_eq!(parsed.0[1].0, "burst");
        assert_eq!(parsed.0[1].1.to_string(), "2/s");
    }

    #[test]
    fn bad_rate_limits_say_what_is_wrong() {
        for (bad, says) in [
            ("photos=fast", "expected COUNT/PERIOD"),
            ("=5/s", "missing queue name"),
            ("photos=0/s", "rate must be positive"),
            ("photos", "is not QUEUE=RATE"),
            ("photos=5/s,", "empty item"),
            ("burst=3,photos=5/s", "must follow"),
            ("bad queue=5/s", "invalid queue name"),
            ("photos=5/s,photos=6/s", "two rate limits"),
            ("photos=5/s,burst=0", "burst must be at least 1"),
        ] {
            let err = parse_rate_limits(bad).expect_err(bad);
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://:hunter2@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
    }
}
