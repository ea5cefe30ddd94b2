//! [`BrowserPool`]: hands out [`Session`]s, each an isolated browser context with one page.
//!
//! - [`PoolMode::Shared`] (the default): one browser per pool (per process), every session a
//!   new context in it (`Target.createBrowserContext`): separate cookies, storage and cache per
//!   account at the cost of a renderer, not a browser. After `max_sessions_per_browser`
//!   sessions the browser is retired: new sessions go to a fresh browser, and the old one closes
//!   when its last session does. A browser that crashed or was killed is noticed at the next
//!   session and relaunched.
//! - [`PoolMode::PerSession`]: a browser per session, closed with it (what the seed's Playwright
//!   bots do; kept for comparison and for isolation by process).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::launch::{Instance, LaunchOptions};
use crate::{Error, Result};

/// How sessions map to browser processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMode {
    /// One browser shared by every session, a browser context each.
    #[default]
    Shared,
    /// One browser per session.
    PerSession,
}

impl PoolMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::PerSession => "per_session",
        }
    }
}

/// Settings of a pool.
#[derive(Debug, Clone, Default)]
pub struct BrowserConfig {
    pub launch: LaunchOptions,
    pub mode: PoolMode,
    /// Shared mode: retire a browser after this many sessions (Chromium grows over time).
    pub max_sessions_per_browser: Option<u64>,
}

/// What a pool has done so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolStats {
    pub mode: &'static str,
    /// Browsers launched.
    pub launched: u64,
    /// Browsers found dead (crashed or killed) and replaced.
    pub relaunched_after_crash: u64,
    /// Browsers retired after their session budget.
    pub recycled: u64,
    /// Sessions handed out.
    pub sessions: u64,
    /// Browser processes alive now.
    pub browsers_alive: usize,
}

/// Hands out isolated sessions on one shared browser (or one browser each). Cheap to share
/// behind an `Arc`; every method takes `&self`.
pub struct BrowserPool {
    cfg: BrowserConfig,
    current: tokio::sync::Mutex<Option<Arc<Instance>>>,
    live: Mutex<Vec<Weak<Instance>>>,
    launched: AtomicU64,
    crashed: AtomicU64,
    recycled: AtomicU64,
    sessions: AtomicU64,
}

impl std::fmt::Debug for BrowserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserPool")
            .field("mode", &self.cfg.mode)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl BrowserPool {
    /// A pool; no browser starts until the first session.
    pub fn new(cfg: BrowserConfig) -> Self {
        Self {
            cfg,
            current: tokio::sync::Mutex::new(None),
            live: Mutex::new(Vec::new()),
            launched: AtomicU64::new(0),
            crashed: AtomicU64::new(0),
            recycled: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &BrowserConfig {
        &self.cfg
    }

    async fn launch(&self) -> Result<Arc<Instance>> {
        let generation = self.launched.fetch_add(1, Ordering::SeqCst) + 1;
        let instance = match Instance::launch(&self.cfg.launch, generation).await {
            Ok(i) => Arc::new(i),
            Err(e) => {
                self.launched.fetch_sub(1, Ordering::SeqCst);
                return Err(e);
            }
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&instance));
        Ok(instance)
    }

    /// The browser the next session runs on: the shared one (relaunched if it died, replaced if
    /// its budget is spent) or a fresh one.
    async fn instance(&self) -> Result<Arc<Instance>> {
        if self.cfg.mode == PoolMode::PerSession {
            let i = self.launch().await?;
            i.retiring.store(true, std::sync::atomic::Ordering::SeqCst);
            i.started.fetch_add(1, Ordering::SeqCst);
            return Ok(i);
        }
        let mut current = self.current.lock().await;
        if let Some(i) = current.as_ref()
            && i.is_gone()
        {
            warn!(
                pid = i.pid(),
                generation = i.generation,
                "browser is gone (crashed or killed): relaunching"
            );
            self.crashed.fetch_add(1, Ordering::SeqCst);
            *current = None;
        }
        let i = match current.as_ref() {
            Some(i) => i.clone(),
            None => {
                let i = self.launch().await?;
                *current = Some(i.clone());
                i
            }
        };
        let n = i.started.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .cfg
            .max_sessions_per_browser
            .is_some_and(|max| n >= max)
        {
            info!(
                pid = i.pid(),
                sessions = n,
                "browser reached its session budget: recycling"
            );
            i.retiring.store(true, Ordering::SeqCst);
            self.recycled.fetch_add(1, Ordering::SeqCst);
            *current = None;
        }
        Ok(i)
    }

    /// A new isolated session: its own browser context (cookies, storage, cache) with one blank
    /// page. Close it with [`Session::close`].
    pub async fn session(&self) -> Result<Session> {
        let instance = self.instance().await?;
        instance.open.fetch_add(1, Ordering::SeqCst);
        self.sessions.fetch_add(1, Ordering::SeqCst);
        let mut session = Session {
            page: None,
            context: None,
            instance,
            closed: false,
        };
        match session.open(self.cfg.launch.request_timeout).await {
            Ok(()) => Ok(session),
            Err(e) => {
                session.shutdown().await;
                Err(e)
            }
        }
    }

    /// PIDs of the browser processes alive now (their renderers are their descendants).
    pub fn browser_pids(&self) -> Vec<u32> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.iter()
            .filter_map(Weak::upgrade)
            .filter(|i| !i.is_gone())
            .map(|i| i.pid())
            .collect()
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            mode: self.cfg.mode.as_str(),
            launched: self.launched.load(Ordering::SeqCst),
            relaunched_after_crash: self.crashed.load(Ordering::SeqCst),
            recycled: self.recycled.load(Ordering::SeqCst),
            sessions: self.sessions.load(Ordering::SeqCst),
            browsers_alive: self.browser_pids().len(),
        }
    }

    /// Closes the shared browser (sessions still open lose it).
    pub async fn close(&self) {
        let current = self.current.lock().await.take();
        if let Some(i) = current {
            i.close().await;
        }
        let live: Vec<Arc<Instance>> = {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.iter().filter_map(Weak::upgrade).collect()
        };
        for i in live {
            i.close().await;
        }
    }
}

