//! `fakes`: serves faithful fakes of the bank portal, Gemini, SP-API, Keepa and the channel API
//! on loopback, each under its own path prefix.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Lanes fakes: loopback stand-ins for services no machine here can reach.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free one; the chosen address is printed).
    #[arg(long, env = "LANES_FAKES_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The fixtures directory.
    #[arg(long, env = "LANES_FIXTURES")]
    fixtures: Option<PathBuf>,
    /// Log format: text or json (RUST_LOG sets the level).
    #[arg(long, env = "LANES_LOG_FORMAT", default_value = "text")]
    log_format: lanes_cli::LogFormat,
    /// SP-API fake: requests per second for the whole account (over it: 429 QuotaExceeded).
    #[arg(long, env = "LANES_FAKE_SPAPI_RATE", default_value_t = 8.0)]
    spapi_rate: f64,
    /// SP-API fake: requests let through at once after a quiet spell.
    #[arg(long, env = "LANES_FAKE_SPAPI_BURST", default_value_t = 2)]
    spapi_burst: u32,
    /// Keepa fake: tokens refilled per second (one per product asked for).
    #[arg(long, env = "LANES_FAKE_KEEPA_RATE", default_value_t = 5.0)]
    keepa_rate: f64,
    /// Keepa fake: most tokens its bucket holds.
    #[arg(long, env = "LANES_FAKE_KEEPA_BURST", default_value_t = 2)]
    keepa_burst: u32,
    /// Keepa fake: the only API key accepted (default: any non-empty key).
    #[arg(long, env = "LANES_FAKE_KEEPA_KEY", hide_env_values = true)]
    keepa_key: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    lanes_cli::init_tracing(args.log_format);
    let mut cfg = lanes_fakes::FakesConfig::default();
    if let Some(f) = args.fixtures {
        cfg.fixtures = f;
    }
    cfg.spapi = lanes_fakes::spapi::SpApiConfig {
        rate_per_sec: args.spapi_rate,
        burst: args.spapi_burst,
    };
    cfg.keepa = lanes_fakes::keepa::KeepaConfig {
        rate_per_sec: args.keepa_rate,
        burst: args.keepa_burst,
        key: args.keepa_key,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("fakes listening on http://{addr}");
    tracing::info!(%addr, "fakes listening");
    lanes_fakes::serve(listener, cfg, lanes_cli::shutdown_on_signals()).await?;
    Ok(())
}
