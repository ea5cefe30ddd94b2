//! `lanes-demo`: starts an embedded local stack (its own `redis-server` on a free port unless
//! `REDIS_URL` is set, worker processes, a loopback HTTP target), runs every scenario end to end
//! with visible progress, prints a summary table, stops everything it started, and exits
//! non-zero if any expectation failed.

mod bank;
mod batches;
mod channels;
mod engine;
mod photos;
mod stack;
mod summary;
mod tickets;

use std::path::PathBuf;

use clap::Parser;

/// Runs the Lanes demo end to end on this machine.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Use this Redis instead of starting one (a fresh key prefix keeps the demo apart).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Directory holding the Lanes binaries (default: next to this one).
    #[arg(long, env = "LANES_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Worker processes per role.
    #[arg(long, env = "LANES_DEMO_WORKERS", default_value_t = 2)]
    workers: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("\ndemo: some expectations failed (see the table above)");
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("demo: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    };
    let mut stack = stack::Stack::start(args.redis_url, bin_dir).await?;
    println!(
        "lanes demo: redis at {} (prefix {})",
        stack.redis_display(),
        stack.prefix
    );
    let mut rows = Vec::new();
    let mut ok = engine::run(&mut stack, args.workers, &mut rows).await;
    if matches!(ok, Ok(true)) {
        ok = tickets::run(&mut stack, 3, &mut rows).await;
    }
    if matches!(ok, Ok(true)) {
        ok = batches::run(&mut stack, &mut rows).await;
    }
    if matches!(ok, Ok(true)) {
        ok = bank::run(&mut stack, &mut rows).await;
    }
    if matches!(ok, Ok(true)) {
        ok = photos::run(&mut stack, &mut rows).await;
    }
    if matches!(ok, Ok(true)) {
        ok = channels::run(&mut stack, &mut rows).await;
    }
    let stopped = stack.stop().await;
    summary::print(&rows);
    let all_ok = ok? && stopped? && rows.iter().all(|r| r.ok);
    Ok(all_ok)
}
