//! The seed's load test: N concurrent uploads (default 50) to a broker's `POST /seller/snap`,
//! each then followed to its end through `GET /seller/snap/{job_id}`; reports how many were
//! accepted, completed and failed, and the p50/p95 completion times.
//!
//! A completion time is the job's own: from its creation to its last photo's end, on the Redis
//! clock (`created_at_ms`, `finished_at_ms`), so polling granularity does not blur it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadTestConfig {
    /// The broker, e.g. `http://127.0.0.1:8080`.
    pub broker: String,
    /// The broker's API token, when it requires one.
    pub token: Option<String>,
    /// Uploads sent at once.
    pub uploads: usize,
    /// Photos in each upload.
    pub photos_per_upload: usize,
    /// Photos to upload, used in turn.
    pub photos: Vec<Vec<u8>>,
    /// Give up on jobs not finished by then.
    pub timeout: Duration,
    /// How often each job's status is read.
    pub poll: Duration,
}

/// Counters while it runs, for progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub uploads: u64,
    pub accepted: u64,
    pub refused: u64,
    pub completed: u64,
    pub failed: u64,
    pub elapsed_ms: u64,
}

/// The outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadTestReport {
    pub uploads: u64,
    /// Answered 202.
    pub accepted: u64,
    /// Answered anything else (see `errors`).
    pub refused: u64,
    /// Jobs that ended with every photo analyzed.
    pub completed: u64,
    /// Jobs that ended with a photo failed, or did not end within the timeout.
    pub failed: u64,
    pub photos_succeeded: u64,
    pub photos_failed: u64,
    /// Job completion times (creation to last photo), ms.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub max_ms: Option<u64>,
    /// From the first upload to the last job's end.
    pub wall_ms: u64,
    pub photos_per_minute: f64,
    pub tokens: u64,
    pub cost_usd: f64,
    /// The first few distinct errors.
    pub errors: Vec<String>,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
}

enum Outcome {
    Refused(String),
    Ended {
        ok: bool,
        ms: Option<u64>,
        photos_ok: u64,
        photos_failed: u64,
        tokens: u64,
        cost: f64,
        error: Option<String>,
    },
}

/// The photos of a directory (`.jpg`, `.jpeg`, `.png`, `.webp`), by name.
pub fn load_photos(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png" | "webp")) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, std::fs::read(&path)?));
        }
    }
    out.sort();
    Ok(out)
}

/// Runs the load test, calling `on_progress` about once a second.
pub async fn run(
    cfg: LoadTestConfig,
    on_progress: impl Fn(Progress) + Send + Sync + 'static,
) -> anyhow::Result<LoadTestReport> {
    anyhow::ensure!(!cfg.photos.is_empty(), "no photos to upload");
    anyhow::ensure!(cfg.uploads > 0, "at least one upload");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = cfg.broker.trim_end_matches('/').to_owned();
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let encoded: Vec<String> = cfg
        .photos
        .iter()
        .map(|p| lanes_photos::encode_photo(p))
        .collect();
    let total = cfg.uploads as u64;

    let ticker = {
        let c = counters.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                on_progress(Progress {
                    uploads: total,
                    accepted: c.accepted.load(Ordering::Relaxed),
                    refused: c.refused.load(Ordering::Relaxed),
                    completed: c.completed.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
            }
        })
    };

    let jobs = (0..cfg.uploads).map(|i| {
        let photos: Vec<&String> = (0..cfg.photos_per_upload.max(1))
            .map(|j| &encoded[(i * cfg.photos_per_upload.max(1) + j) % encoded.len()])
            .collect();
        upload_and_follow(&http, &base, &cfg, photos, &counters)
    });
    let outcomes = futures::future::join_all(jobs).await;
    ticker.abort();

    let mut report = LoadTestReport {
        uploads: total,
        wall_ms: started.elapsed().as_millis() as u64,
        ..LoadTestReport::default()
    };
    let mut times = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Refused(e) => {
                report.refused += 1;
                note(&mut report.errors, e);
            }
            Outcome::Ended {
                ok,
                ms,
                photos_ok,
                photos_failed,
                tokens,
                cost,
                error,
            } => {
                report.accepted += 1;
                if ok {
                    report.completed += 1;
                } else {
                    report.failed += 1;
                }
                report.photos_succeeded += photos_ok;
                report.photos_failed += photos_failed;
                report.tokens += tokens;
                report.cost_usd += cost;
                times.extend(ms);
                if let Some(e) = error {
                    note(&mut report.errors, e);
                }
            }
        }
    }
    times.sort_unstable();
    let pct = |p: f64| {
        (!times.is_empty())
            .then(|| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1])
    };
    report.p50_ms = pct(0.50);
    report.p95_ms = pct(0.95);
    report.max_ms = times.last().copied();
    let minutes = report.wall_ms.max(1) as f64 / 60_000.0;
    report.photos_per_minute = report.photos_succeeded as f64 / minutes;
    report.cost_usd = (report.cost_usd * 1e6).round() / 1e6;
    Ok(report)
}

