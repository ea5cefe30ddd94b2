//! Sessions, isolation, recycling, crash relaunch and memory, on real Chromium.

use lanes_browser::{BrowserPool, PoolMode, measure_rss};

use crate::support::{alive, config, fakes, kill, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_share_one_browser_but_not_cookies() {
    let (base, _stop) = fakes().await;
    let pool = BrowserPool::new(config(PoolMode::Shared, None));
    let a = pool.session().await.expect("session a");
    let b = pool.session().await.expect("session b");
    assert_eq!(a.browser_pid(), b.browser_pid(), "one browser for both");
    let url = format!("{base}/bank/login");
    a.page()
        .expect("page")
        .goto(url.as_str())
        .await
        .expect("load in a");
    let cookies_a = a
        .page()
        .expect("page")
        .get_cookies()
        .await
        .expect("cookies a");
    assert!(
        cookies_a.iter().any(|c| c.name == "bank_pre"),
        "{cookies_a:?}"
    );
    b.page()
        .expect("page")
        .goto(url.as_str())
        .await
        .expect("load in b");
    let in_b: Vec<String> = b
        .page()
        .expect("page")
        .get_cookies()
        .await
        .expect("cookies b")
        .into_iter()
        .map(|c| c.value)
        .collect();
    let in_a: Vec<String> = cookies_a.into_iter().map(|c| c.value).collect();
    assert!(
        in_b.iter().all(|v| !in_a.contains(v)),
        "contexts share cookies: {in_a:?} {in_b:?}"
    );
    let pid = a.browser_pid();
    a.close().await;
    b.close().await;
    assert!(alive(pid), "the shared browser outlives its sessions");
    assert_eq!(pool.stats().launched, 1);
    pool.close().await;
    assert!(
        wait_until(|| !alive(pid)).await,
        "closed pool leaves no browser"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_is_recycled_after_its_budget() {
    let pool = BrowserPool::new(config(PoolMode::Shared, Some(2)));
    let s1 = pool.session().await.expect("s1");
    let s2 = pool.session().await.expect("s2");
    let s3 = pool.session().await.expect("s3");
    assert_eq!(s1.browser_pid(), s2.browser_pid());
    assert_ne!(
        s2.browser_pid(),
        s3.browser_pid(),
        "third session on a fresh browser"
    );
    assert_eq!(s3.browser_generation(), 2);
    let old = s1.browser_pid();
    s1.close().await;
    assert!(alive(old), "retiring browser waits for its last session");
    s2.close().await;
    assert!(
        wait_until(|| !alive(old)).await,
        "retired browser closed after its last session"
    );
    s3.close().await;
    let stats = pool.stats();
    assert_eq!((stats.launched, stats.recycled), (2, 1));
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_browser_is_relaunched() {
    let pool = BrowserPool::new(config(PoolMode::Shared, None));
    let s = pool.session().await.expect("first session");
    let pid = s.browser_pid();
    s.close().await;
    kill(pid);
    assert!(wait_until(|| !alive(pid)).await);
    let s = pool.session().await.expect("session after the crash");
    assert_ne!(s.browser_pid(), pid);
    s.page()
        .expect("page")
        .goto("data:text/html,<p id=x>ok</p>")
        .await
        .expect("the new browser works");
    s.close().await;
    assert_eq!(pool.stats().relaunched_after_crash, 1);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_session_mode_closes_each_browser_with_its_session() {
    let pool = BrowserPool::new(config(PoolMode::PerSession, None));
    let a = pool.session().await.expect("a");
    let b = pool.session().await.expect("b");
    assert_ne!(a.browser_pid(), b.browser_pid());
    let (pa, pb) = (a.browser_pid(), b.browser_pid());
    a.close().await;
    b.close().await;
    assert!(wait_until(|| !alive(pa) && !alive(pb)).await);
    assert_eq!(pool.stats().browsers_alive, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_measured_for_both_modes() {
    let (base, _stop) = fakes().await;
    let rows = measure_rss(
        &config(PoolMode::Shared, None),
        &format!("{base}/bank/login"),
        &[1, 2],
    )
    .await
    .expect("measure");
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert!(
            r.rss_bytes > 0 && r.pss_bytes > 0 && r.processes > 1,
            "{r:?}"
        );
        let want = if r.mode == "shared" { 1 } else { r.accounts };
        assert_eq!(r.browsers, want, "{r:?}");
    }
}
