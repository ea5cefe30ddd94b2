//! `lanes-bench`: runs the benchmark suite against a real Redis (its own `redis-server` on a
//! free port unless `REDIS_URL` is set), prints a table and writes JSON.

mod engine;
mod report;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Lanes benchmarks: no-op throughput (enqueue single and bulk; process at several
/// concurrencies, in one and two worker processes), idle-queue latency, and redis-benchmark's
/// raw ceiling measured in the same run.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
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
    /// Where to write the JSON report.
    #[arg(
        long,
        env = "LANES_BENCH_OUT",
        default_value = "target/bench/engine.json"
    )]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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
    let rows = engine::run_all(&cfg).await?;
    report::print(&rows);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_vec_pretty(&report::json(&rows, &cfg))?,
    )
    .with_context(|| format!("write {}", args.out.display()))?;
    println!("\nwrote {}", args.out.display());
    Ok(())
}
