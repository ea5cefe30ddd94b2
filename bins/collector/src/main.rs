//! `collector`: the channel collector worker (seed 004) on queue `channels`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};
use collector::api::ApiConfig;
use lanes_cli::{ConnArgs, WorkerArgs, parse_duration};
use lanes_ratelimit::Rate;

/// Lanes collector: collects message channels from queue `channels` into a data directory,
/// a few channels at a time per process with no batch barriers, honouring the API's flood waits
/// across every collector, resuming each channel from its checkpoint after a crash or restart.
/// --concurrency (default 4 here) is the number of channels in flight in this process.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Where channels are written: <DATA_DIR>/<channel>/messages.jsonl (one message per line)
    /// and <DATA_DIR>/<channel>/media/<message id>.<ext>. Collectors on several machines must
    /// share it (checkpoints name positions in these files).
    #[arg(long, env = "LANES_DATA_DIR", default_value = "data/channels")]
    data_dir: PathBuf,
    /// The channel API's base URL, up to the bot<token> segment.
    #[arg(
        long,
        env = "LANES_CHANNELS_URL",
        default_value = "http://127.0.0.1:8090/channels"
    )]
    channels_url: String,
    /// The channel API's bot token (a secret: set it by env). Without one, the demo token the
    /// fake accepts is used.
    #[arg(long, env = "CHANNELS_API_TOKEN", hide_env_values = true)]
    channels_token: Option<String>,
    /// Photos of one channel downloaded at once.
    #[arg(long, env = "LANES_DOWNLOAD_CONCURRENCY", default_value_t = 4)]
    download_concurrency: usize,
    /// Calls per second to the channel API across every collector (the fleet-wide
    /// `channels_api` limiter), e.g. 50/s or 50/s,burst=10.
    #[arg(long, env = "LANES_CHANNELS_API_RATE", default_value = "50/s,burst=10")]
    api_rate: Rate,
    /// Longest flood wait (429 retry_after) sat out in place; a longer one hands the channel
    /// back to the queue to retry after it.
    #[arg(long, env = "LANES_MAX_FLOOD_WAIT", default_value = "60s", value_parser = parse_duration)]
    max_flood_wait: Duration,
    /// How long a channel waits for another job's collection of the same channel before it is
    /// retried later.
    #[arg(long, env = "LANES_CHANNEL_LOCK_WAIT", default_value = "30s", value_parser = parse_duration)]
    lock_wait: Duration,
    /// Timeout of every call to the channel API.
    #[arg(long, env = "LANES_HTTP_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    http_timeout: Duration,
}

/// The demo token the fake accepts (any non-empty token works there).
const DEMO_TOKEN: &str = "lanes-demo:collector";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Channels in flight per process default to 4 (the seed's concurrent_limit), not 8.
    let matches = Args::command()
        .mut_arg("concurrency", |a| a.default_value("4"))
        .get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    lanes_cli::init_tracing(args.conn.log_format);
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(64)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.download_concurrency > 0,
        "--download-concurrency must be at least 1"
    );
    let lanes = args.conn.connect().await?;
    let cfg = args.worker.config(collector::QUEUE)?;
    let token = match args.channels_token.filter(|t| !t.trim().is_empty()) {
        Some(t) => t,
        None => {
            tracing::warn!(
                "CHANNELS_API_TOKEN is not set: using the demo token (only the fake accepts it)"
            );
            DEMO_TOKEN.to_owned()
        }
    };
    let collector_cfg = collector::CollectorConfig {
        api: ApiConfig {
            base_url: args.channels_url,
            token,
            timeout: args.http_timeout,
            max_flood_wait: args.max_flood_wait,
        },
        api_rate: args.api_rate,
        data_dir: args.data_dir,
        download_concurrency: args.download_concurrency,
        lock_wait: args.lock_wait,
    };
    tracing::info!(
        concurrency = cfg.concurrency,
        download_concurrency = collector_cfg.download_concurrency,
        api_rate = %collector_cfg.api_rate,
        data_dir = %collector_cfg.data_dir.display(),
        "collector starting"
    );
    let worker = collector::worker(lanes, cfg, args.worker.kind_config(), collector_cfg)
        .context("set up the collector")?;
    worker.run(lanes_cli::shutdown_on_signals()).await?;
    Ok(())
}
