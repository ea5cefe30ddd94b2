//! The product-batch scenario (seed 003): the SP-API and Keepa fakes at their real limits (8/s
//! and 5/s), two `chunker` processes, and a job of 160 products (a few that the APIs fail, one
//! junk id) split into 8 chunks. Prints a progress line per second, then checks the counters, the
//! finalize step (exactly once), and the fakes' 429 counters (zero: the fleet-wide limiters hold
//! the limits). A second job is cancelled mid-way.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chunker::{JobCancel, JobState, JobStatus, QUEUE, cancel_job, dispatch_job, job_status};
use lanes_fakes::FakesConfig;
use lanes_fakes::products::Catalog;
use lanes_queue::{BatchId, TaskId};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stack::Stack;
use crate::summary::Row;

const PRODUCTS: usize = 160;
const CHUNKERS: usize = 2;

pub async fn run(stack: &mut Stack, rows: &mut Vec<Row>) -> Result<bool> {
    println!(
        "\n== product batches: {PRODUCTS} products in 8 chunks on queue `{QUEUE}`, {CHUNKERS} chunker processes, SP-API 8/s and Keepa 5/s =="
    );
    let port = lanes_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    stack.spawn(
        "fakes (SP-API 8/s, Keepa 5/s)",
        "fakes",
        &["--listen", &format!("127.0.0.1:{port}")],
    )?;
    crate::stack::wait_listening(port).await?;
    let (spapi, keepa) = (format!("{base}/spapi"), format!("{base}/keepa"));
    for i in 0..CHUNKERS {
        let name = format!("chunker-{i}");
        stack.spawn(
            &name,
            "chunker",
            &[
                "--name",
                &name,
                "--concurrency",
                "4",
                "--spapi-url",
                &spapi,
                "--keepa-url",
                &keepa,
                // Credentials of the fakes, not secrets; real ones come from the environment.
                "--spapi-token",
                "demo-token",
                "--keepa-key",
                "demo-key",
            ],
        )?;
    }

    let catalog = Catalog::load(&FakesConfig::default().fixtures)
        .map_err(anyhow::Error::msg)
        .context("load the product fixture")?;
    let failing: Vec<String> = catalog
        .not_found()
        .iter()
        .chain(catalog.server_error())
        .cloned()
        .collect();
    let expected_errors = failing.len() as u64 + 1;
    let mut products: Vec<String> = catalog
        .products()
        .iter()
        .take(PRODUCTS - failing.len() - 1)
        .map(|p| p.asin.clone())
        .collect();
    for (i, id) in failing.into_iter().enumerate() {
        products.insert(i * 25 + 7, id);
    }
    products.insert(80, "not-an-asin!".into());

    let lanes = stack.lanes.clone();
    let job = dispatch_job(&lanes, products).await?;
    println!("  dispatched job {job} ({PRODUCTS} products)");
    let s = follow(stack, &job, Duration::from_secs(120)).await?;

    let batch = BatchId::from(job.clone());
    let info = lanes.batch(&batch).await?;
    let finalize_runs = match &info {
        Some(b) => match &b.finalize_task {
            Some(f) => lanes.task(f).await?.map_or(0, |t| t.attempts),
            None => 0,
        },
        None => 0,
    };
    let finalizing_events = count_events(stack, &batch, "finalizing").await?;
    let sp = http_get_json(&format!("{spapi}/_stats")).await?;
    let kp = http_get_json(&format!("{keepa}/_stats")).await?;
    let n = |v: &Value, f: &str| v[f].as_u64().unwrap_or(u64::MAX);
    let summary = s.result.clone().unwrap_or(Value::Null);
    let top_error = summary["top_errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();

    let total = PRODUCTS as u64;
    rows.push(Row {
        scenario: "batches",
        what: "products processed".into(),
        expected: format!("{total}/{total}"),
        got: format!("{}/{}", s.processed_items, s.total_items),
        detail: format!("status {}, {} chunks", s.status.as_str(), s.chunks),
        ok: s.status == JobState::Completed && s.processed_items == total && s.total_items == total,
    });
    rows.push(Row {
        scenario: "batches",
        what: "success + errors = total".into(),
        expected: format!("{} + {expected_errors}", total - expected_errors),
        got: format!("{} + {}", s.success_count, s.error_count),
        detail: format!("errors: 3 × 404, 3 × 500, 1 junk; top: {top_error}"),
        ok: s.success_count == total - expected_errors && s.error_count == expected_errors,
    });
    rows.push(Row {
        scenario: "batches",
        what: "finalize ran once".into(),
        expected: "1".into(),
        got: format!("{finalize_runs}"),
        detail: format!(
            "{finalizing_events} finalizing event; summary in {} ms",
            summary["duration_ms"]
        ),
        ok: finalize_runs == 1 && finalizing_events == 1 && summary["status"] == "completed",
    });
    rows.push(Row {
        scenario: "batches",
        what: "429s from SP-API / Keepa".into(),
        expected: "0 / 0".into(),
        got: format!("{} / {}", n(&sp, "refused_429"), n(&kp, "refused_429")),
        detail: format!(
            "calls {} / {}; peak {}/s / {}/s",
            n(&sp, "served"),
            n(&kp, "served"),
            n(&sp, "peak_per_second"),
            n(&kp, "peak_per_second")
        ),
        ok: n(&sp, "refused_429") == 0 && n(&kp, "refused_429") == 0,
    });

    // Cancel a second job mid-way: the rest is not processed and the counters stay consistent.
    let second: Vec<String> = catalog
        .products()
        .iter()
        .skip(200)
        .take(240)
        .map(|p| p.asin.clone())
        .collect();
    let job2 = dispatch_job(&lanes, second).await?;
    println!("  dispatched job {job2} (240 products); cancelling it after 20");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(stack, &job2).await?;
        if s.processed_items >= 20 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "job {job2} made no progress");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = cancel_job(&lanes, &job2).await?;
    println!("  cancel: {out:?}");
    let c = follow(stack, &job2, Duration::from_secs(60)).await?;
    rows.push(Row {
        scenario: "batches",
        what: "cancel mid-job".into(),
        expected: "cancelled".into(),
        got: c.status.as_str().into(),
        detail: format!(
            "{} of 240 processed = {} ok + {} errors; summary written",
            c.processed_items, c.success_count, c.error_count
        ),
        ok: matches!(out, JobCancel::Stopping { .. })
            && c.status == JobState::Cancelled
            && c.processed_items < 240
            && c.success_count + c.error_count == c.processed_items
            && c.result.is_some(),
    });
    Ok(rows
        .iter()
        .filter(|r| r.scenario == "batches")
        .all(|r| r.ok))
}

