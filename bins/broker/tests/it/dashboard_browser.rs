//! The dashboard in real headless Chromium against a running stack: a real Redis (testkit), the
//! broker served on 127.0.0.1:0 by `broker::serve`, and a worker. Chromium is started by
//! `lanes-browser` (Debian's `/usr/bin/chromium`, or `CHROMIUM_PATH`) with its closed-network
//! flags and a temporary profile, and driven over the DevTools protocol.
//!
//! The worker is the engine's `Worker` runtime in this process, the same code the `worker`
//! binary runs, with two handlers of this test: a `cargo test -p broker` run never builds the
//! `worker` binary, and this way the test decides when the "upstream" of a failing task heals.
//!
//! It checks that the page goes live, that its numbers change as tasks run (an element's text
//! read twice), and that a dead-lettered task shows up and runs again once its Re-queue button
//! is clicked (seen through the API); it saves a screenshot as `target/dashboard-test.png`.
//! Nothing is asserted about how long anything takes; the waits only bound a broken run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chromiumoxide::page::ScreenshotParams;
use lanes_browser::launch::LaunchOptions;
use lanes_browser::{BrowserConfig, BrowserPool, Page, PoolMode};
use lanes_queue::{KindConfig, Lanes, TaskContext, TaskError, TaskResult, Worker, WorkerConfig};
use lanes_testkit::Prefix;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::support::{config, lanes};

/// Bounds every wait of a broken run; generous for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM_PATH")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "no Chromium at {} (install it with `apt-get install -y chromium`, or set CHROMIUM_PATH)",
        path.display()
    );
    path
}

/// The workspace's `target/` directory: the nearest ancestor of this test executable that
/// cargo marked with `CACHEDIR.TAG`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").exists())
        .map(PathBuf::from)
        .unwrap_or_else(|| exe.ancestors().nth(3).expect("target dir").to_path_buf())
}

/// `GET path` over HTTP/1.1 from the running broker: status and JSON body.
async fn api_get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr)
        .await
        .expect("connect to the broker");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read the answer");
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, body)
}

/// The text of the first element matching `selector`, or `None` while there is none.
async fn text(page: &Page, selector: &str) -> Option<String> {
    let js = format!(
        "(() => {{ const e = document.querySelector({}); return e ? e.textContent : '\\u0000'; }})()",
        json!(selector)
    );
    let v: String = page.evaluate(js).await.ok()?.into_value().ok()?;
    (v != "\u{0}").then_some(v)
}

