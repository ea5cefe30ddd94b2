//! The processes a campaign owns: its own `redis-server` and its worker processes. Each is a
//! `ChildGuard` (killed by its own PID on drop, and by the kernel if this process dies); signals
//! go to those PIDs only.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lanes_testkit::{ChildGuard, free_port, ping};

/// A `redis-server` on a free loopback port, persistence off, owned by this process.
#[derive(Debug)]
pub struct Redis {
    guard: ChildGuard,
    url: String,
}

impl Redis {
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut last = None;
        for _ in 0..5 {
            let port = free_port();
            let log = File::create(dir.join("redis.log"))?;
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .args(["--loglevel", "warning"])
                .arg("--dir")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            let mut guard = ChildGuard::spawn(&mut cmd)
                .context("start redis-server (apt-get install -y redis-server)")?;
            let url = format!("redis://127.0.0.1:{port}/");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if guard.0.try_wait().ok().flatten().is_some() {
                    break;
                }
                if ping(&url) {
                    return Ok(Self { guard, url });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last = Some(format!("redis-server on port {port} did not answer"));
        }
        bail!("{}", last.unwrap_or_default())
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// SIGSTOP: the server freezes with every connection open (a stalled Redis, not a dead one).
    pub fn pause(&self) {
        self.guard.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.guard.signal(libc::SIGCONT);
    }
}

/// One incarnation of a chaos worker process.
#[derive(Debug)]
pub struct WorkerProc {
    pub slot: usize,
    pub incarnation: usize,
    pub record: PathBuf,
    started: Instant,
    guard: ChildGuard,
}

/// How to start chaos worker processes.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub exe: PathBuf,
    pub redis_url: String,
    pub prefix: String,
    pub lease: Duration,
    pub concurrency: usize,
    pub records: PathBuf,
    pub logs: PathBuf,
}

impl Launcher {
    pub fn spawn(&self, slot: usize, incarnation: usize) -> anyhow::Result<WorkerProc> {
        let stem = format!("w{slot}-{incarnation}");
        let record = self.records.join(format!("{stem}.jsonl"));
        let log = File::create(self.logs.join(format!("{stem}.log")))?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("worker")
            .args(["--redis-url", &self.redis_url, "--prefix", &self.prefix])
            .args(["--name", &format!("chaos-w{slot}")])
            .arg("--record")
            .arg(&record)
            .args(["--lease", &format!("{}ms", self.lease.as_millis())])
            .args(["--concurrency", &self.concurrency.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let guard =
            ChildGuard::spawn(&mut cmd).with_context(|| format!("start {}", self.exe.display()))?;
        Ok(WorkerProc {
            slot,
            incarnation,
            record,
            started: Instant::now(),
            guard,
        })
    }
}

impl WorkerProc {
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    pub fn signal(&self, sig: i32) {
        self.guard.signal(sig);
    }

    /// How long ago it was started.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.guard.signal(libc::SIGKILL);
        match self.guard.wait_timeout(Duration::from_secs(5)) {
            Some(_) => Ok(()),
            None => bail!("worker pid {} survived SIGKILL for 5s", self.pid()),
        }
    }

    /// SIGTERM (a graceful drain), then SIGKILL after `grace`. True if it exited by itself.
    pub fn stop(mut self, grace: Duration) -> bool {
        self.guard.signal(libc::SIGCONT);
        self.guard.signal(libc::SIGTERM);
        let clean = self
            .guard
            .wait_timeout(grace)
            .is_some_and(|status| status.success());
        drop(self.guard);
        clean
    }

    /// Exited already (crashed)?
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.guard.0.try_wait().ok().flatten()
    }
}

/// Resident memory of a process, KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
