//! Product-batch benchmark (seed 003): 1000 products through 3 `chunker` processes against the
//! SP-API and Keepa fakes: wall time against the bound the Keepa limit imposes, and the 429s the
//! fakes served. Quick by default (limits scaled ×10); `LANES_BENCH_REAL_LIMITS=1` runs at the
//! real 8/s and 5/s (Keepa bounds it at 200 s).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lanes_testkit::ChildGuard;

use crate::engine::{Settings, cleanup, fresh};
use crate::report::Row;

const PRODUCTS: usize = 1000;
const PROCESSES: usize = 3;

pub async fn run(cfg: &Settings) -> Result<Vec<Row>> {
    let dir = cfg
        .worker_bin
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if !dir.join("chunker").exists() || !dir.join("fakes").exists() {
        eprintln!("batch bench skipped: build chunker and fakes (release) first");
        return Ok(Vec::new());
    }
    let real = std::env::var("LANES_BENCH_REAL_LIMITS").is_ok_and(|v| v == "1");
    let (sp, keepa) = if real { (8, 5) } else { (80, 50) };
    eprintln!(
        "batch: {PRODUCTS} products, {PROCESSES} chunkers, SP-API {sp}/s, Keepa {keepa}/s..."
    );
    let lanes = fresh(cfg, "batch").await?;
    let port = lanes_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut fakes = Command::new(dir.join("fakes"));
    fakes
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--spapi-rate",
            &sp.to_string(),
            "--keepa-rate",
            &keepa.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _fakes = ChildGuard::spawn(&mut fakes).context("start fakes")?;
    crate::engine::wait_listening(port)?;
    let mut chunkers = Vec::new();
    for i in 0..PROCESSES {
        let mut c = Command::new(dir.join("chunker"));
        c.args([
            "--name",
            &format!("bench-chunker-{i}"),
            "--concurrency",
            "4",
        ])
        .args([
            "--spapi-url",
            &format!("{base}/spapi"),
            "--keepa-url",
            &format!("{base}/keepa"),
        ])
        .args([
            "--sp-api-rate",
            &format!("{sp}/s"),
            "--keepa-rate",
            &format!("{keepa}/s"),
        ])
        .env("REDIS_URL", &cfg.url)
        .env("LANES_PREFIX", lanes.keys().prefix())
        .env("SPAPI_ACCESS_TOKEN", "bench")
        .env("KEEPA_API_KEY", "bench")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
        chunkers.push(ChildGuard::spawn(&mut c).context("start chunker")?);
    }
    let catalog =
        lanes_fakes::products::Catalog::load(&lanes_fakes::FakesConfig::default().fixtures)
            .map_err(anyhow::Error::msg)?;
    let products: Vec<String> = catalog
        .products()
        .iter()
        .take(PRODUCTS)
        .map(|p| p.asin.clone())
        .collect();
    let started = Instant::now();
    let job = chunker::job::dispatch_job(&lanes, products)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let limit = Duration::from_secs(if real { 400 } else { 120 });
    let status = loop {
        let s = chunker::job::job_status(&lanes, &job)
            .await?
            .context("job vanished")?;
        if matches!(
            s.status,
            chunker::job::JobState::Completed | chunker::job::JobState::Cancelled
        ) {
            break s;
        }
        if started.elapsed() > limit {
            bail!("batch job did not finish within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let refused = |fake: &str| -> Result<u64> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        use std::io::{Read, Write};
        write!(
            s,
            "GET /{fake}/_stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        let body = buf.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        Ok(v["refused_429"].as_u64().unwrap_or(0))
    };
    let (sp429, keepa429) = (refused("spapi")?, refused("keepa")?);
    for c in &chunkers {
        c.signal(15);
    }
    cleanup(&lanes).await?;
    let bound = PRODUCTS as f64 / keepa as f64;
    let mode = if real {
        "real limits"
    } else {
        "quick: limits ×10"
    };
    Ok(vec![
        Row::rate(
            format!("batch: {PRODUCTS} products, {PROCESSES} chunkers (products/s)"),
            status.processed_items as f64 / wall,
            format!(
                "{mode}; wall {wall:.1} s vs Keepa bound {bound:.1} s ({:+.1} %); {} ok, {} errors",
                (wall / bound - 1.0) * 100.0,
                status.success_count,
                status.error_count
            ),
        ),
        Row::ratio(
            "batch: wall time / limit-imposed bound",
            wall / bound,
            format!("aim ≤ 1.05; 429s served: SP-API {sp429}, Keepa {keepa429} (aim 0)"),
        ),
    ])
}