fn note(errors: &mut Vec<String>, e: String) {
    if errors.len() < 5 && !errors.contains(&e) {
        errors.push(e);
    }
}

async fn upload_and_follow(
    http: &reqwest::Client,
    base: &str,
    cfg: &LoadTestConfig,
    photos: Vec<&String>,
    counters: &Counters,
) -> Outcome {
    let mut req = http
        .post(format!("{base}/seller/snap"))
        .json(&json!({ "photos": photos }));
    if let Some(t) = &cfg.token {
        req = req.bearer_auth(t);
    }
    let job_id = match req.send().await {
        Ok(resp) if resp.status() == reqwest::StatusCode::ACCEPTED => {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            match body["job_id"].as_str() {
                Some(id) => id.to_owned(),
                None => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    return Outcome::Refused("202 without a job_id".into());
                }
            }
        }
        Ok(resp) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            return Outcome::Refused(format!(
                "upload answered {status}: {}",
                body["message"].as_str().unwrap_or("")
            ));
        }
        Err(e) => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            return Outcome::Refused(format!("upload failed: {}", e.without_url()));
        }
    };
    counters.accepted.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + cfg.timeout;
    let failed = |error: String| {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        Outcome::Ended {
            ok: false,
            ms: None,
            photos_ok: 0,
            photos_failed: 0,
            tokens: 0,
            cost: 0.0,
            error: Some(error),
        }
    };
    loop {
        tokio::time::sleep(cfg.poll).await;
        if Instant::now() > deadline {
            return failed(format!(
                "job {job_id} did not finish within {:?}",
                cfg.timeout
            ));
        }
        let mut req = http.get(format!("{base}/seller/snap/{job_id}"));
        if let Some(t) = &cfg.token {
            req = req.bearer_auth(t);
        }
        let Ok(resp) = req.send().await else { continue };
        if !resp.status().is_success() {
            continue;
        }
        let Ok(s) = resp.json::<Value>().await else {
            continue;
        };
        if s["status"] == "processing" {
            continue;
        }
        let n = |f: &str| s[f].as_u64().unwrap_or(0);
        let ok = s["status"] == "completed" && n("failed") == 0;
        let ms = match (s["created_at_ms"].as_u64(), s["finished_at_ms"].as_u64()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let error = s["photos"]
            .as_array()
            .and_then(|p| p.iter().find_map(|p| p["error"].as_str()))
            .filter(|_| !ok)
            .map(str::to_owned);
        if ok {
            counters.completed.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        return Outcome::Ended {
            ok,
            ms,
            photos_ok: n("succeeded"),
            photos_failed: n("failed"),
            tokens: s["tokens"]["total"].as_u64().unwrap_or(0),
            cost: s["cost_usd"].as_f64().unwrap_or(0.0),
            error,
        };
    }
}

impl std::fmt::Display for LoadTestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
        writeln!(
            f,
            "uploads {}  accepted {}  refused {}  completed {}  failed {}",
            self.uploads, self.accepted, self.refused, self.completed, self.failed
        )?;
        writeln!(
            f,
            "photos analyzed {}  failed {}  ·  {:.1} photos/min  ·  {} tokens  ·  ${:.4}",
            self.photos_succeeded,
            self.photos_failed,
            self.photos_per_minute,
            self.tokens,
            self.cost_usd
        )?;
        write!(
            f,
            "completion time p50 {}  p95 {}  max {}  ·  wall {:.1} s",
            ms(self.p50_ms),
            ms(self.p95_ms),
            ms(self.max_ms),
            self.wall_ms as f64 / 1000.0
        )?;
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        Ok(())
    }
}