async fn status(stack: &Stack, job: &TaskId) -> Result<JobStatus> {
    job_status(&stack.lanes, job)
        .await?
        .with_context(|| format!("job {job} is gone"))
}

/// Prints a progress line per second until the job is final.
async fn follow(stack: &Stack, job: &TaskId, timeout: Duration) -> Result<JobStatus> {
    let started = Instant::now();
    loop {
        let s = status(stack, job).await?;
        let width = 30;
        let filled = (s.progress as usize * width / 100).min(width);
        println!(
            "  [{:>5.1}s] {}{} {:>3}% {:>3}/{} processed · ok {:>3} · errors {} · {}",
            started.elapsed().as_secs_f64(),
            "█".repeat(filled),
            "░".repeat(width - filled),
            s.progress,
            s.processed_items,
            s.total_items,
            s.success_count,
            s.error_count,
            s.status.as_str()
        );
        if s.status.is_final() {
            return Ok(s);
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "job {job} did not finish within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn count_events(stack: &Stack, batch: &BatchId, event: &str) -> Result<usize> {
    let mut n = 0;
    let mut after: Option<String> = None;
    loop {
        let page = stack
            .lanes
            .batch_events(QUEUE, after.as_deref(), 1000)
            .await?;
        let Some(last) = page.last() else {
            return Ok(n);
        };
        after = Some(last.id.clone());
        n += page
            .iter()
            .filter(|e| &e.batch == batch && e.event == event)
            .count();
    }
}

/// A JSON GET over plain HTTP/1.1 (the fakes' `_stats`); the demo needs no HTTP client for it.
async fn http_get_json(url: &str) -> Result<Value> {
    let rest = url.strip_prefix("http://").context("an http:// url")?;
    let (host, path) = rest.split_once('/').context("a path")?;
    let mut sock = tokio::net::TcpStream::connect(host).await?;
    let req = format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).with_context(|| format!("{url}: not JSON: {text}"))
}
