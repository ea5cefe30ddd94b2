//! Headless Chromium for Lanes bots, on chromiumoxide and the system's Chromium (no download):
//! one browser per process, shared by every task through an isolated browser context each
//! (`Target.createBrowserContext`: own cookies, storage and cache, like a separate incognito
//! profile), recycled after N tasks and relaunched after a crash.
//!
//! Modules:
//! - [`launch`]: starting one Chromium process with the closed-network flags and a fresh
//!   profile directory, and attaching to its DevTools socket ([`launch::Instance`]).
//! - [`pool`]: [`BrowserPool`] hands out [`Session`]s (a context and its page), in shared or
//!   one-browser-per-session mode.
//! - [`memory`]: RSS and PSS of a Chromium process tree from `/proc`, and [`measure_rss`]
//!   comparing both modes.
//!
//! This is the only crate that depends on chromiumoxide; bots use its re-exported [`Page`].

pub mod launch;
pub mod memory;
pub mod pool;

use std::path::PathBuf;

pub use chromiumoxide::Page;
pub use chromiumoxide::error::CdpError;
pub use memory::{MemoryRow, TreeMemory, measure_rss, tree_memory};
pub use pool::{BrowserConfig, BrowserPool, PoolMode, PoolStats, Session};

/// What can go wrong driving Chromium, named for what the caller can do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Chromium executable could not be started (wrong path, not installed).
    #[error(
        "cannot start chromium at {path}: {source} (install it with `apt-get install -y chromium` or pass --chromium)"
    )]
    Launch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Chromium started but never printed its DevTools address.
    #[error("chromium did not become ready: {0}")]
    NotReady(String),
    /// The browser is gone (crashed, killed or recycled) while a session used it; a new session
    /// gets a new browser.
    #[error("the browser is gone: {0}")]
    BrowserGone(String),
    /// A DevTools command failed or timed out.
    #[error("devtools: {0}")]
    Cdp(#[from] CdpError),
    /// A step took longer than allowed.
    #[error("timed out after {0:?} {1}")]
    Timeout(std::time::Duration, &'static str),
    /// Reading `/proc` or the profile directory failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the browser process itself failed (the next session relaunches it), as opposed
    /// to one command of a healthy browser.
    pub fn is_browser_gone(&self) -> bool {
        match self {
            Self::BrowserGone(_) | Self::NotReady(_) => true,
            Self::Cdp(e) => matches!(
                e,
                CdpError::Ws(_) | CdpError::ChannelSendError(_) | CdpError::NoResponse
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
