//! Starting one Chromium process and attaching chromiumoxide to it.
//!
//! The process is started here rather than by chromiumoxide's launcher so that this crate owns
//! it: the closed-network flags and nothing else, a fresh `--user-data-dir` per browser (removed
//! when the instance is dropped), the DevTools port chosen by Chromium (`--remote-debugging-port=0`),
//! its stderr drained so it never blocks, and a parent-death signal so a bot killed with SIGKILL
//! takes its browser with it (a headless Chromium whose parent died otherwise lives on).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chromiumoxide::Browser;
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::HandlerConfig;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tracing::{debug, info, warn};

use crate::{Error, Result};

/// Flags every browser gets: headless, no sandbox (containers), and nothing that reaches out to
/// the network by itself (no component updates, sync, metrics, first-run or default-browser
/// checks), so a browser on a closed network only ever talks to the pages it is sent to.
pub const CLOSED_NETWORK_FLAGS: [&str; 14] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--password-store=basic",
    "--mute-audio",
];

/// How to start one browser.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The Chromium executable (Debian: `/usr/bin/chromium`).
    pub executable: PathBuf,
    /// Flags added after [`CLOSED_NETWORK_FLAGS`].
    pub extra_args: Vec<String>,
    /// How long Chromium may take to print its DevTools address.
    pub launch_timeout: Duration,
    /// How long one DevTools command may take.
    pub request_timeout: Duration,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        Self {
            executable: PathBuf::from("/usr/bin/chromium"),
            extra_args: Vec::new(),
            launch_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// One running Chromium: its process, its DevTools connection, its profile directory.
pub struct Instance {
    pub(crate) browser: Browser,
    pid: u32,
    /// Sequence number within its pool (1 = the first browser launched).
    pub(crate) generation: u64,
    child: std::sync::Mutex<Option<Child>>,
    gone: Arc<AtomicBool>,
    handler: tokio::task::JoinHandle<()>,
    /// Sessions started on this browser.
    pub(crate) started: AtomicU64,
    /// Sessions open on this browser now.
    pub(crate) open: AtomicU64,
    /// No new sessions: it closes when its last session does.
    pub(crate) retiring: AtomicBool,
    profile: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("pid", &self.pid)
            .field("generation", &self.generation)
            .field("gone", &self.is_gone())
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Starts Chromium and attaches to it.
    pub async fn launch(opts: &LaunchOptions, generation: u64) -> Result<Self> {
        let profile = tempfile::Builder::new()
            .prefix("lanes-chromium-")
            .tempdir()?;
        let mut cmd = Command::new(&opts.executable);
        cmd.args(CLOSED_NETWORK_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-port=0")
            .args(&opts.extra_args)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| Error::Launch {
            path: opts.executable.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let Some(stderr) = child.stderr.take() else {
            return Err(Error::NotReady("no stderr pipe".into()));
        };
        let mut lines = BufReader::new(stderr).lines();
        let mut tail: Vec<String> = Vec::new();
        let found = tokio::time::timeout(opts.launch_timeout, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Some(url.trim().to_owned());
                }
                if tail.len() == 8 {
                    tail.remove(0);
                }
                tail.push(line);
            }
            None
        })
        .await;
        let ws = match found {
            Ok(Some(ws)) => ws,
            other => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let why = if other.is_err() {
                    format!("no DevTools address within {:?}", opts.launch_timeout)
                } else {
                    "chromium exited before it was ready".to_owned()
                };
                return Err(Error::NotReady(format!(
                    "{why}; stderr: {}",
                    tail.join(" | ")
                )));
            }
        };
        // Drain stderr for the browser's life: a full pipe would stall it.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                debug!(target: "lanes_browser::chromium", pid, line = %line, "chromium stderr");
            }
        });
        let cfg = HandlerConfig {
            // Undecodable events come back to the loop below, which drops them without logging
            // their text (they may carry form data).
            ignore_invalid_messages: false,
            viewport: None,
            request_timeout: opts.request_timeout,
            ..HandlerConfig::default()
        };
        let (browser, mut handler) = match Browser::connect_with_config(ws, cfg).await {
            Ok(pair) => pair,
            Err(e) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(e.into());
            }
        };
        let gone = Arc::new(AtomicBool::new(false));
        let flag = gone.clone();
        let handler = tokio::spawn(async move {
            let mut skipped = 0u64;
            while let Some(event) = handler.next().await {
                match event {
                    Ok(()) => {}
                    Err(CdpError::InvalidMessage(..)) => skipped += 1,
                    Err(e) if is_fatal(&e) => {
                        debug!(pid, error = %e, "devtools connection failed");
                        break;
                    }
                    Err(_) => {}
                }
            }
            flag.store(true, Ordering::SeqCst);
            debug!(pid, skipped_events = skipped, "devtools connection closed");
        });
        info!(pid, generation, "browser launched");
        Ok(Self {
            browser,
            pid,
            generation,
            child: std::sync::Mutex::new(Some(child)),
            gone,
            handler,
            started: AtomicU64::new(0),
            open: AtomicU64::new(0),
            retiring: AtomicBool::new(false),
            profile: Some(profile),
        })
    }

    /// The browser process's PID (its renderers are its descendants).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The profile directory (removed when the instance is dropped).
    pub fn profile_dir(&self) -> Option<&Path> {
        self.profile.as_ref().map(|p| p.path())
    }

    /// True once the process exited (or is a zombie) or its DevTools connection closed.
    pub fn is_gone(&self) -> bool {
        if self.gone.load(Ordering::SeqCst) {
            return true;
        }
        // The process table, not the connection, is the truth: chromiumoxide's handler can sit
        // on a socket whose peer died without ever reporting it.
        if !process_alive(self.pid) {
            self.gone.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Asks the browser to close, then kills it if it has not exited within a few seconds.
    pub async fn close(&self) {
        if !self.is_gone() {
            let close = chromiumoxide::cdp::browser_protocol::browser::CloseParams::default();
            let _ = tokio::time::timeout(Duration::from_secs(3), self.browser.execute(close)).await;
        }
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            match tokio::time::timeout(Duration::from_secs(3), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    warn!(
                        pid = self.pid,
                        "browser did not exit after Browser.close; killing it"
                    );
                    let _ = child.kill().await;
                }
            }
        }
        self.gone.store(true, Ordering::SeqCst);
        self.handler.abort();
        debug!(pid = self.pid, "browser closed");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.handler.abort();
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut child) = child {
            // kill_on_drop does the same; being explicit keeps the order: process, then profile.
            let _ = child.start_kill();
        }
    }
}

/// True while `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn is_fatal(e: &CdpError) -> bool {
    matches!(
        e,
        CdpError::Ws(_) | CdpError::Io(_) | CdpError::ChannelSendError(_)
    )
}

/// Kills the child with SIGKILL when the thread that spawned it dies (Linux `PR_SET_PDEATHSIG`).
/// Spawns happen on the runtime's worker threads, which live as long as the process's runtime.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}
