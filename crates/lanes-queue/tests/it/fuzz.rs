//! Fuzzing the decoders of what the engine reads back from Redis: stored payloads (JSON, gzip),
//! task records (hashes any client could have written), and a worker fed corrupted records.
//! Nothing may panic; a corrupted task ends in the dead-letter set with a message and the worker
//! keeps working.
//!
//! Bounded: `LANES_FUZZ_CASES` cases per target (defaults keep `cargo test` quick). Failures are
//! kept by proptest under `proptest-regressions/` and replayed first on the next run.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use lanes_queue::{KeyPolicy, KindConfig, NewTask, TaskContext, TaskId, TaskState, Worker, codec};
use lanes_testkit::fuzz::{self, cases, config};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};

use crate::support::{env, start, worker_cfg};

fn json_value() -> impl Strategy<Value = Value> {
    fuzz::json_value(&[], fuzz::keys("[a-z]{1,8}", &[]))
}

/// How a stored byte string is damaged.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Append(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        1 => Just(Damage::None),
        3 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Damage::Flip(i, x)),
        2 => any::<usize>().prop_map(Damage::Truncate),
        1 => (any::<usize>(), vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Damage::Insert(i, b)),
        1 => vec(any::<u8>(), 1..16).prop_map(Damage::Append),
    ]
}

fn apply(mut bytes: Vec<u8>, d: &Damage) -> Vec<u8> {
    let n = bytes.len().max(1);
    match d {
        Damage::None => {}
        Damage::Flip(i, x) => {
            if let Some(b) = bytes.get_mut(i % n) {
                *b ^= x;
            }
        }
        Damage::Truncate(i) => bytes.truncate(i % n),
        Damage::Insert(i, b) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Damage::Append(b) => bytes.extend_from_slice(b),
    }
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

proptest! {
    #![proptest_config(config(512))]

    /// Any bytes under any encoding name: a value or an error with a message, never a panic.
    #[test]
    fn payload_decoding_never_panics(
        bytes in vec(any::<u8>(), 0..512),
        enc in prop_oneof![Just(String::new()), Just(codec::GZIP.to_owned()), any::<String>()],
        limit in 0usize..4096,
    ) {
        match codec::decode(&bytes, &enc, limit) {
            Ok(v) => prop_assert!(enc.is_empty() || enc == codec::GZIP, "{enc:?} decoded to {v}"),
            Err(msg) => prop_assert!(!msg.is_empty()),
        }
    }

    /// A real payload, compressed or not, then damaged: decodes to itself when intact, else to
    /// an error (gzip's CRC catches flipped bits in the compressed stream).
    #[test]
    fn damaged_payloads_are_errors_not_panics(
        payload in json_value(),
        threshold in prop_oneof![Just(0usize), Just(usize::MAX)],
        d in damage(),
    ) {
        let (bytes, enc) = codec::encode(&payload, threshold, 1 << 20).expect("encodes");
        let intact = matches!(d, Damage::None);
        let damaged = apply(bytes, &d);
        // What a JSON round trip gives (floats are printed shortest, not bit for bit).
        let expected: Value = serde_json::from_slice(&serde_json::to_vec(&payload).expect("json"))
            .expect("json");
        match codec::decode(&damaged, enc, 1 << 20) {
            Ok(v) if intact => prop_assert_eq!(v, expected),
            Ok(_) => {}
            Err(msg) => {
                prop_assert!(!intact, "an intact payload failed: {msg}");
                prop_assert!(!msg.is_empty());
            }
        }
    }

    /// A gzip stream that inflates past the limit is refused without inflating it all.
    #[test]
    fn payloads_inflating_past_the_limit_are_refused(size in 1usize..200_000, limit in 0usize..1024) {
        let inner = vec![b' '; size];
        let r = codec::decode(&gzip(&inner), codec::GZIP, limit);
        if size > limit {
            prop_assert!(r.is_err());
        }
    }
}

/// Fields of a task record, as the scripts write them.
const FIELDS: &[&str] = &[
    "kind",
    "payload",
    "enc",
    "prio",
    "score",
    "state",
    "attempts",
    "token",
    "worker",
    "created",
    "started",
    "finished",
    "run_at",
    "result",
    "error",
    "progress",
    "max_retries",
    "soft_ms",
    "hard_ms",
    "stop_requested",
    "key",
    "kpol",
    "kconc",
    "lane",
    "batch",
];

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..64),
        select(
            &[
                "",
                "-1",
                "0",
                "1e309",
                "NaN",
                "18446744073709551616",
                "-9223372036854775809",
                "running",
                "queued",
                "succeeded",
                "nope",
                "gz",
                "zstd",
                "{",
                "null",
                "[]",
                "serial",
                "reject",
                "dedupe",
                "\u{0}",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
    ]
}

