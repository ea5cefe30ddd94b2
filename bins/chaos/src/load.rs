//! `chaos load`: the broker under `wrk`. Starts its own `redis-server`, a broker and worker
//! processes draining the queue, warms up, samples their memory, drives the dispatch route
//! (`POST /api/queues/{queue}/tasks`) and the status route (`GET /api/tasks/{id}`) for a while
//! each, samples memory again, and reports requests/s, p99 and errors per route.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lanes_queue::{Lanes, NewTask};
use lanes_testkit::{ChildGuard, free_port};
use serde::Serialize;
use serde_json::json;

use crate::procs::{Redis, rss_kib};
use crate::worker::engine_config;

/// The queue the load step dispatches to (`noop` tasks, drained by the generic workers).
pub const LOAD_QUEUE: &str = "load";

/// How the load step runs.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    pub broker: PathBuf,
    pub worker: PathBuf,
    pub wrk: PathBuf,
    /// The wrk Lua script that POSTs a task to the dispatch route.
    pub dispatch_script: PathBuf,
    pub out: PathBuf,
    pub duration: Duration,
    pub warmup: Duration,
    pub threads: usize,
    pub connections: usize,
    pub workers: usize,
    /// Largest RSS growth allowed from after the warm-up to the end, as a fraction...
    pub rss_growth: f64,
    /// ... and in KiB (both must be exceeded to fail: small processes move by a few MiB).
    pub rss_slack_kib: u64,
}

/// What wrk measured on one route.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WrkFigures {
    pub requests: u64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub socket_errors: u64,
    pub non_2xx: u64,
}

/// One process's memory before and after.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub process: String,
    pub before_kib: u64,
    pub after_kib: u64,
    pub grew_too_much: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub passed: bool,
    pub seconds_per_route: f64,
    pub connections: usize,
    pub dispatch: WrkFigures,
    pub status: WrkFigures,
    pub memory: Vec<Memory>,
    /// Tasks the workers completed while the load ran.
    pub tasks_succeeded: u64,
    pub rss_rule: String,
    pub problems: Vec<String>,
}

pub async fn run(s: LoadSettings) -> anyhow::Result<LoadReport> {
    let dir = s.out.join("load");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let redis = Redis::start(&dir.join("redis"))?;
    let prefix = "load";
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let conn_args = |cmd: &mut Command| {
        cmd.args(["--redis-url", redis.url(), "--prefix", prefix])
            .args(["--result-ttl", "10m"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
    };
    let mut cmd = Command::new(&s.broker);
    conn_args(&mut cmd);
    cmd.args(["--listen", &addr.to_string()])
        .stderr(File::create(dir.join("broker.log"))?);
    let broker =
        ChildGuard::spawn(&mut cmd).with_context(|| format!("start {}", s.broker.display()))?;
    let mut workers = Vec::new();
    for i in 0..s.workers {
        let mut cmd = Command::new(&s.worker);
        conn_args(&mut cmd);
        cmd.args(["--queues", LOAD_QUEUE, "--concurrency", "32"])
            .stderr(File::create(dir.join(format!("worker-{i}.log")))?);
        workers.push(
            ChildGuard::spawn(&mut cmd).with_context(|| format!("start {}", s.worker.display()))?,
        );
    }
    wait_healthy(addr, Duration::from_secs(20))?;

    // A finished task for the status route.
    let lanes = Lanes::connect(redis.url(), engine_config(prefix, Duration::from_secs(15))).await?;
    let id = lanes
        .enqueue(LOAD_QUEUE, NewTask::new("noop", json!({})))
        .await?;
    let dispatch_url = format!("http://{addr}/api/queues/{LOAD_QUEUE}/tasks");
    let status_url = format!("http://{addr}/api/tasks/{id}");

    let half = s.warmup / 2;
    wrk(&s, &dispatch_url, Some(&s.dispatch_script), half)?;
    wrk(&s, &status_url, None, half)?;
    let before = memory(&broker, &workers);
    let dispatch = wrk(&s, &dispatch_url, Some(&s.dispatch_script), s.duration)?;
    let status = wrk(&s, &status_url, None, s.duration)?;
    let after = memory(&broker, &workers);
    let tasks_succeeded = lanes
        .queue_stats(LOAD_QUEUE)
        .await?
        .counters
        .get("succeeded")
        .copied()
        .unwrap_or(0);

    let mut problems = Vec::new();
    for (route, f) in [("dispatch", &dispatch), ("status", &status)] {
        if f.socket_errors + f.non_2xx > 0 || f.requests == 0 {
            problems.push(format!(
                "{route}: {} requests, {} socket errors, {} non-2xx",
                f.requests, f.socket_errors, f.non_2xx
            ));
        }
    }
    let mut mem = Vec::new();
    for ((name, b), (_, a)) in before.into_iter().zip(after) {
        let (Some(b), Some(a)) = (b, a) else {
            problems.push(format!("{name}: no RSS (did it exit?)"));
            continue;
        };
        let limit = (b as f64 * (1.0 + s.rss_growth)) as u64;
        let grew = a > limit && a > b + s.rss_slack_kib;
        if grew {
            problems.push(format!("{name}: RSS grew from {b} KiB to {a} KiB"));
        }
        mem.push(Memory {
            process: name,
            before_kib: b,
            after_kib: a,
            grew_too_much: grew,
        });
    }
    let report = LoadReport {
        passed: problems.is_empty(),
        seconds_per_route: s.duration.as_secs_f64(),
        connections: s.connections,
        dispatch,
        status,
        memory: mem,
        tasks_succeeded,
        rss_rule: format!(
            "fails above +{:.0} % and +{} MiB after a {:?} warm-up",
            s.rss_growth * 100.0,
            s.rss_slack_kib / 1024,
            s.warmup
        ),
        problems,
    };
    std::fs::write(s.out.join("load.json"), serde_json::to_vec_pretty(&report)?)?;
    drop(workers);
    drop(broker);
    drop(redis);
    Ok(report)
}

type Samples = Vec<(String, Option<u64>)>;

fn memory(broker: &ChildGuard, workers: &[ChildGuard]) -> Samples {
    let mut out = vec![("broker".to_owned(), rss_kib(broker.pid()))];
    for (i, w) in workers.iter().enumerate() {
        out.push((format!("worker {i}"), rss_kib(w.pid())));
    }
    out
}

/// `GET /healthz` until it answers 200 (plain HTTP/1.1 over a loopback socket).
fn wait_healthy(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if http_status(addr, "/healthz").ok() == Some(200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the broker at {addr} was not healthy within {within:?}")
}

fn http_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    Ok(text.get(9..12).unwrap_or("").parse()?)
}

fn wrk(
    s: &LoadSettings,
    url: &str,
    script: Option<&PathBuf>,
    d: Duration,
) -> anyhow::Result<WrkFigures> {
    let mut cmd = Command::new(&s.wrk);
    cmd.args(["--latency", "-t", &s.threads.to_string()])
        .args(["-c", &s.connections.to_string()])
        .args(["-d", &format!("{}s", d.as_secs().max(1))])
        .args(["--timeout", "5s"]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {} (apt-get install -y wrk)", s.wrk.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

/// Reads wrk's `--latency` report.
pub fn parse_wrk(text: &str) -> anyhow::Result<WrkFigures> {
    let mut f = WrkFigures::default();
    let mut seen_rate = false;
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("50%") => f.p50_ms = millis(words.next().unwrap_or(""))?,
            Some("99%") => f.p99_ms = millis(words.next().unwrap_or(""))?,
            Some("Requests/sec:") => {
                f.requests_per_sec = words.next().unwrap_or("").parse()?;
                seen_rate = true;
            }
            Some("Socket") => {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                f.socket_errors = line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum();
            }
            Some("Non-2xx") => {
                f.non_2xx = line
                    .rsplit(' ')
                    .next()
                    .unwrap_or("")
                    .parse()
                    .context("non-2xx count")?;
            }
            Some(n) if line.contains(" requests in ") => f.requests = n.parse()?,
            _ => {}
        }
    }
    if !seen_rate {
        bail!("no Requests/sec line");
    }
    Ok(f)
}

fn millis(v: &str) -> anyhow::Result<f64> {
    let split = v
        .find(|c: char| c.is_ascii_alphabetic())
        .context("a latency without a unit")?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse()?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => bail!("unknown latency unit {unit:?}"),
    })
}

