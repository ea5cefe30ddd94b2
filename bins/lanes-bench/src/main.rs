//! `lanes-bench`: runs the benchmark suite against a real Redis (its own `redis-server` on a
//! free port unless `REDIS_URL` is set), prints a table and writes JSON.
//!
//! Modules: `engine` (throughput and latency of the queue), `limiter` (rate limiters and a
//! rate-limited queue), `report` (table and JSON).

mod bank;
mod batches;
mod channels;
mod engine;
mod keys;
mod limiter;
mod photos;
mod report;
mod scaling;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

/// Lanes benchmarks: no-op throughput (enqueue single and bulk; process at several
/// concurrencies, in one and two worker processes), idle-queue latency, and redis-benchmark's
/// raw ceiling measured in the same run; then the rate limiter: decision latency, achieved rate
/// against the configured one (8 tasks in 4 processes on one limiter) and a rate-limited queue.
/// Every row goes to one table and one JSON file.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Which benchmarks to run: all, engine (queue throughput and latency) or limiter (about 30 s).
    #[arg(long, env = "LANES_BENCH_SUITE", value_enum, default_value_t = Suite::All)]
    suite: Suite,
    /// Use this Redis instead of starting one.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Tasks per throughput run.
    #[arg(long, env = "LANES_BENCH_TASKS", default_value_t = 20_000)]
    tasks: usize,
    /// Samples for the latency run.
    #[arg(long, env = "LANES_BENCH_SAMPLES", default_value_t = 500)]
    samples: usize,
    /// The `worker` binary for the multi-process runs (default: next to this binary).
    #[arg(long, env = "LANES_WORKER_BIN")]
    worker_bin: Option<PathBuf>,
    /// Where to write the JSON report (every row of the table, engine and limiter alike).
    #[arg(
        long,
        env = "LANES_BENCH_OUT",
        default_value = "target/bench/engine.json"
    )]
    out: PathBuf,
    #[command(subcommand)]
    child: Option<Child>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    All,
    Engine,
    Limiter,
    /// The bank bot: browser memory per account and accounts scraped per minute.
    Bank,
    /// The product-batch analyzer: 1000 products through 3 chunkers.
    Batches,
    /// Scale-out: 1, 2 and 4 worker processes on one Redis and on a 3-master cluster.
    Scaling,
}

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Suite::All => "all",
            Suite::Engine => "engine",
            Suite::Limiter => "limiter",
            Suite::Bank => "bank",
            Suite::Batches => "batches",
            Suite::Scaling => "scaling",
        }
    }
}

#[derive(Debug, Subcommand)]
enum Child {
    /// Internal: one of the limiter benchmark's processes.
    #[command(hide = true)]
    LimiterChild(limiter::ChildArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Child::LimiterChild(child)) = args.child {
        return limiter::child(child).await;
    }
    let own;
    let (url, port) = match &args.redis_url {
        Some(url) => (url.clone(), None),
        None => {
            own = lanes_testkit::RedisServer::start(&[]).map_err(anyhow::Error::msg)?;
            (own.url().to_owned(), Some(own.port()))
        }
    };
    let worker_bin = match args.worker_bin {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("worker"),
    };
    let cfg = engine::Settings {
        url,
        redis_port: port,
        tasks: args.tasks,
        samples: args.samples,
        worker_bin,
    };
    let mut rows = Vec::new();
    if matches!(args.suite, Suite::All | Suite::Engine) {
        rows.extend(engine::run_all(&cfg).await?);
    }
    if matches!(args.suite, Suite::All | Suite::Limiter) {
        rows.extend(limiter::run_all(&cfg).await?);
    }
    if matches!(args.suite, Suite::All | Suite::Bank) {
        rows.extend(bank::run(&cfg).await?);
    }
    if matches!(args.suite, Suite::All | Suite::Batches) {
        rows.extend(batches::run(&cfg).await?);
    }
    if matches!(args.suite, Suite::All | Suite::Scaling) {
        rows.extend(scaling::run_all(&cfg).await?);
    }
    if args.suite == Suite::All {
        rows.extend(channels::run_all(&cfg).await?);
    }
    if args.suite == Suite::All {
        rows.extend(photos::run_all(&cfg).await?);
    }
    report::print(&rows);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_vec_pretty(&report::json(&rows, &cfg, args.suite.name()))?,
    )
    .with_context(|| format!("write {}", args.out.display()))?;
    println!("\nwrote {}", args.out.display());
    Ok(())
}
