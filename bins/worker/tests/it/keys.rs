//! Keyed lanes across real worker processes: order and no overlap per key, and a killed worker's
//! key moving on after its lease.

use std::collections::HashMap;
use std::time::Duration;

use lanes_queue::{Config, KeyPolicy, Lanes, NewTask, TaskId, TaskState};
use lanes_testkit::Prefix;
use serde_json::json;

use crate::support::{spawn_worker, wait_state};

/// Logs "key seq attempt start|end micros" around a sleep; fails attempt 1 when FAIL=1.
const SCRIPT: &str = r#"echo "$K $S $LANES_ATTEMPT start ${EPOCHREALTIME/./}" >> "$F"
sleep "$D"
echo "$K $S $LANES_ATTEMPT end ${EPOCHREALTIME/./}" >> "$F"
if [ "$LANES_ATTEMPT" = 1 ] && [ "$FAIL" = 1 ]; then exit 3; fi"#;

fn task(file: &str, key: &str, seq: u64, secs: f64, fail: bool) -> NewTask {
    let env = json!({"K": key, "S": seq.to_string(), "D": format!("{secs:.3}"), "F": file, "FAIL": if fail { "1" } else { "0" }});
    NewTask::new(
        "exec",
        json!({"cmd": "bash", "args": ["-c", SCRIPT], "env": env}),
    )
    .key(key, KeyPolicy::Serial)
}

#[derive(Debug)]
struct Ev {
    seq: u64,
    attempt: u32,
    start: bool,
    at: u64,
}

fn read_log(path: &std::path::Path) -> HashMap<String, Vec<Ev>> {
    let text = std::fs::read_to_string(path).expect("log file");
    let mut by_key: HashMap<String, Vec<Ev>> = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 5, "malformed log line {line:?}");
        by_key.entry(f[0].to_owned()).or_default().push(Ev {
            seq: f[1].parse().expect("seq"),
            attempt: f[2].parse().expect("attempt"),
            start: f[3] == "start",
            at: f[4].parse().expect("time"),
        });
    }
    by_key
}

/// Per key: events alternate start/end of one attempt at a time, in non-decreasing seq order.
/// With `killed`, an attempt may start without ending when the next attempt of the same task
/// follows it (its worker was killed).
fn check_order(by_key: &HashMap<String, Vec<Ev>>, killed: bool) {
    for (key, evs) in by_key {
        let mut evs: Vec<&Ev> = evs.iter().collect();
        evs.sort_by_key(|e| (e.at, !e.start));
        let mut open: Option<&Ev> = None;
        let mut last_seq = 0;
        for e in evs {
            if e.start {
                if killed && open.is_some_and(|o| o.seq == e.seq && o.attempt < e.attempt) {
                    open = None;
                }
                assert!(
                    open.is_none(),
                    "key {key}: seq {} attempt {} started while {:?} ran",
                    e.seq,
                    e.attempt,
                    open
                );
                assert!(
                    e.seq >= last_seq,
                    "key {key}: seq {} started after seq {last_seq}",
                    e.seq
                );
                last_seq = e.seq;
                open = Some(e);
            } else {
                let o = open
                    .take()
                    .unwrap_or_else(|| panic!("key {key}: end without start: {e:?}"));
                assert_eq!(
                    (o.seq, o.attempt),
                    (e.seq, e.attempt),
                    "key {key}: interleaved attempts"
                );
            }
        }
    }
}

async fn lanes(p: &Prefix) -> Lanes {
    Lanes::connect(
        p.url(),
        Config {
            prefix: p.name().to_owned(),
            ..Config::default()
        },
    )
    .await
    .expect("connect")
}

async fn wait_all(l: &Lanes, ids: &[TaskId]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let infos = l.tasks(ids).await.expect("read");
        if infos.iter().all(|t| t.state.is_final()) {
            assert!(
                infos.iter().all(|t| t.state == TaskState::Succeeded),
                "all succeed"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tasks still pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_worker_processes_keep_every_key_in_order_without_overlap() {
    let p = Prefix::new();
    let dir = tempdir(&p);
    let file = dir.join("log");
    let f = file.to_string_lossy().into_owned();
    // A lease long enough that no task is redelivered under this load: a redelivery would be a
    // legitimate second start (at-least-once) and blur the exactly-once count below.
    let args = [
        "--queues",
        "tickets",
        "--concurrency",
        "24",
        "--exec-allow",
        "bash",
        "--retry-base",
        "50ms",
        "--retry-cap",
        "200ms",
        "--lease",
        "15s",
    ];
    let _workers: Vec<_> = (0..3).map(|_| spawn_worker(&p, &args)).collect();
    let (keys, per_key) = (200u64, 10u64);
    let mut tasks = Vec::new();
    for seq in 0..per_key {
        for k in 0..keys {
            let secs = ((k * 31 + seq * 17) % 20) as f64 / 1000.0;
            tasks.push(task(
                &f,
                &format!("p{k}"),
                seq,
                secs,
                (k * 3 + seq) % 11 == 0,
            ));
        }
    }
    let l = lanes(&p).await;
    let ids = l.enqueue_bulk("tickets", tasks).await.expect("enqueue");
    wait_all(&l, &ids).await;
    let by_key = read_log(&file);
    assert_eq!(by_key.len() as u64, keys);
    check_order(&by_key, false);
    let failing = (0..keys)
        .flat_map(|k| (0..per_key).map(move |s| (k * 3 + s) % 11 == 0))
        .filter(|f| *f)
        .count();
    let starts: usize = by_key
        .values()
        .map(|v| v.iter().filter(|e| e.start).count())
        .sum();
    let stats = l.queue_stats("tickets").await.expect("stats");
    assert_eq!(
        starts,
        (keys * per_key) as usize + failing,
        "each task once, failing ones twice ({stats:?})"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn after_a_worker_is_killed_its_keys_next_task_waits_for_the_redelivered_one() {
    let p = Prefix::new();
    let dir = tempdir(&p);
    let file = dir.join("log");
    let f = file.to_string_lossy().into_owned();
    let args = [
        "--queues",
        "tickets",
        "--concurrency",
        "4",
        "--exec-allow",
        "bash",
    ];
    let mut victim = spawn_worker(&p, &args);
    let l = lanes(&p).await;
    let first = l
        .enqueue("tickets", task(&f, "acct", 1, 1.0, false))
        .await
        .expect("enqueue");
    let second = l
        .enqueue("tickets", task(&f, "acct", 2, 0.0, false))
        .await
        .expect("enqueue");
    wait_state(&p, first.as_str(), "running");
    lanes_testkit::wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.contains("acct 1 1 start"))
    })
    .expect("the first attempt started its command");
    victim.signal(libc::SIGKILL);
    victim
        .wait_timeout(Duration::from_secs(10))
        .expect("killed");
    let _rescuer = spawn_worker(&p, &args);
    wait_all(&l, &[first.clone(), second.clone()]).await;
    let by_key = read_log(&file);
    check_order(&by_key, true);
    let order: Vec<(u64, u32, bool)> = {
        let mut evs: Vec<&Ev> = by_key["acct"].iter().collect();
        evs.sort_by_key(|e| e.at);
        evs.iter().map(|e| (e.seq, e.attempt, e.start)).collect()
    };
    assert_eq!(
        order,
        vec![
            (1, 1, true),
            (1, 2, true),
            (1, 2, false),
            (2, 1, true),
            (2, 1, false)
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir(p: &Prefix) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lanes-keys-{}", p.name()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
