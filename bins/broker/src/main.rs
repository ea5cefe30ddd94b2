//! `broker`: serve the Lanes HTTP API, dashboard and metrics, or inspect the fleet from a shell.

use broker::ServeArgs;
use broker::inspect::{self, Inspect};
use clap::{Parser, Subcommand};
use lanes_cli::ConnArgs;

/// Lanes broker: the HTTP API to dispatch tasks and read their status, a live dashboard at /,
/// Prometheus metrics at /metrics, and `inspect` for the fleet from a shell.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show workers' active or reserved tasks, stats (workers, queues, limiters), dead letters,
    /// queues, or keys (lanes) with their executing and queued tasks.
    Inspect {
        what: Inspect,
        /// Queues to show, comma-separated (default: all known).
        #[arg(long, visible_alias = "queue", value_delimiter = ',')]
        queues: Option<Vec<String>>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    lanes_cli::init_tracing(args.conn.log_format);
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        None => {
            let cfg = args.serve.config(&args.conn)?;
            broker::run(cfg, lanes_cli::shutdown_on_signals()).await
        }
        Some(Command::Inspect { what, queues, json }) => {
            let lanes = args.conn.connect().await?;
            let mut out = Vec::new();
            inspect::inspect(&lanes, what, queues, json, &mut out).await?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)?;
            Ok(())
        }
    }
}
