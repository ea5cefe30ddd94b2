//! `chunker`: the product-batch analyzer worker (seed 003) on queue `analysis`.

use std::time::Duration;

use anyhow::Context;
use chunker::apis::ApiConfig;
use chunker::handlers::Splitting;
use clap::Parser;
use lanes_cli::{ConnArgs, WorkerArgs, parse_duration};
use lanes_ratelimit::Rate;

/// Lanes chunker: analyzes product jobs from queue `analysis` (SP-API catalog + Keepa prices),
/// splitting large ones into chunks that any number of chunker processes run in parallel under
/// fleet-wide rate limits.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// SP-API base URL (the real one is https://sellingpartnerapi-na.amazon.com).
    #[arg(
        long,
        env = "LANES_SPAPI_URL",
        default_value = "http://127.0.0.1:8090/spapi"
    )]
    spapi_url: String,
    /// SP-API access token (LWA), sent as x-amz-access-token (a secret: set it by env).
    #[arg(long, env = "SPAPI_ACCESS_TOKEN", hide_env_values = true)]
    spapi_token: Option<String>,
    /// SP-API marketplace id.
    #[arg(long, env = "SPAPI_MARKETPLACE_ID", default_value = "ATVPDKIKX0DER")]
    marketplace: String,
    /// Keepa base URL (the real one is https://api.keepa.com).
    #[arg(
        long,
        env = "LANES_KEEPA_URL",
        default_value = "http://127.0.0.1:8090/keepa"
    )]
    keepa_url: String,
    /// Keepa API key (a secret: set it by env).
    #[arg(long, env = "KEEPA_API_KEY", hide_env_values = true)]
    keepa_key: Option<String>,
    /// SP-API calls per second across every chunker (the fleet-wide `sp_api` limiter).
    #[arg(long, env = "LANES_SP_API_RATE", default_value = "8/s")]
    sp_api_rate: Rate,
    /// Keepa calls per second across every chunker (the fleet-wide `keepa` limiter).
    #[arg(long, env = "LANES_KEEPA_RATE", default_value = "5/s")]
    keepa_rate: Rate,
    /// Chunks a job of more than --chunk-threshold products is split into.
    #[arg(long, env = "LANES_CHUNKS", default_value_t = 8)]
    chunks: usize,
    /// Jobs of at most this many products run as one task.
    #[arg(long, env = "LANES_CHUNK_THRESHOLD", default_value_t = 100)]
    chunk_threshold: usize,
    /// Timeout of every SP-API and Keepa call.
    #[arg(long, env = "LANES_HTTP_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    http_timeout: Duration,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
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
    anyhow::ensure!(args.chunks > 0, "--chunks must be at least 1");
    let lanes = args.conn.connect().await?;
    let cfg = args.worker.config(chunker::QUEUE)?;
    let chunker = chunker::ChunkerConfig {
        apis: ApiConfig {
            spapi_url: args.spapi_url,
            spapi_token: args.spapi_token,
            marketplace: args.marketplace,
            keepa_url: args.keepa_url,
            keepa_key: args.keepa_key,
            timeout: args.http_timeout,
        },
        sp_api_rate: args.sp_api_rate,
        keepa_rate: args.keepa_rate,
        splitting: Splitting {
            chunks: args.chunks,
            threshold: args.chunk_threshold,
        },
    };
    tracing::info!(
        sp_api_rate = %args.sp_api_rate,
        keepa_rate = %args.keepa_rate,
        chunks = args.chunks,
        chunk_threshold = args.chunk_threshold,
        "chunker starting"
    );
    let worker = chunker::worker(lanes, cfg, args.worker.kind_config(), chunker)
        .context("set up the chunker")?;
    worker.run(lanes_cli::shutdown_on_signals()).await?;
    Ok(())
}