/// One isolated browser context with one page, on a pool's browser.
pub struct Session {
    page: Option<Page>,
    context: Option<BrowserContextId>,
    instance: Arc<Instance>,
    closed: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("browser_pid", &self.instance.pid())
            .field("context", &self.context.as_ref().map(|c| c.inner().clone()))
            .finish_non_exhaustive()
    }
}

impl Session {
    async fn open(&mut self, timeout: Duration) -> Result<()> {
        let browser = &self.instance.browser;
        let ctx = tokio::time::timeout(
            timeout,
            browser.create_browser_context(CreateBrowserContextParams::default()),
        )
        .await
        .map_err(|_| Error::Timeout(timeout, "creating a browser context"))??;
        self.context = Some(ctx.clone());
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(ctx)
            .build()
            .map_err(|e| Error::Cdp(chromiumoxide::error::CdpError::ChromeMessage(e)))?;
        let page = tokio::time::timeout(timeout, browser.new_page(params))
            .await
            .map_err(|_| Error::Timeout(timeout, "opening a page"))??;
        self.page = Some(page);
        Ok(())
    }

    /// The session's page.
    pub fn page(&self) -> Result<&Page> {
        self.page
            .as_ref()
            .ok_or_else(|| Error::BrowserGone("the session is closed".into()))
    }

    /// PID of the browser process this session runs in.
    pub fn browser_pid(&self) -> u32 {
        self.instance.pid()
    }

    /// Which browser of its pool this is (1 = the first launched).
    pub fn browser_generation(&self) -> u64 {
        self.instance.generation
    }

    /// True once the browser under this session crashed or was killed.
    pub fn browser_gone(&self) -> bool {
        self.instance.is_gone()
    }

    /// Disposes the context (closing its page, dropping its cookies) and, if its browser is
    /// retiring and this was its last session, closes the browser.
    pub async fn close(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.page = None;
        let instance = self.instance.clone();
        dispose(instance, self.context.take()).await;
    }
}

async fn dispose(instance: Arc<Instance>, context: Option<BrowserContextId>) {
    if let Some(ctx) = context
        && !instance.is_gone()
    {
        let done = tokio::time::timeout(
            Duration::from_secs(5),
            instance.browser.dispose_browser_context(ctx),
        )
        .await;
        if !matches!(done, Ok(Ok(()))) {
            debug!(pid = instance.pid(), "disposing a browser context failed");
        }
    }
    let left = instance
        .open
        .fetch_sub(1, Ordering::SeqCst)
        .saturating_sub(1);
    if left == 0 && instance.retiring.load(Ordering::SeqCst) {
        instance.close().await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        // Dropped without `close` (a cancelled task): dispose in the background.
        let instance = self.instance.clone();
        let context = self.context.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(dispose(instance, context));
        } else {
            instance.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
