//! Memory of Chromium process trees, read from `/proc`, and [`measure_rss`]: what N concurrent
//! accounts cost with one shared browser (a context each) versus one browser per account.
//!
//! RSS counts a shared page once per process that maps it, so summed over Chromium's many
//! processes it overstates the real footprint; PSS divides shared pages among their users and
//! sums to what the tree really costs. Both are reported.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::Result;
use crate::pool::{BrowserConfig, BrowserPool, PoolMode};

/// Memory of one process and its descendants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TreeMemory {
    pub processes: usize,
    pub rss_bytes: u64,
    pub pss_bytes: u64,
}

impl std::ops::Add for TreeMemory {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            processes: self.processes + o.processes,
            rss_bytes: self.rss_bytes + o.rss_bytes,
            pss_bytes: self.pss_bytes + o.pss_bytes,
        }
    }
}

/// Parent PID of every process, from `/proc/<pid>/stat`.
fn parents() -> std::io::Result<HashMap<u32, u32>> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses; it ends at the last ')'.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            out.insert(pid, ppid);
        }
    }
    Ok(out)
}

/// `(rss, pss)` in bytes of one process (`smaps_rollup`, else `status`'s VmRSS for both).
fn process_memory(pid: u32) -> Option<(u64, u64)> {
    let kb = |text: &str, field: &str| {
        text.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v * 1024)
    };
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        && let (Some(rss), Some(pss)) = (kb(&text, "Rss:"), kb(&text, "Pss:"))
    {
        return Some((rss, pss));
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = kb(&text, "VmRSS:")?;
    Some((rss, rss))
}

/// RSS and PSS of `root` and all its descendants (zero if it is gone).
pub fn tree_memory(root: u32) -> std::io::Result<TreeMemory> {
    let parents = parents()?;
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, ppid) in &parents {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut total = TreeMemory::default();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some((rss, pss)) = process_memory(pid) {
            total.processes += 1;
            total.rss_bytes += rss;
            total.pss_bytes += pss;
        }
        if let Some(c) = children.get(&pid) {
            stack.extend(c);
        }
    }
    Ok(total)
}

/// One line of [`measure_rss`].
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRow {
    pub mode: &'static str,
    /// Concurrent accounts (sessions, each with the page loaded).
    pub accounts: usize,
    pub browsers: usize,
    pub processes: usize,
    pub rss_bytes: u64,
    pub pss_bytes: u64,
}

impl MemoryRow {
    pub fn rss_mib(&self) -> f64 {
        self.rss_bytes as f64 / (1024.0 * 1024.0)
    }

    pub fn pss_mib(&self) -> f64 {
        self.pss_bytes as f64 / (1024.0 * 1024.0)
    }

    pub fn rss_mib_per_account(&self) -> f64 {
        self.rss_mib() / self.accounts.max(1) as f64
    }

    pub fn pss_mib_per_account(&self) -> f64 {
        self.pss_mib() / self.accounts.max(1) as f64
    }
}

/// For each count in `accounts` and each mode (shared browser with a context per account, then
/// a browser per account): opens that many sessions at once, loads `url` in each, lets them
/// settle, and sums the memory of every Chromium process tree. Closes everything it started.
pub async fn measure_rss(
    base: &BrowserConfig,
    url: &str,
    accounts: &[usize],
) -> Result<Vec<MemoryRow>> {
    let mut rows = Vec::new();
    for mode in [PoolMode::Shared, PoolMode::PerSession] {
        for &n in accounts {
            let pool = BrowserPool::new(BrowserConfig {
                mode,
                max_sessions_per_browser: None,
                ..base.clone()
            });
            let result = measure_one(&pool, url, n).await;
            pool.close().await;
            let (browsers, mem) = result?;
            rows.push(MemoryRow {
                mode: mode.as_str(),
                accounts: n,
                browsers,
                processes: mem.processes,
                rss_bytes: mem.rss_bytes,
                pss_bytes: mem.pss_bytes,
            });
        }
    }
    Ok(rows)
}

async fn measure_one(pool: &BrowserPool, url: &str, n: usize) -> Result<(usize, TreeMemory)> {
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push(pool.session().await?);
    }
    let loads = sessions.iter().map(|s| async move {
        let page = s.page()?;
        page.goto(url).await?;
        Ok::<_, crate::Error>(())
    });
    for r in futures::future::join_all(loads).await {
        r?;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pids = pool.browser_pids();
    let mut total = TreeMemory::default();
    for pid in &pids {
        total = total + tree_memory(*pid)?;
    }
    for s in sessions {
        s.close().await;
    }
    Ok((pids.len(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory() {
        let me = tree_memory(std::process::id()).expect("read /proc");
        assert!(me.processes >= 1);
        assert!(me.rss_bytes > 0 && me.pss_bytes > 0);
        assert_eq!(tree_memory(u32::MAX).expect("read /proc").processes, 0);
    }
}
