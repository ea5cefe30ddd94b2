//! The engine scenario: a mixed workload across worker processes (exec, http, sleep, a task that
//! fails then succeeds, one that is dead-lettered, one delayed, one cancelled, a bulk of no-ops).

use std::time::{Duration, Instant};

use anyhow::Result;
use lanes_queue::{NewTask, TaskId, TaskInfo, TaskState};
use serde_json::json;

use crate::stack::{Stack, http_target};
use crate::summary::Row;

const QUEUE: &str = "demo";
const BULK: usize = 500;

pub async fn run(stack: &mut Stack, workers: usize, rows: &mut Vec<Row>) -> Result<bool> {
    println!(
        "\n== engine: a mixed workload on queue `{QUEUE}` across {workers} worker processes =="
    );
    for i in 0..workers {
        let name = format!("demo-worker-{i}");
        stack.spawn(
            &name,
            "worker",
            &[
                "--queues",
                QUEUE,
                "--concurrency",
                "8",
                "--exec-allow",
                "sh,echo,false",
                "--name",
                &name,
                "--retry-base",
                "300ms",
                "--retry-cap",
                "2s",
            ],
        )?;
    }
    let hook = http_target().await?;
    let l = stack.lanes.clone();
    let exec = l
        .enqueue(
            QUEUE,
            NewTask::new("exec", json!({"cmd": "echo", "args": ["hello from lanes"]})),
        )
        .await?;
    let http = l
        .enqueue(
            QUEUE,
            NewTask::new("http", json!({"url": hook, "body": {"order": 42}})),
        )
        .await?;
    let sleep = l
        .enqueue(QUEUE, NewTask::new("sleep", json!({"ms": 1500})))
        .await?;
    let flaky_cmd = "echo attempt $LANES_ATTEMPT; test $LANES_ATTEMPT -ge 2";
    let flaky = l
        .enqueue(
            QUEUE,
            NewTask::new("exec", json!({"cmd": "sh", "args": ["-c", flaky_cmd]})).max_retries(3),
        )
        .await?;
    let doomed = l
        .enqueue(
            QUEUE,
            NewTask::new("exec", json!({"cmd": "false"})).max_retries(1),
        )
        .await?;
    let delayed = l
        .enqueue(
            QUEUE,
            NewTask::new("sleep", json!({"ms": 10})).delay(Duration::from_secs(3)),
        )
        .await?;
    let cancelled = l
        .enqueue(
            QUEUE,
            NewTask::new("sleep", json!({"ms": 10})).delay(Duration::from_secs(60)),
        )
        .await?;
    let bulk = l
        .enqueue_bulk(
            QUEUE,
            (0..BULK)
                .map(|n| NewTask::new("noop", json!({ "n": n })))
                .collect(),
        )
        .await?;
    let outcome = l.cancel(&cancelled).await?;
    println!(
        "  submitted 7 named tasks and {BULK} no-ops; cancelled one while waiting: {outcome:?}"
    );

    let named = [
        exec.clone(),
        http.clone(),
        sleep.clone(),
        flaky.clone(),
        doomed.clone(),
        delayed.clone(),
        cancelled.clone(),
    ];
    let started = Instant::now();
    let infos = loop {
        let infos = l.tasks(&named).await?;
        let stats = l.queue_stats(QUEUE).await?;
        let done = stats.counters.get("succeeded").copied().unwrap_or(0);
        let finals = infos.iter().filter(|t| t.state.is_final()).count();
        let count = |s: TaskState| infos.iter().filter(|t| t.state == s).count();
        println!(
            "  [{:>4.1}s] no-ops+named succeeded {done:>3} · running {} · queued {} · scheduled {} · retrying {} · named final {finals}/{}",
            started.elapsed().as_secs_f64(),
            stats.running,
            stats.queued,
            stats.scheduled,
            count(TaskState::Retrying),
            named.len(),
        );
        if finals == named.len() && done as usize >= BULK
            || started.elapsed() > Duration::from_secs(60)
        {
            break infos;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let find = |id: &TaskId| infos.iter().find(|t| &t.id == id).cloned();
    let mut check =
        |what: &str, id: &TaskId, want: TaskState, extra: &dyn Fn(&TaskInfo) -> (bool, String)| {
            let info = find(id);
            let (ok, detail) = match &info {
                Some(t) if t.state == want => extra(t),
                Some(t) => (false, t.error.clone().unwrap_or_default()),
                None => (false, "task missing".into()),
            };
            rows.push(Row {
                scenario: "engine",
                what: what.into(),
                expected: want.to_string(),
                got: info.map_or_else(|| "missing".into(), |t| t.state.to_string()),
                detail,
                ok,
            });
        };
    check("exec: echo", &exec, TaskState::Succeeded, &|t| {
        let out = t
            .result
            .as_ref()
            .and_then(|r| r["stdout_tail"].as_str())
            .unwrap_or("")
            .trim()
            .to_owned();
        (out == "hello from lanes", format!("stdout: {out}"))
    });
    check(
        "http: POST to a loopback hook",
        &http,
        TaskState::Succeeded,
        &|t| {
            let status = t
                .result
                .as_ref()
                .map(|r| r["status"].clone())
                .unwrap_or_default();
            (status == 200, format!("status {status}"))
        },
    );
    check("sleep 1.5 s", &sleep, TaskState::Succeeded, &|t| {
        (
            true,
            format!("result {}", t.result.clone().unwrap_or_default()),
        )
    });
    check(
        "fails once, then succeeds",
        &flaky,
        TaskState::Succeeded,
        &|t| (t.attempts == 2, format!("attempts {}", t.attempts)),
    );
    check(
        "always fails: dead-lettered",
        &doomed,
        TaskState::Dead,
        &|t| (t.attempts == 2, t.error.clone().unwrap_or_default()),
    );
    check("delayed 3 s", &delayed, TaskState::Succeeded, &|t| {
        let waited = t.started_at_ms.unwrap_or(0).saturating_sub(t.created_at_ms);
        (
            waited >= 3000,
            format!("started {:.1} s after enqueue", waited as f64 / 1000.0),
        )
    });
    check(
        "cancelled while waiting",
        &cancelled,
        TaskState::Cancelled,
        &|t| (t.started_at_ms.is_none(), "never started".into()),
    );
    let bulk_done = l
        .tasks(&bulk)
        .await?
        .iter()
        .filter(|t| t.state == TaskState::Succeeded)
        .count();
    rows.push(Row {
        scenario: "engine",
        what: format!("{BULK} no-ops (bulk enqueue)"),
        expected: format!("{BULK} ok"),
        got: format!("{bulk_done} ok"),
        detail: format!("spread over {workers} worker processes"),
        ok: bulk_done == BULK,
    });
    let dead = l.dead_letters(QUEUE, 10).await?;
    rows.push(Row {
        scenario: "engine",
        what: "dead-letter list".into(),
        expected: "1 task".into(),
        got: format!("{} task(s)", dead.len()),
        detail: dead.first().map(|t| t.id.to_string()).unwrap_or_default(),
        ok: dead.len() == 1 && dead[0].id == doomed,
    });
    let workers_seen = l.workers().await?.len();
    rows.push(Row {
        scenario: "engine",
        what: "workers registered".into(),
        expected: workers.to_string(),
        got: workers_seen.to_string(),
        detail: "each with a unique id and a heartbeat".into(),
        ok: workers_seen == workers,
    });
    Ok(true)
}