/// The figures as a table.
pub fn table(r: &LoadReport) -> String {
    let mut out = format!(
        "load (wrk, {} connections, {:.0} s per route)\n",
        r.connections, r.seconds_per_route
    );
    for (route, f) in [
        ("dispatch POST /api/queues/load/tasks", &r.dispatch),
        ("status   GET /api/tasks/{id}", &r.status),
    ] {
        out.push_str(&format!(
            "  {route:<38} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {} requests, errors {} socket + {} non-2xx\n",
            f.requests_per_sec, f.p50_ms, f.p99_ms, f.requests, f.socket_errors, f.non_2xx
        ));
    }
    for m in &r.memory {
        out.push_str(&format!(
            "  RSS {:<34} {:>7.1} MiB -> {:>7.1} MiB{}\n",
            m.process,
            m.before_kib as f64 / 1024.0,
            m.after_kib as f64 / 1024.0,
            if m.grew_too_much { "  GREW" } else { "" }
        ));
    }
    out.push_str(&format!(
        "  {:<38} {}\n  {:<38} {}\n  result                                 {}\n",
        "tasks the workers completed",
        r.tasks_succeeded,
        "RSS rule",
        r.rss_rule,
        if r.passed { "PASS" } else { "FAIL" }
    ));
    for p in &r.problems {
        out.push_str(&format!("  ! {p}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 30s test @ http://127.0.0.1:8080/api/tasks/x
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  850.13us  30.01ms   91.20%
    Req/Sec    10.79k     1.03k   12.61k    71.50%
  Latency Distribution
     50%    1.31ms
     75%    1.73ms
     90%    2.29ms
     99%    4.62ms
  644209 requests in 30.00s, 212.41MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 17
Requests/sec:  21473.25
Transfer/sec:      7.08MB
";

    #[test]
    fn reads_rate_latency_and_errors_from_wrk() {
        let f = parse_wrk(SAMPLE).expect("parse");
        assert_eq!(
            f,
            WrkFigures {
                requests: 644_209,
                requests_per_sec: 21_473.25,
                p50_ms: 1.31,
                p99_ms: 4.62,
                socket_errors: 3,
                non_2xx: 17,
            }
        );
        let clean = SAMPLE
            .lines()
            .filter(|l| !l.contains("Socket") && !l.contains("Non-2xx"))
            .collect::<Vec<_>>()
            .join("\n");
        let f = parse_wrk(&clean).expect("parse");
        assert_eq!((f.socket_errors, f.non_2xx), (0, 0));
        assert!(parse_wrk("wrk: bad url").is_err());
        assert!((millis("850.13us").expect("us") - 0.85013).abs() < 1e-9);
        assert_eq!(millis("1.5s").expect("s"), 1500.0);
    }
}
