//! `photo-load-test` (behind `scripts/load-test`): N concurrent photo uploads to a broker.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use lanes_cli::parse_duration;
use photo_worker::load_test::{LoadTestConfig, load_photos, run};

/// Sends N concurrent uploads of photos to a broker's POST /seller/snap (the seed's load test),
/// follows every job to its end, and reports accepted, completed, failed and the p50/p95
/// completion times. Exits 1 unless every upload was accepted and completed.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The broker's base URL.
    #[arg(
        long,
        env = "LANES_BROKER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    broker: String,
    /// The broker's API token, when it requires one.
    #[arg(long, env = "LANES_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Uploads sent at once.
    #[arg(long, env = "LANES_LOAD_UPLOADS", default_value_t = 50)]
    uploads: usize,
    /// Photos in each upload.
    #[arg(long, env = "LANES_LOAD_PHOTOS_PER_UPLOAD", default_value_t = 1)]
    photos_per_upload: usize,
    /// Directory of photos to upload, used in turn (default: fixtures/photos of this checkout).
    #[arg(long, env = "LANES_LOAD_PHOTOS_DIR")]
    photos_dir: Option<PathBuf>,
    /// Give up on jobs not finished by then.
    #[arg(long, env = "LANES_LOAD_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    timeout: Duration,
    /// Print the report as JSON too.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match main_inner().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn main_inner() -> anyhow::Result<bool> {
    let args = Args::parse();
    let dir = args.photos_dir.unwrap_or_else(|| {
        let here = PathBuf::from("fixtures/photos");
        if here.is_dir() {
            here
        } else {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fixtures/photos"
            ))
        }
    });
    let photos: Vec<Vec<u8>> = load_photos(&dir)
        .with_context(|| format!("read photos from {}", dir.display()))?
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    anyhow::ensure!(
        !photos.is_empty(),
        "no .jpg/.png/.webp photos in {}",
        dir.display()
    );
    println!(
        "load test: {} uploads × {} photo(s) to {} ({} distinct photos)",
        args.uploads,
        args.photos_per_upload,
        args.broker,
        photos.len()
    );
    let cfg = LoadTestConfig {
        broker: args.broker,
        token: args.api_token,
        uploads: args.uploads,
        photos_per_upload: args.photos_per_upload,
        photos,
        timeout: args.timeout,
        poll: Duration::from_millis(500),
    };
    let report = run(cfg, |p| {
        println!(
            "  [{:>5.1}s] accepted {}/{} · refused {} · completed {} · failed {}",
            p.elapsed_ms as f64 / 1000.0,
            p.accepted,
            p.uploads,
            p.refused,
            p.completed,
            p.failed
        );
    })
    .await?;
    println!("{report}");
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(report.refused == 0 && report.failed == 0 && report.completed == report.uploads)
}
