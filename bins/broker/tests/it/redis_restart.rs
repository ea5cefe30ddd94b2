//! Redis goes away and comes back under a running broker (the real `broker` binary) and a running
//! worker (the engine's `Worker`, in this test process, the runtime every worker binary runs).
//!
//! With the append-only file on (`appendfsync everysec`, as `make up` runs it), Redis is stopped
//! by SIGTERM (a clean shutdown) or by SIGKILL more than a second after the last write (a crash
//! after the fsync). Meanwhile every broker route that needs Redis answers 503 with a JSON
//! `{"message"}` (never hangs) and `/readyz` is 503. Redis is started again on the same port and
//! directory: the queued tasks are still queued, the task that was running when Redis went away
//! is still leased to the same worker, and that worker (never restarted) finishes it and drains
//! the rest; the broker answers 2xx again without a restart of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lanes_queue::{KindConfig, Lanes, TaskContext, Worker, WorkerConfig};
use lanes_testkit::{ChildGuard, RestartableRedis, free_port, wait_for};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "restart";
const PREFIX: &str = "restart";
/// Hang guard of one HTTP call. The broker answers every request within its request timeout
/// (10 s by default; 503 past it), so an answer must come well within this.
const CALL_BOUND: Duration = Duration::from_secs(20);

/// One HTTP/1.1 call to the broker: the status and the body as JSON (`Null` if it is not JSON).
/// `Err` when nothing came back within [`CALL_BOUND`].
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, CALL_BOUND).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(CALL_BOUND))
        .and_then(|()| s.set_write_timeout(Some(CALL_BOUND)))
        .map_err(|e| format!("set timeouts: {e}"))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send {method} {path}: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| format!("no answer to {method} {path} within {CALL_BOUND:?}: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    Ok((status, serde_json::from_str(rest).unwrap_or(Value::Null)))
}

