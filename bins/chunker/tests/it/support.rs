//! Test support: the fakes on a loopback port, `chunker` processes under the test's key prefix,
//! the product list, waiting for a job.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use chunker::{JobStatus, job_status};
use lanes_fakes::FakesConfig;
use lanes_fakes::keepa::KeepaConfig;
use lanes_fakes::products::Catalog;
use lanes_fakes::spapi::SpApiConfig;
use lanes_queue::{Config, Lanes, TaskId};
use lanes_testkit::{ChildGuard, Prefix};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The end-to-end tests share two cores; they take turns so one test's load never shows up as
/// another's latency (the zero-429 claim depends on timely requests).
pub static E2E: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const KEEPA_KEY: &str = "test-keepa-key";
pub const SPAPI_TOKEN: &str = "Atza|test-token";

/// The fakes, served until dropped.
pub struct Fakes {
    pub url: String,
    stop: CancellationToken,
}

impl Fakes {
    /// SP-API and Keepa fakes enforcing these rates. Each bucket holds `rate / 2` tokens: it
    /// absorbs half a second of jitter between a limiter's grant and the request's arrival (two
    /// chunker processes and this test on two shared, busy cores), and never lets more than the
    /// rate through on average: without the limiters, eight chunks would be refused by the
    /// hundreds.
    pub async fn start(spapi_rate: f64, keepa_rate: f64) -> Self {
        let cfg = FakesConfig {
            spapi: SpApiConfig {
                rate_per_sec: spapi_rate,
                burst: (spapi_rate / 2.0).ceil() as u32,
            },
            keepa: KeepaConfig {
                rate_per_sec: keepa_rate,
                burst: (keepa_rate / 2.0).ceil() as u32,
                key: Some(KEEPA_KEY.into()),
            },
            ..FakesConfig::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fakes");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        tokio::spawn(lanes_fakes::serve(listener, cfg, stop.clone()));
        Self { url, stop }
    }

    pub async fn stats(&self, fake: &str) -> Value {
        http_get(&format!("{}/{fake}/_stats", self.url)).await
    }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn http_get(url: &str) -> Value {
    // A tiny HTTP/1.1 GET over a TCP socket: the test needs no HTTP client of its own.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut sock = tokio::net::TcpStream::connect(host).await.expect("connect");
    let req = format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{url}: JSON ({e}): {text}"))
}

pub fn catalog() -> Catalog {
    Catalog::load(&FakesConfig::default().fixtures).expect("the product fixture loads")
}

/// A job of `n` products: catalog products, then the failing ids (3 that SP-API does not know,
/// 3 it always answers 500 for) and `junk` junk ids. Returns it with its expected errors.
pub fn products(n: usize, junk: usize) -> (Vec<String>, usize) {
    let cat = catalog();
    let failing: Vec<String> = cat
        .not_found()
        .iter()
        .chain(cat.server_error())
        .cloned()
        .collect();
    let errors = failing.len() + junk;
    let mut list: Vec<String> = cat
        .products()
        .iter()
        .take(n - errors)
        .map(|p| p.asin.clone())
        .collect();
    // Spread the failing ids over the chunks.
    for (i, id) in failing.into_iter().enumerate() {
        list.insert((i * 157) % list.len(), id);
    }
    for i in 0..junk {
        list.insert((i * 331 + 50) % list.len(), format!("junk-{i}"));
    }
    assert_eq!(list.len(), n);
    (list, errors)
}

pub async fn lanes(prefix: &Prefix) -> Lanes {
    let cfg = Config {
        prefix: prefix.name().to_owned(),
        ..Config::default()
    };
    Lanes::connect(prefix.url(), cfg).await.expect("connect")
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chunker"))
}

/// Rates and splitting for the chunker processes.
pub struct Flags {
    pub sp_api_rate: &'static str,
    pub keepa_rate: &'static str,
    pub concurrency: usize,
    pub lease: &'static str,
}

pub fn spawn_chunker(prefix: &Prefix, fakes: &Fakes, name: &str, f: &Flags) -> ChildGuard {
    let mut c = Command::new(bin());
    c.env("REDIS_URL", prefix.url())
        .env("LANES_PREFIX", prefix.name())
        .env("LANES_LEASE", f.lease)
        .env("RUST_LOG", "warn")
        .env("LANES_SPAPI_URL", format!("{}/spapi", fakes.url))
        .env("LANES_KEEPA_URL", format!("{}/keepa", fakes.url))
        .env("SPAPI_ACCESS_TOKEN", SPAPI_TOKEN)
        .env("KEEPA_API_KEY", KEEPA_KEY)
        .args(["--sp-api-rate", f.sp_api_rate, "--keepa-rate", f.keepa_rate])
        .args(["--concurrency", &f.concurrency.to_string(), "--name", name])
        .args(["--chunks", "8", "--chunk-threshold", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    ChildGuard::spawn(&mut c).expect("spawn chunker")
}

/// Polls the job until `done` says so (or `timeout` passes, then panics with its status).
pub async fn wait_job(
    lanes: &Lanes,
    id: &TaskId,
    timeout: Duration,
    mut done: impl FnMut(&JobStatus) -> bool,
) -> JobStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let s = job_status(lanes, id)
            .await
            .expect("read job")
            .expect("job exists");
        if done(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} stuck: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
