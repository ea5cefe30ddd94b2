//! `photo-worker`: the photo analyzer worker (seed 002) on queue `photos`.

use std::time::Duration;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use lanes_cli::{ConnArgs, WorkerArgs, parse_duration};
use lanes_gemini::{ApiKey, GeminiConfig, PriceTable};
use lanes_ratelimit::Rate;
use photo_worker::{PhotoConfig, PrepareConfig};

/// Lanes photo worker: analyzes photos from queue `photos` — prepares each one (EXIF
/// orientation, downscale, JPEG), asks a Gemini vision model what the item is and a text model
/// what it sells for — under one Gemini rate limit shared by every photo worker.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Gemini base URL, up to /v1beta (the real one is https://generativelanguage.googleapis.com).
    #[arg(
        long,
        env = "GEMINI_BASE_URL",
        default_value = "http://127.0.0.1:8090/gemini"
    )]
    gemini_url: String,
    /// The Gemini API key. Environment only (GEMINI_API_KEY): a command line is visible to
    /// every user of the machine.
    #[arg(long, env = "GEMINI_API_KEY", hide_env_values = true)]
    gemini_api_key: Option<String>,
    /// Model that detects the item in a photo.
    #[arg(long, env = "GEMINI_VISION_MODEL", default_value = "gemini-2.5-flash")]
    vision_model: String,
    /// Model that estimates the price (text only; a cheaper one does).
    #[arg(
        long,
        env = "GEMINI_PRICING_MODEL",
        default_value = "gemini-2.5-flash-lite"
    )]
    pricing_model: String,
    /// Gemini calls per period across every photo worker (the fleet-wide `gemini` limiter);
    /// keep it under your quota. Two calls per photo.
    #[arg(long, env = "LANES_GEMINI_RATE", default_value = "50/m")]
    gemini_rate: Rate,
    /// Longest one Gemini call may take.
    #[arg(long, env = "GEMINI_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    gemini_timeout: Duration,
    /// A 429's retry delay is capped at this.
    #[arg(long, env = "GEMINI_MAX_RETRY_DELAY", default_value = "60s", value_parser = parse_duration)]
    gemini_max_retry_delay: Duration,
    /// 429s absorbed in one attempt (waiting on the paused limiter) before the photo is
    /// retried later.
    #[arg(long, env = "LANES_GEMINI_RATE_LIMIT_WAITS", default_value_t = 3)]
    rate_limit_waits: u32,
    /// Prices in USD per million input/output tokens, over the built-in table:
    /// `gemini-2.5-flash=0.30/2.50,gemini-2.5-flash-lite=0.10/0.40`.
    #[arg(long, env = "GEMINI_PRICES", value_parser = str::parse::<PriceTable>)]
    gemini_prices: Option<PriceTable>,
    /// Thinking budget of both calls (0 turns thinking off on the Flash models; default: the
    /// model's own).
    #[arg(long, env = "GEMINI_THINKING_BUDGET", allow_negative_numbers = true)]
    thinking_budget: Option<i32>,
    /// Longest edge of the image sent to the model, in pixels.
    #[arg(long, env = "LANES_PHOTO_LONG_EDGE", default_value_t = 1024)]
    long_edge: u32,
    /// JPEG quality of the image sent (1 to 100).
    #[arg(long, env = "LANES_PHOTO_JPEG_QUALITY", default_value_t = 85)]
    jpeg_quality: u8,
    /// Largest photo accepted, in megapixels (checked before decoding).
    #[arg(long, env = "LANES_PHOTO_MAX_MEGAPIXELS", default_value_t = 40.0)]
    max_megapixels: f64,
}

/// The photo queue's own defaults for the shared worker flags (the seed's Celery settings).
fn command() -> clap::Command {
    Args::command()
        .mut_arg("retry_cap", |a| a.default_value("10m"))
        .mut_arg("soft_limit", |a| a.default_value("240s"))
        .mut_arg("hard_limit", |a| a.default_value("300s"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = command().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    lanes_cli::init_tracing(args.conn.log_format);
    let key_on_command_line =
        matches.value_source("gemini_api_key") == Some(ValueSource::CommandLine);
    match run(args, key_on_command_line).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(64)
        }
    }
}

async fn run(args: Args, key_on_command_line: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        !key_on_command_line,
        "pass the Gemini key in the GEMINI_API_KEY environment variable, not on the command line"
    );
    let key = args
        .gemini_api_key
        .filter(|k| !k.trim().is_empty())
        .context("GEMINI_API_KEY is not set")?;
    anyhow::ensure!(
        (1..=100).contains(&args.jpeg_quality),
        "--jpeg-quality must be 1 to 100"
    );
    anyhow::ensure!(
        args.long_edge >= 16,
        "--long-edge must be at least 16 pixels"
    );
    anyhow::ensure!(
        args.max_megapixels.is_finite() && args.max_megapixels > 0.0,
        "--max-megapixels must be positive"
    );
    let lanes = args.conn.connect().await?;
    let cfg = args.worker.config(photo_worker::QUEUE)?;
    let mut gemini = GeminiConfig::new(args.gemini_url, ApiKey::new(key));
    gemini.timeout = args.gemini_timeout;
    gemini.max_retry_delay = args.gemini_max_retry_delay;
    let photos = PhotoConfig {
        gemini,
        vision_model: args.vision_model,
        pricing_model: args.pricing_model,
        rate: args.gemini_rate,
        prices: match &args.gemini_prices {
            Some(p) => PriceTable::default().merged(p),
            None => PriceTable::default(),
        },
        prepare: PrepareConfig {
            long_edge: args.long_edge,
            jpeg_quality: args.jpeg_quality,
            max_pixels: (args.max_megapixels * 1e6) as u64,
        },
        rate_limit_waits: args.rate_limit_waits,
        thinking_budget: args.thinking_budget,
    };
    tracing::info!(
        vision_model = %photos.vision_model,
        pricing_model = %photos.pricing_model,
        gemini_rate = %photos.rate,
        gemini_url = %photos.gemini.base_url,
        long_edge = photos.prepare.long_edge,
        "photo worker starting"
    );
    let worker = photo_worker::worker(lanes, cfg, args.worker.kind_config(), photos)
        .context("set up the photo worker")?;
    worker.run(lanes_cli::shutdown_on_signals()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_hold_together() {
        command().debug_assert();
        let m = command()
            .try_get_matches_from(["photo-worker"])
            .expect("defaults parse");
        let args = Args::from_arg_matches(&m).expect("args");
        let kind = args.worker.kind_config();
        assert_eq!(kind.retry.max_retries, 3);
        assert_eq!(kind.retry.cap, Duration::from_secs(600));
        assert_eq!(kind.soft_limit, Some(Duration::from_secs(240)));
        assert_eq!(kind.hard_limit, Some(Duration::from_secs(300)));
        assert_eq!(args.gemini_rate.to_string(), "50/m");
    }
}