/// One way to corrupt a stored task.
#[derive(Debug, Clone)]
enum Corruption {
    /// Field `FIELDS[i]` set to these bytes.
    Set(usize, Vec<u8>),
    /// Field `FIELDS[i]` deleted.
    Delete(usize),
    /// A field nobody knows.
    Extra(String, Vec<u8>),
    /// The payload damaged in place (its encoding kept).
    Payload(Damage),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        4 => (0..FIELDS.len(), garbage()).prop_map(|(i, b)| Corruption::Set(i, b)),
        2 => (0..FIELDS.len()).prop_map(Corruption::Delete),
        1 => ("[a-z_]{1,10}", garbage()).prop_map(|(k, b)| Corruption::Extra(k, b)),
        2 => damage().prop_map(Corruption::Payload),
    ]
}

/// A task as enqueued before it is damaged.
#[derive(Debug, Clone)]
struct Seed {
    payload: Value,
    keyed: bool,
    big: bool,
    corruptions: Vec<Corruption>,
    /// The record replaced by a key of another type.
    wrong_type: bool,
}

fn seed() -> impl Strategy<Value = Seed> {
    (
        json_value(),
        any::<bool>(),
        any::<bool>(),
        vec(corruption(), 1..4),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(payload, keyed, big, corruptions, wrong_type)| Seed {
            payload,
            keyed,
            big,
            corruptions,
            wrong_type,
        })
}

async fn corrupt(conn: &mut (impl redis::aio::ConnectionLike + Send), key: &str, s: &Seed) {
    if s.wrong_type {
        let _: () = redis::pipe()
            .cmd("DEL")
            .arg(key)
            .cmd("SET")
            .arg(key)
            .arg("not a hash")
            .query_async(conn)
            .await
            .expect("overwrite the record");
        return;
    }
    for c in &s.corruptions {
        let mut cmd = redis::cmd("HSET");
        match c {
            Corruption::Set(i, b) => cmd.arg(key).arg(FIELDS[*i]).arg(b.as_slice()),
            Corruption::Delete(i) => {
                cmd = redis::cmd("HDEL");
                cmd.arg(key).arg(FIELDS[*i])
            }
            Corruption::Extra(k, b) => cmd.arg(key).arg(k).arg(b.as_slice()),
            Corruption::Payload(d) => {
                let stored: Option<Vec<u8>> = redis::cmd("HGET")
                    .arg(key)
                    .arg("payload")
                    .query_async(conn)
                    .await
                    .expect("read the payload");
                cmd.arg(key)
                    .arg("payload")
                    .arg(apply(stored.unwrap_or_default(), d))
            }
        };
        let _: () = cmd.query_async(conn).await.expect("corrupt the record");
    }
}

/// Every reader of task records, on corrupted records: values or errors, never a panic.
#[test]
fn readers_of_corrupted_task_records_never_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let e = rt.block_on(env());
    let lanes = e.lanes.clone();
    proptest!(config(64), |(s in seed())| {
        rt.block_on(async {
            let mut task = NewTask::new("ok", if s.big { json!({"pad": "x".repeat(9000), "v": s.payload.clone()}) } else { s.payload.clone() });
            if s.keyed {
                task = task.key("acct-1", KeyPolicy::Serial);
            }
            let id = lanes.enqueue("fz", task).await.expect("enqueue");
            let key = lanes.keys().queue("fz").task(id.as_str());
            corrupt(&mut lanes.connection(), &key, &s).await;
            // Every reader: Ok or Err, both fine; a panic fails the case.
            let _ = lanes.task(&id).await;
            let _ = lanes.tasks(std::slice::from_ref(&id)).await;
            let _ = lanes.payloads(std::slice::from_ref(&id)).await;
            let _ = lanes.key_tasks("fz", "acct-1").await;
            let _ = lanes.keys_status("fz").await;
            let _ = lanes.queue_stats("fz").await;
            let batch = lanes.fetch("fz", "fuzzer", 4).await;
            if let Ok(batch) = batch {
                for t in batch.tasks {
                    let _ = codec::decode(&t.payload, &t.encoding, 1 << 20);
                    let _ = lanes.fail(&t.lease, lanes_queue::FailMode::Failed, "fuzzed").await;
                }
            }
            let _ = lanes.dead_letters("fz", 10).await;
            let _ = lanes.cancel(&id).await;
        });
    });
}