/// A real mouse click (DevTools input events at the element's centre) on the element matching
/// `selector`. The page re-renders with every snapshot, so the element found may be replaced
/// before its position is read: then it is looked up again.
async fn click(page: &Page, selector: &str) {
    let mut last = None;
    for _ in 0..50 {
        match page.find_element(selector).await {
            Ok(element) => match element.click().await {
                Ok(_) => return,
                Err(e) => last = Some(e.to_string()),
            },
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot click {selector}: {last:?}");
}

/// Polls `check` every 100 ms until it returns `Some`, at most [`PATIENCE`].
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `work` takes a moment and succeeds; `sync` fails permanently until the upstream heals.
fn worker(lanes: Lanes, upstream_ok: Arc<AtomicBool>) -> Worker {
    let cfg = WorkerConfig {
        name: "dashboard-test".into(),
        queues: vec!["demo".into()],
        concurrency: 2,
        heartbeat: Duration::from_millis(200),
        idle_wait: Duration::from_millis(200),
        grace: Duration::from_secs(5),
        ..WorkerConfig::default()
    };
    Worker::new(lanes, cfg)
        .register("work", KindConfig::default(), |_ctx: TaskContext| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok(json!({"done": true}))
        })
        .register(
            "sync",
            KindConfig::default().max_retries(0),
            move |_ctx: TaskContext| {
                let ok = upstream_ok.load(Ordering::SeqCst);
                async move {
                    if ok {
                        Ok(json!({"synced": true}))
                    } else {
                        TaskResult::Err(TaskError::permanent("upstream said no: 503 from the bank"))
                    }
                }
            },
        )
}

async fn enqueue(lanes: &Lanes, kind: &str, n: usize) -> Vec<String> {
    let tasks = vec![lanes_queue::NewTask::new(kind, json!({})); n];
    lanes
        .enqueue_bulk("demo", tasks)
        .await
        .expect("enqueue")
        .into_iter()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_goes_live_and_requeues_a_dead_letter() {
    let prefix = Prefix::new();
    let mut cfg = config(&prefix);
    cfg.snapshot_interval = Duration::from_millis(250);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(broker::serve(listener, cfg, shutdown.clone()));

    let lanes = lanes(&prefix).await;
    let upstream_ok = Arc::new(AtomicBool::new(false));
    let stop_worker = CancellationToken::new();
    let running = tokio::spawn(worker(lanes.clone(), upstream_ok.clone()).run(stop_worker.clone()));

    let pool = BrowserPool::new(BrowserConfig {
        launch: LaunchOptions {
            executable: chromium(),
            extra_args: vec!["--window-size=1440,1300".into()],
            ..LaunchOptions::default()
        },
        mode: PoolMode::Shared,
        max_sessions_per_browser: None,
    });
    let session = pool.session().await.expect("a Chromium session");
    let page = session.page().expect("page");
    page.goto(format!("http://{addr}/"))
        .await
        .expect("load the dashboard");
    let title = page.get_title().await.expect("title").unwrap_or_default();
    assert!(title.starts_with("Lanes"), "{title}");
    eventually("the event stream to go live", || async {
        (text(page, "#conn-text").await.as_deref() == Some("Live")).then_some(())
    })
    .await;

    // Live numbers: the queue's succeeded count, read, then read again after more work ran.
    let cell = r#"tr[data-queue="demo"] td[data-col="succeeded"]"#;
    enqueue(&lanes, "work", 6).await;
    let first: u64 = eventually("the queue's row", || async {
        text(page, cell).await?.replace(',', "").parse().ok()
    })
    .await;
    enqueue(&lanes, "work", 6).await;
    let second: u64 = eventually("the succeeded count to change", || async {
        let n: u64 = text(page, cell).await?.replace(',', "").parse().ok()?;
        (n != first).then_some(n)
    })
    .await;
    assert!(second > first, "succeeded went from {first} to {second}");
    let workers = text(page, "#k-workers").await;
    assert_eq!(workers.as_deref(), Some("1"), "the worker is listed");

    // A task whose upstream fails is dead-lettered and listed with its error.
    let dead = enqueue(&lanes, "sync", 1).await.remove(0);
    let button = format!(r#"button[data-action="requeue:{dead}"]"#);
    eventually("the dead letter's Re-queue button", || async {
        text(page, &button).await.filter(|t| t == "Re-queue")
    })
    .await;
    let (status, task) = api_get(addr, &format!("/api/tasks/{dead}")).await;
    assert_eq!(
        (status, task["state"].as_str()),
        (200, Some("failed")),
        "{task}"
    );
    let dead_table = text(page, "#dead").await.unwrap_or_default();
    assert!(dead_table.contains("upstream said no"), "{dead_table}");

    // The upstream heals; the operator clicks Re-queue (and confirms, if the page asks).
    upstream_ok.store(true, Ordering::SeqCst);
    click(page, &button).await;
    if text(page, &button).await.as_deref() == Some("Confirm?") {
        click(page, &button).await;
    }
    let task = eventually("the re-queued task to succeed", || async {
        let (status, task) = api_get(addr, &format!("/api/tasks/{dead}")).await;
        (status == 200 && task["state"] == "succeeded").then_some(task)
    })
    .await;
    assert_eq!(task["result"], json!({"synced": true}));
    eventually("the dead letter to leave the page", || async {
        text(page, &button).await.is_none().then_some(())
    })
    .await;

    // Something in every card for the screenshot: a waiting keyed lane, a scheduled task, a
    // dead letter that stays, a rate limiter.
    upstream_ok.store(false, Ordering::SeqCst);
    let stays = enqueue(&lanes, "sync", 1).await.remove(0);
    let later = lanes_queue::NewTask::new("report", json!({}))
        .delay(Duration::from_secs(3600))
        .key("account-7", lanes_queue::KeyPolicy::Serial);
    lanes
        .enqueue_bulk("reports", vec![later.clone(), later])
        .await
        .expect("enqueue");
    let limits = lanes_ratelimit::Limits::new(lanes.connection(), prefix.name()).expect("limits");
    let sp_api = limits
        .limiter("sp_api", "8/s,burst=8".parse().expect("rate"))
        .expect("limiter");
    sp_api.try_acquire(3).await.expect("acquire");
    let stays_button = format!(r#"button[data-action="requeue:{stays}"]"#);
    eventually("the page to show everything", || async {
        let dead = text(page, &stays_button).await.is_some();
        let keys = text(page, "#keys")
            .await
            .is_some_and(|t| t.contains("account-7"));
        let limiter = text(page, "#limiters")
            .await
            .is_some_and(|t| t.contains("sp_api"));
        (dead && keys && limiter).then_some(())
    })
    .await;
    let shot = target_dir().join("dashboard-test.png");
    let png = page
        .save_screenshot(ScreenshotParams::builder().full_page(true).build(), &shot)
        .await
        .expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    eprintln!("dashboard screenshot: {}", shot.display());

    session.close().await;
    pool.close().await;
    stop_worker.cancel();
    running
        .await
        .expect("worker task")
        .expect("the worker stops cleanly");
    shutdown.cancel();
    server
        .await
        .expect("server task")
        .expect("the broker stops cleanly");
}