/// The `broker` binary on a free loopback port, its output in `log`.
pub fn spawn_broker(redis_url: &str, prefix: &str, log: &Path) -> (ChildGuard, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let out = std::fs::File::create(log).expect("create the broker log");
    let err = out.try_clone().expect("clone the log handle");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_broker"));
    cmd.env("REDIS_URL", redis_url)
        .env("LANES_PREFIX", prefix)
        .env("LANES_LISTEN", addr.to_string())
        .env("LANES_REDIS_TIMEOUT", "1s")
        .env("RUST_LOG", "info")
        .env_remove("LANES_API_TOKEN")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = ChildGuard::spawn(&mut cmd).expect("spawn the broker");
    let up = wait_for(Duration::from_secs(30), || {
        call(addr, "GET", "/readyz", None)
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    assert!(up.is_some(), "the broker never became ready: {}", read(log));
    (child, addr)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn state(addr: SocketAddr, id: &str) -> String {
    match call(addr, "GET", &format!("/api/tasks/{id}"), None) {
        Ok((200, v)) => v["state"].as_str().unwrap_or("").to_owned(),
        other => format!("{other:?}"),
    }
}

/// While Redis is down: each route that needs Redis answers 503 `{"message"}`; none hangs.
pub fn expect_unavailable(addr: SocketAddr, task: &str, log: &Path) {
    let enqueue = json!({"kind": "work"});
    let probes: [(&str, String, Option<&Value>); 5] = [
        ("GET", "/readyz".into(), None),
        ("GET", format!("/api/tasks/{task}"), None),
        ("POST", format!("/api/queues/{QUEUE}/tasks"), Some(&enqueue)),
        ("GET", "/api/queues".into(), None),
        ("GET", format!("/api/queues/{QUEUE}"), None),
    ];
    // Twice: right after Redis went away, and again once the clients have tried to reconnect.
    // The probes of a round run side by side, as a load balancer's would.
    for round in 0..2 {
        std::thread::scope(|scope| {
            for (method, path, body) in &probes {
                scope.spawn(move || {
                    let t = std::time::Instant::now();
                    let answer = call(addr, method, path, *body);
                    eprintln!(
                        "outage round {round}: {method} {path} answered in {:?}",
                        t.elapsed()
                    );
                    let (status, v) = answer.unwrap_or_else(|e| {
                        panic!("round {round}: {method} {path} hung: {e}\n{}", read(log))
                    });
                    assert_eq!(
                        status, 503,
                        "round {round}: {method} {path} while redis is down: {v}"
                    );
                    assert!(
                        v["message"].as_str().is_some_and(|m| !m.is_empty()),
                        "{method} {path}: 503 without a JSON message: {v}"
                    );
                });
            }
        });
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, _) = call(addr, "GET", "/healthz", None).expect("healthz answers");
    assert_eq!(status, 200, "liveness does not depend on redis");
}

fn restart_case(sig: i32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut redis = RestartableRedis::start(dir.path(), true).expect("start redis-server");
    let url = redis.url();
    let log = dir.path().join("broker.log");
    let (mut broker, addr) = spawn_broker(&url, PREFIX, &log);

    // The worker: one slot, held by a gate task until the test lets it go, so everything
    // enqueued behind it stays queued in Redis across the restart.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let gate = Arc::new(Notify::new());
    let opened = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let worker = rt.block_on(async {
        let cfg = lanes_queue::Config {
            prefix: PREFIX.into(),
            ..lanes_queue::Config::default()
        };
        let lanes = Lanes::connect(&url, cfg).await.expect("worker connects");
        let g = gate.clone();
        let open = opened.clone();
        Worker::new(
            lanes,
            WorkerConfig {
                name: "restart".into(),
                queues: vec![QUEUE.into()],
                concurrency: 1,
                heartbeat: Duration::from_millis(500),
                idle_wait: Duration::from_secs(1),
                ..WorkerConfig::default()
            },
        )
        .register("gate", KindConfig::default(), move |_ctx: TaskContext| {
            let (open, g) = (open.clone(), g.clone());
            async move {
                // Open for good once opened: a redelivered gate task passes straight through.
                while !open.load(Ordering::SeqCst) {
                    tokio::select! {
                        () = g.notified() => {}
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
                Ok(json!("gate opened"))
            }
        })
        .register(
            "work",
            KindConfig::default(),
            |ctx: TaskContext| async move { Ok(json!({"done": ctx.payload["n"]})) },
        )
    });
    let worker = rt.spawn(worker.run(stop.clone()));

    let enqueue = |body: Value| {
        let (status, v) = call(
            addr,
            "POST",
            &format!("/api/queues/{QUEUE}/tasks"),
            Some(&body),
        )
        .expect("enqueue answers");
        assert_eq!(status, 202, "enqueue: {v}");
        v["task_id"].as_str().expect("task_id").to_owned()
    };
    let gate_id = enqueue(json!({"kind": "gate"}));
    let running = wait_for(Duration::from_secs(20), || {
        (state(addr, &gate_id) == "running").then_some(())
    });
    assert!(running.is_some(), "the gate task never started");
    let ids: Vec<String> = (0..20)
        .map(|n| enqueue(json!({"kind": "work", "payload": {"n": n}})))
        .collect();
    for id in &ids {
        assert_eq!(state(addr, id), "queued", "{id} before the restart");
    }

    // Past the append-only file's once-a-second fsync, then Redis goes away.
    std::thread::sleep(Duration::from_millis(1500));
    redis.stop(sig).expect("stop redis-server");
    expect_unavailable(addr, &ids[0], &log);

    let t = std::time::Instant::now();
    redis
        .restart()
        .expect("restart redis-server on the same port and dir");
    eprintln!("restarted in {:?}", t.elapsed());
    let ready = wait_for(Duration::from_secs(30), || {
        call(addr, "GET", "/readyz", None)
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    assert!(
        ready.is_some(),
        "the broker did not become ready again after redis came back: {}",
        read(&log)
    );
    // Nothing was lost: the gate is still leased, everything behind it still queued.
    assert_eq!(
        state(addr, &gate_id),
        "running",
        "the gate task after the restart"
    );
    for id in &ids {
        assert_eq!(state(addr, id), "queued", "{id} after the restart");
    }

    eprintln!("ready again after {:?}", t.elapsed());
    opened.store(true, Ordering::SeqCst);
    gate.notify_one();
    let all_done = wait_for(Duration::from_secs(60), || {
        let states: Vec<String> = std::iter::once(&gate_id)
            .chain(&ids)
            .map(|id| state(addr, id))
            .collect();
        states.iter().all(|s| s == "succeeded").then_some(())
    });
    eprintln!("drained after {:?}", t.elapsed());
    let states: Vec<String> = ids.iter().map(|id| state(addr, id)).collect();
    assert!(
        all_done.is_some(),
        "the same worker did not drain the queue after the restart: gate {}, tasks {states:?}; \
         workers {:?}",
        state(addr, &gate_id),
        call(addr, "GET", "/api/workers", None)
    );
    assert!(!worker.is_finished(), "the worker kept running throughout");
    assert!(
        broker.0.try_wait().ok().flatten().is_none(),
        "the broker kept running throughout"
    );
    let after = enqueue(json!({"kind": "work", "payload": {"n": 99}}));
    let done = wait_for(Duration::from_secs(20), || {
        (state(addr, &after) == "succeeded").then_some(())
    });
    assert!(done.is_some(), "a task enqueued after the restart runs");

    stop.cancel();
    let report = rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), worker).await });
    assert!(
        matches!(report, Ok(Ok(Ok(_)))),
        "the worker stops cleanly: {report:?}"
    );
}

#[test]
fn queued_tasks_survive_a_clean_redis_restart() {
    restart_case(libc::SIGTERM);
}

#[test]
fn queued_tasks_survive_a_redis_crash_after_the_fsync() {
    restart_case(libc::SIGKILL);
}
