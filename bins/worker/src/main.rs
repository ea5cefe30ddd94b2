//! `worker`: consume queues with the built-in kinds, or act on tasks from a shell.

use std::time::Duration;

use clap::{Parser, Subcommand};
use lanes_cli::{ConnArgs, WorkerArgs, parse_duration};
use worker::commands::{self, Inspect, Submit};

/// Lanes worker: runs tasks from named queues (exec, http, sleep, noop), and submits, inspects
/// and cancels tasks from a shell.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Programs the exec kind may run, comma-separated; `*` allows any. Empty disables exec.
    #[arg(long, env = "LANES_EXEC_ALLOW", value_delimiter = ',')]
    exec_allow: Vec<String>,
    /// Command the `ticket` kind runs as `COMMAND PROJECT_ID TICKET_ID` (the ticket executor,
    /// queue `tickets`); without it this worker does not run tickets.
    #[arg(long, env = "LANES_TICKET_COMMAND")]
    ticket_command: Option<String>,
    /// Keyed tasks (tickets: projects) this process runs at once, independent of --concurrency.
    #[arg(long, env = "MAX_CONCURRENT_PROJECTS")]
    max_concurrent_keys: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enqueue tasks and print their ids, one per line.
    Submit {
        #[arg(long, default_value = "default")]
        queue: String,
        #[arg(long)]
        kind: String,
        /// The task's JSON payload.
        #[arg(long, default_value = "{}")]
        payload: String,
        /// Run no earlier than this from now (e.g. 30s, 5m, 1.5).
        #[arg(long, value_parser = parse_duration)]
        delay: Option<Duration>,
        /// 0 (lowest) to 9 (highest).
        #[arg(long, default_value_t = lanes_queue::task::DEFAULT_PRIORITY)]
        priority: u8,
        /// How many identical tasks to enqueue (in one round trip).
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long)]
        max_retries: Option<u32>,
        #[arg(long, value_parser = parse_duration)]
        soft_limit: Option<Duration>,
        #[arg(long, value_parser = parse_duration)]
        hard_limit: Option<Duration>,
        /// The task's key (its lane: a project id, an account id).
        #[arg(long)]
        key: Option<String>,
        /// What a busy key does to this task: serial (wait in order), reject, dedupe.
        #[arg(long, default_value = "serial")]
        key_policy: String,
        /// Tasks of the key allowed to run at once (serial only).
        #[arg(long, default_value_t = 1)]
        key_concurrency: u32,
    },
    /// The ticket executor's operations (queue `tickets`, one lane per project).
    #[command(subcommand)]
    Tickets(commands::TicketCommand),
    /// Print a task's state and result as JSON; exit 0 only if it succeeded.
    Status {
        id: String,
        /// Wait until the task is final.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this long (exit code 3).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Show workers' active or reserved tasks, stats, or dead letters.
    Inspect {
        what: Inspect,
        /// Queues to show (default: all known).
        #[arg(long, value_delimiter = ',')]
        queues: Option<Vec<String>>,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a waiting task, or stop a running one.
    Cancel { id: String },
    /// Put a dead-lettered task back on its queue.
    Requeue { id: String },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    restore_sigpipe();
    let args = Args::parse();
    lanes_cli::init_tracing(args.conn.log_format);
    match run(args).await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(64)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<i32> {
    let lanes = args.conn.connect().await?;
    match args.command {
        None => {
            let mut cfg = args.worker.config("default")?;
            cfg.max_concurrent_keys = args.max_concurrent_keys;
            let exec = worker::ExecPolicy {
                allow: args.exec_allow,
            };
            let w = worker::builtin_worker(
                lanes,
                cfg,
                args.worker.kind_config(),
                exec,
                args.ticket_command,
            );
            w.run(lanes_cli::shutdown_on_signals()).await?;
            Ok(0)
        }
        Some(Command::Submit {
            queue,
            kind,
            payload,
            delay,
            priority,
            count,
            max_retries,
            soft_limit,
            hard_limit,
            key,
            key_policy,
            key_concurrency,
        }) => {
            let s = Submit {
                queue,
                kind,
                payload,
                delay,
                priority,
                count,
                max_retries,
                soft_limit,
                hard_limit,
                key,
                key_policy,
                key_concurrency,
            };
            commands::submit(&lanes, s).await
        }
        Some(Command::Status { id, wait, timeout }) => {
            commands::status(&lanes, &id, wait, timeout).await
        }
        Some(Command::Inspect { what, queues, json }) => {
            commands::inspect(&lanes, what, queues, json).await
        }
        Some(Command::Cancel { id }) => commands::cancel(&lanes, &id).await,
        Some(Command::Requeue { id }) => commands::requeue(&lanes, &id).await,
        Some(Command::Tickets(cmd)) => commands::tickets(&lanes, cmd).await,
    }
}

/// `worker inspect ... | head` should end quietly like any Unix tool, not panic on a closed pipe:
/// Rust ignores SIGPIPE by default, so put the default action back.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any other thread exists; signal(2) with the
    // default action touches no memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
