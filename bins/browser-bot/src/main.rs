//! `browser-bot`: the bank-account bot worker (queue `bank-bot`), or `--measure` to report the
//! browser memory per concurrent account in both browser modes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use browser_bot::{BotConfig, CredentialStore};
use clap::Parser;
use lanes_browser::launch::LaunchOptions;
use lanes_browser::{BrowserConfig, PoolMode};
use lanes_cli::{ConnArgs, WorkerArgs, parse_duration};

/// Lanes bank-account bot: logs in to the bank portal with headless Chromium (one shared
/// browser, an isolated context per account) and stores each account's deposits. Credentials
/// come from --secrets-file or BANK_CREDENTIALS_<ACCOUNT> variables, never from tasks.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// The Chromium executable (Debian's package: /usr/bin/chromium).
    #[arg(long, env = "CHROMIUM_PATH", default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// Base URL of the bank portal.
    #[arg(
        long,
        env = "LANES_BANK_URL",
        default_value = "http://127.0.0.1:8090/bank"
    )]
    bank_url: String,
    /// JSON file of account id → {"username", "password", "otp_seed"?}; read at each task, so
    /// rotated secrets apply without a restart. Accounts not in it are looked up in
    /// BANK_CREDENTIALS_<ACCOUNT> (the same object; the id upper-cased, `-` as `_`).
    #[arg(long, env = "LANES_BANK_SECRETS_FILE", hide_env_values = true)]
    secrets_file: Option<PathBuf>,
    /// One browser per bot instead of one shared browser with an isolated context per account.
    #[arg(long, env = "LANES_BROWSER_PER_BOT")]
    browser_per_bot: bool,
    /// Shared browser: relaunch it after this many bot runs (0: never).
    #[arg(long, env = "LANES_MAX_TASKS_PER_BROWSER", default_value_t = 100)]
    max_tasks_per_browser: u64,
    /// How long one portal page (load or form submit) may take before the attempt is retried.
    #[arg(long, env = "LANES_BANK_PAGE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    page_timeout: Duration,
    /// How long Chromium may take to start.
    #[arg(long, env = "LANES_BROWSER_LAUNCH_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    launch_timeout: Duration,
    /// Measure browser memory for these numbers of concurrent accounts (e.g. 1,4,8) in both
    /// browser modes, print a table and JSON, and exit (needs the portal, not Redis).
    #[arg(long, env = "LANES_BOT_MEASURE", value_delimiter = ',')]
    measure: Option<Vec<usize>>,
}

fn init_tracing(args: &ConnArgs) {
    // chromiumoxide logs DevTools traffic (form fields included) at trace level and failed
    // commands with their parameters: it is never logged, whatever RUST_LOG says.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        .add_directive("chromiumoxide=off".parse().expect("static directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        lanes_cli::LogFormat::Text => builder.with_target(false).init(),
        lanes_cli::LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_tracing(&args.conn);
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let browser = BrowserConfig {
        launch: LaunchOptions {
            executable: args.chromium.clone(),
            launch_timeout: args.launch_timeout,
            ..LaunchOptions::default()
        },
        mode: if args.browser_per_bot {
            PoolMode::PerSession
        } else {
            PoolMode::Shared
        },
        max_sessions_per_browser: Some(args.max_tasks_per_browser).filter(|n| *n > 0),
    };
    if let Some(counts) = &args.measure {
        let rows = browser_bot::measure(&browser, &args.bank_url, counts)
            .await
            .context("measure browser memory")?;
        println!(
            "{:<12} {:>8} {:>8} {:>9} {:>10} {:>10} {:>14} {:>14}",
            "mode",
            "accounts",
            "browsers",
            "processes",
            "rss_mib",
            "pss_mib",
            "rss_mib/acct",
            "pss_mib/acct"
        );
        for r in &rows {
            println!(
                "{:<12} {:>8} {:>8} {:>9} {:>10.1} {:>10.1} {:>14.1} {:>14.1}",
                r.mode,
                r.accounts,
                r.browsers,
                r.processes,
                r.rss_mib(),
                r.pss_mib(),
                r.rss_mib_per_account(),
                r.pss_mib_per_account()
            );
        }
        println!("{}", serde_json::to_string(&rows)?);
        return Ok(());
    }
    let lanes = args.conn.connect().await?;
    let worker = args.worker.config(lanes_bank::QUEUE)?;
    let cfg = BotConfig {
        bank_url: args.bank_url,
        page_timeout: args.page_timeout,
        browser,
        credentials: CredentialStore::new(args.secrets_file, std::env::vars()),
        kind: args.worker.kind_config(),
    };
    browser_bot::run(lanes, cfg, worker, lanes_cli::shutdown_on_signals()).await?;
    Ok(())
}