/// A worker fed corrupted records: each ends for good (succeeded, or failed / dead with a
/// message) or, when its record is not a hash at all, is dropped from the queue; the queue holds
/// nothing leased or ready afterwards and the worker still runs new work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_dead_letters_corrupted_tasks_and_keeps_working() {
    let e = env().await;
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["fz"], 4)).register(
        "ok",
        KindConfig::default()
            .max_retries(1)
            .backoff(Duration::from_millis(10), Duration::from_millis(20)),
        |ctx: TaskContext| async move { Ok(json!({"got": ctx.payload})) },
    );
    let running = start(w);
    let mut runner = proptest::test_runner::TestRunner::new(config(24));
    let mut conn = e.lanes.connection();
    let mut checked = 0;
    // Each batch takes a worker round trip (~0.5 s): a fiftieth of the cases, 24 to 100.
    for _ in 0..(cases(1200) / 50).clamp(24, 100) {
        let batch: Vec<Seed> = (0..6)
            .map(|_| {
                seed()
                    .new_tree(&mut runner)
                    .expect("generate a seed")
                    .current()
            })
            .collect();
        // Enqueued delayed, so each record is damaged before the worker can lease it; each with
        // its own key, so a damaged key field cannot hold up another test task.
        let mut ids: Vec<(TaskId, &Seed)> = Vec::new();
        for (i, s) in batch.iter().enumerate() {
            let mut t = NewTask::new("ok", s.payload.clone()).delay(Duration::from_millis(300));
            if s.keyed {
                t = t.key(format!("acct-{checked}-{i}"), KeyPolicy::Serial);
            }
            let id = e.lanes.enqueue("fz", t).await.expect("enqueue");
            ids.push((id, s));
        }
        for (id, s) in &ids {
            let key = e.lanes.keys().queue("fz").task(id.as_str());
            corrupt(&mut conn, &key, s).await;
        }
        // Until nothing is ready, scheduled or leased any more (10 s at most).
        let k = e.lanes.keys().queue("fz");
        let mut left = (0, 0, 0);
        for _ in 0..200 {
            left = redis::pipe()
                .cmd("ZCARD")
                .arg(&k.ready)
                .cmd("ZCARD")
                .arg(&k.delayed)
                .cmd("ZCARD")
                .arg(&k.leased)
                .query_async(&mut conn)
                .await
                .expect("queue sizes");
            if left == (0, 0, 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            left,
            (0, 0, 0),
            "(ready, delayed, leased) still hold tasks of {ids:?}"
        );
        for (id, s) in &ids {
            checked += 1;
            match e.lanes.task(id).await {
                Ok(Some(t)) if t.state == TaskState::Succeeded => {}
                Ok(Some(t)) => {
                    assert!(t.state.is_final(), "{id} ended {:?} ({s:?})", t.state);
                    assert!(
                        t.error.as_deref().is_some_and(|m| !m.is_empty()),
                        "{id} ended {:?} without a message ({s:?})",
                        t.state
                    );
                }
                // Not a hash any more: the fetch skipped it.
                Err(_) if s.wrong_type => {}
                other => panic!("{id}: {other:?} ({s:?})"),
            }
        }
    }
    let fresh = e
        .lanes
        .enqueue("fz", NewTask::new("ok", json!({"after": true})))
        .await
        .expect("enqueue");
    let mut done = false;
    for _ in 0..200 {
        if let Ok(Some(t)) = e.lanes.task(&fresh).await
            && t.state == TaskState::Succeeded
        {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        done,
        "the worker still runs new work after {checked} corrupted tasks"
    );
    running.shutdown().await;
}

// ---- regressions: inputs the fuzzing above found, kept as plain tests ----------------------

/// Found by `a_worker_dead_letters_corrupted_tasks_and_keeps_working`: a scheduled task whose
/// record was replaced by a string made every fetch of its queue fail (WRONGTYPE in the promotion
/// of due tasks), so the queue stopped for every worker. A record without a kind vanished from
/// the queue without a trace; one with a score that is not a number also failed every fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_records_neither_stop_the_queue_nor_vanish() {
    let e = env().await;
    let mut conn = e.lanes.connection();
    let later = |n: i32| NewTask::new("ok", json!({ "n": n })).delay(Duration::from_millis(200));
    let not_a_hash = e.lanes.enqueue("fz", later(1)).await.expect("enqueue");
    let no_kind = e.lanes.enqueue("fz", later(2)).await.expect("enqueue");
    let bad_score = e.lanes.enqueue("fz", later(3)).await.expect("enqueue");
    let fine = e.lanes.enqueue("fz", later(4)).await.expect("enqueue");
    let k = e.lanes.keys().queue("fz");
    let _: () = redis::pipe()
        .cmd("DEL")
        .arg(k.task(not_a_hash.as_str()))
        .cmd("SET")
        .arg(k.task(not_a_hash.as_str()))
        .arg("x")
        .cmd("HDEL")
        .arg(k.task(no_kind.as_str()))
        .arg("kind")
        .cmd("HSET")
        .arg(k.task(bad_score.as_str()))
        .arg("score")
        .arg("0x1f")
        .query_async(&mut conn)
        .await
        .expect("damage the records");
    let w = Worker::new(e.lanes.clone(), worker_cfg(&["fz"], 2)).register(
        "ok",
        KindConfig::default(),
        |_ctx: TaskContext| async move { Ok(json!("ran")) },
    );
    let running = start(w);
    let mut states = Vec::new();
    for _ in 0..200 {
        states.clear();
        for id in [&no_kind, &bad_score, &fine] {
            states.push(
                e.lanes
                    .task(id)
                    .await
                    .expect("read")
                    .map(|t| (t.state, t.error)),
            );
        }
        if states
            .iter()
            .all(|s| s.as_ref().is_some_and(|(st, _)| st.is_final()))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
    let (st, err) = states[0]
        .clone()
        .expect("the record without a kind is kept");
    assert_eq!(st, TaskState::Failed, "{err:?}");
    assert!(err.is_some_and(|m| m.contains("unknown task kind")));
    assert_eq!(states[1].clone().map(|s| s.0), Some(TaskState::Succeeded));
    assert_eq!(states[2].clone().map(|s| s.0), Some(TaskState::Succeeded));
    let dead: Vec<TaskId> = e
        .lanes
        .dead_letters("fz", 10)
        .await
        .expect("dead letters")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(dead, vec![no_kind]);
}

/// Found by `readers_of_corrupted_task_records_never_panic`: once the record of the task holding
/// a key was replaced by a string, every later enqueue with that key failed (WRONGTYPE while
/// checking whether the owner is alive). A damaged owner is a dangling one: released.
#[tokio::test]
async fn a_damaged_key_owner_does_not_refuse_its_key() {
    let e = env().await;
    let keyed = |p| NewTask::new("ok", json!({})).key("acct-1", p);
    let owner = e
        .lanes
        .enqueue("fz", keyed(KeyPolicy::Serial))
        .await
        .expect("enqueue");
    let key = e.lanes.keys().queue("fz").task(owner.as_str());
    let _: () = redis::pipe()
        .cmd("DEL")
        .arg(&key)
        .cmd("SET")
        .arg(&key)
        .arg("x")
        .query_async(&mut e.lanes.connection())
        .await
        .expect("damage the owner");
    for policy in [KeyPolicy::Serial, KeyPolicy::Reject, KeyPolicy::Dedupe] {
        let r = e.lanes.enqueue("fz", keyed(policy)).await;
        assert!(
            !matches!(r, Err(lanes_queue::Error::Redis(_))),
            "{policy:?}: {r:?}"
        );
    }
}
