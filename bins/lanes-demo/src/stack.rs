//! The embedded local stack: Redis, worker processes, a loopback HTTP target. Everything it
//! starts it stops, by PID.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use lanes_queue::{Config, Lanes};
use lanes_testkit::{ChildGuard, RedisServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Stack {
    pub url: String,
    pub prefix: String,
    pub lanes: Lanes,
    pub bin_dir: PathBuf,
    _redis: Option<RedisServer>,
    processes: Vec<(String, ChildGuard)>,
}

impl Stack {
    pub async fn start(redis_url: Option<String>, bin_dir: PathBuf) -> Result<Self> {
        let (url, redis) = match redis_url {
            Some(u) => (u, None),
            None => {
                let r = RedisServer::start(&[])
                    .map_err(anyhow::Error::msg)
                    .context("start redis-server")?;
                (r.url().to_owned(), Some(r))
            }
        };
        let prefix = format!("demo{}", std::process::id());
        let lanes = Lanes::connect(
            &url,
            Config {
                prefix: prefix.clone(),
                ..Config::default()
            },
        )
        .await?;
        Ok(Self {
            url,
            prefix,
            lanes,
            bin_dir,
            _redis: redis,
            processes: Vec::new(),
        })
    }

    pub fn redis_display(&self) -> String {
        match self.url.rfind('@') {
            Some(at) => format!("redis://***@{}", &self.url[at + 1..]),
            None => self.url.clone(),
        }
    }

    /// Starts one of the Lanes binaries against this stack's Redis and prefix.
    pub fn spawn(&mut self, label: &str, bin: &str, args: &[&str]) -> Result<()> {
        let path = self.bin_dir.join(bin);
        let mut cmd = Command::new(&path);
        cmd.args(args)
            .env("REDIS_URL", &self.url)
            .env("LANES_PREFIX", &self.prefix)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child =
            ChildGuard::spawn(&mut cmd).with_context(|| format!("start {}", path.display()))?;
        println!("  started {label} (pid {})", child.pid());
        self.processes.push((label.to_owned(), child));
        Ok(())
    }

    /// SIGTERM to every process it started, then waits; true when all exited 0.
    pub async fn stop(&mut self) -> Result<bool> {
        let mut clean = true;
        for (_, p) in &self.processes {
            p.signal(libc::SIGTERM);
        }
        for (label, mut p) in self.processes.drain(..) {
            let status = tokio::task::spawn_blocking(move || {
                let s = p.wait_timeout(Duration::from_secs(40));
                (s, p)
            })
            .await?;
            match status.0 {
                Some(s) if s.success() => println!("  stopped {label}: exit 0"),
                Some(s) => {
                    clean = false;
                    println!("  stopped {label}: {s}");
                }
                None => {
                    clean = false;
                    println!("  {label} did not stop within 40s; killed");
                }
            }
        }
        Ok(clean)
    }
}

/// A loopback HTTP server answering every request with 200 and a small JSON body (the target of
/// the demo's `http` tasks). Returns its URL; it lives until the demo exits.
pub async fn http_target() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut read = 0;
                // Read the head and whatever body arrives with it; the reply does not depend on it.
                while read < buf.len() {
                    match sock.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                    let text = String::from_utf8_lossy(&buf[..read]);
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if read >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                let body = r#"{"received":true}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    Ok(format!("http://{addr}/hook"))
}

/// Waits (up to 20 s) until something listens on 127.0.0.1:`port` (a process the stack started).
pub async fn wait_listening(port: u16) -> Result<()> {
    let started = std::time::Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(20),
            "nothing listens on port {port} after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
