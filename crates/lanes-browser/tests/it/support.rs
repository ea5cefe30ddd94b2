//! A loopback server for pages (the fakes) and pool settings for tests.

use std::path::PathBuf;

use lanes_browser::launch::LaunchOptions;
use lanes_browser::{BrowserConfig, PoolMode};
use tokio_util::sync::CancellationToken;

/// Serves the fakes on 127.0.0.1:0 until the returned token is dropped; returns the base URL.
pub async fn fakes() -> (String, tokio_util::sync::DropGuard) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = lanes_fakes::serve(listener, lanes_fakes::FakesConfig::default(), s).await;
    });
    (format!("http://{addr}"), stop.drop_guard())
}

pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

pub fn config(mode: PoolMode, max_sessions: Option<u64>) -> BrowserConfig {
    BrowserConfig {
        launch: LaunchOptions {
            executable: chromium(),
            ..LaunchOptions::default()
        },
        mode,
        max_sessions_per_browser: max_sessions,
    }
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// SIGKILL to a browser this test launched (by its PID).
pub fn kill(pid: u32) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of a Chromium process this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

pub async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}
