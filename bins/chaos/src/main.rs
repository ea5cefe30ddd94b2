//! `chaos`: run the reliability campaign (`run`), be one of its worker processes (`worker`), or
//! put the broker under wrk (`load`). `make chaos` runs `scripts/chaos`, which calls both.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chaos::{load, run, worker};
use clap::{Parser, Subcommand};
use lanes_cli::parse_duration;

/// The Lanes reliability campaign.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the chaos campaign on its own redis-server and worker processes; exit 1 on a failure.
    Run {
        /// Tasks to enqueue (generic, keyed and batch).
        #[arg(long, env = "CHAOS_TASKS", default_value_t = 20_000)]
        tasks: usize,
        /// Worker processes.
        #[arg(long, env = "CHAOS_WORKERS", default_value_t = 4)]
        workers: usize,
        /// Handlers per worker process.
        #[arg(long, env = "CHAOS_CONCURRENCY", default_value_t = 16)]
        concurrency: usize,
        /// The workers' lease.
        #[arg(long, env = "CHAOS_LEASE", default_value = "3s", value_parser = parse_duration)]
        lease: Duration,
        /// SIGKILLs (each followed by a restart).
        #[arg(long, env = "CHAOS_KILLS", default_value_t = 32)]
        kills: usize,
        /// Freeze one worker (SIGSTOP) for twice its lease and a second, then resume it.
        #[arg(long, env = "CHAOS_ZOMBIE", default_value_t = true, action = clap::ArgAction::Set)]
        zombie: bool,
        /// Times Redis is frozen (SIGSTOP).
        #[arg(long, env = "CHAOS_REDIS_PAUSES", default_value_t = 2)]
        redis_pauses: usize,
        /// How long Redis stays frozen each time.
        #[arg(long, env = "CHAOS_REDIS_PAUSE", default_value = "3s", value_parser = parse_duration)]
        redis_pause: Duration,
        /// The last Redis pause lasts this long instead (0s: like the others); longer than the
        /// engine's 5 s response timeout, so writes lose their reply yet run.
        #[arg(long, env = "CHAOS_LONG_REDIS_PAUSE", default_value = "7s", value_parser = parse_duration)]
        long_redis_pause: Duration,
        /// Enqueueing and chaos happen within this window.
        #[arg(long, env = "CHAOS_WINDOW", default_value = "60s", value_parser = parse_duration)]
        window: Duration,
        /// The whole run (window, drain, stop) must end within this.
        #[arg(long, env = "CHAOS_DEADLINE", default_value = "4m", value_parser = parse_duration)]
        deadline: Duration,
        /// Seed of the workload and of the choice of victims.
        #[arg(long, env = "CHAOS_SEED", default_value_t = 1)]
        seed: u64,
        /// Where records, logs and chaos.json go.
        #[arg(long, env = "CHAOS_OUT", default_value = "target/chaos")]
        out: PathBuf,
    },
    /// One chaos worker process (started by `run`).
    Worker {
        #[arg(long)]
        redis_url: String,
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        name: String,
        /// This process's record file (appended to).
        #[arg(long)]
        record: PathBuf,
        #[arg(long, value_parser = parse_duration)]
        lease: Duration,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// The broker under wrk: dispatch and status routes; exit 1 on errors or memory growth.
    Load {
        /// The broker binary.
        #[arg(long, default_value = "target/release/broker")]
        broker: PathBuf,
        /// The generic worker binary (drains the queue).
        #[arg(long, default_value = "target/release/worker")]
        worker: PathBuf,
        #[arg(long, default_value = "wrk")]
        wrk: PathBuf,
        /// The wrk script that POSTs a task.
        #[arg(long, default_value = "fixtures/chaos-dispatch.lua")]
        dispatch_script: PathBuf,
        /// How long each route is driven.
        #[arg(long, env = "CHAOS_LOAD_DURATION", default_value = "30s", value_parser = parse_duration)]
        duration: Duration,
        /// Load before the first memory sample (split across both routes).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        warmup: Duration,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Worker processes draining the queue.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        #[arg(long, env = "CHAOS_OUT", default_value = "target/chaos")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The controller spawns its children from this one thread (their parent-death signal is tied
    // to it); a worker process runs on a multi-threaded runtime like any production worker.
    let rt = match args.command {
        Cmd::Worker { .. } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(go(args.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn go(cmd: Cmd) -> anyhow::Result<bool> {
    match cmd {
        Cmd::Run {
            tasks,
            workers,
            concurrency,
            lease,
            kills,
            zombie,
            redis_pauses,
            redis_pause,
            long_redis_pause,
            window,
            deadline,
            seed,
            out,
        } => {
            std::fs::create_dir_all(&out)?;
            let s = run::RunSettings {
                exe: std::env::current_exe()?,
                out,
                tasks,
                workers: workers.max(2),
                concurrency,
                lease,
                kills,
                zombie,
                redis_pauses,
                redis_pause,
                long_redis_pause,
                window,
                deadline,
                seed,
            };
            let report = run::run(s).await?;
            print!("{}", run::table(&report));
            Ok(report.passed)
        }
        Cmd::Worker {
            redis_url,
            prefix,
            name,
            record,
            lease,
            concurrency,
        } => {
            lanes_cli::init_tracing(lanes_cli::LogFormat::Text);
            let s = worker::WorkerSettings {
                redis_url,
                prefix,
                name,
                record,
                lease,
                concurrency,
            };
            worker::run(s, lanes_cli::shutdown_on_signals()).await?;
            Ok(true)
        }
        Cmd::Load {
            broker,
            worker,
            wrk,
            dispatch_script,
            duration,
            warmup,
            threads,
            connections,
            workers,
            out,
        } => {
            std::fs::create_dir_all(&out)?;
            let s = load::LoadSettings {
                broker,
                worker,
                wrk,
                dispatch_script,
                out,
                duration,
                warmup,
                threads,
                connections,
                workers,
                rss_growth: 0.5,
                rss_slack_kib: 16 * 1024,
            };
            let report = load::run(s).await?;
            print!("{}", load::table(&report));
            Ok(report.passed)
        }
    }
}
