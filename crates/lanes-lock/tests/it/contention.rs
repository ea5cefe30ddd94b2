//! Many acquirers, one key: never two holders at once, and fencing tokens strictly increase in
//! the order holders enter. In one process (32 tasks over 4 connections, half waiting by `BLPOP`,
//! half by polling) and across 3 OS processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lanes_testkit::Prefix;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use crate::support::{
    self, assert_exclusive, blocking_locks_at, connect, critical_section, expect_success,
    polling_locks_at, spawn_child, test_key,
};

const KEY: &str = "contended";
const TTL: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(60);
const CHILDREN: usize = 3;
const CHILD_TASKS: usize = 8;
const CHILD_ROUNDS: usize = 4;

/// Child mode: wait until every child is ready, then 8 tasks over 2 connections (one blocking,
/// one polling) each take the lock `CHILD_ROUNDS` times and record their critical sections.
pub async fn child_contend(prefix: &str) {
    let url = lanes_testkit::redis_url();
    let mut conn = connect(&url).await;
    let ready = test_key(prefix, "ready");
    let _: i64 = conn.incr(&ready, 1).await.expect("INCR ready");
    loop {
        let n: i64 = conn.get(&ready).await.expect("GET ready");
        if n >= CHILDREN as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lockers = [
        blocking_locks_at(&url, prefix).await,
        polling_locks_at(&url, prefix).await,
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..CHILD_TASKS {
        let locks = lockers[t % lockers.len()].clone();
        let (mut conn, prefix) = (conn.clone(), prefix.to_owned());
        tasks.spawn(async move {
            let never = CancellationToken::new();
            for _ in 0..CHILD_ROUNDS {
                let guard = locks
                    .lock(KEY, TTL, WAIT, &never)
                    .await
                    .expect("lock call")
                    .expect("acquired within the wait");
                critical_section(&mut conn, &prefix, &guard).await;
                assert!(guard.release().await.expect("release"), "lost while held");
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.expect("child task ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_across_tasks_and_connections() {
    const CONNECTIONS: usize = 4;
    const TASKS_PER_CONNECTION: usize = 8;
    const ROUNDS: usize = 5;
    let prefix = Prefix::new();
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let recorder = connect(prefix.url()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONNECTIONS {
        let locks = if c % 2 == 0 {
            support::blocking_locks(&prefix).await
        } else {
            support::polling_locks(&prefix).await
        };
        for _ in 0..TASKS_PER_CONNECTION {
            let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
            let (mut conn, name) = (recorder.clone(), prefix.name().to_owned());
            tasks.spawn(async move {
                let never = CancellationToken::new();
                for _ in 0..ROUNDS {
                    let guard = locks
                        .lock(KEY, TTL, WAIT, &never)
                        .await
                        .expect("lock call")
                        .expect("acquired within the wait");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    critical_section(&mut conn, &name, &guard).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    assert!(guard.release().await.expect("release"), "lost while held");
                }
            });
        }
    }
    while let Some(task) = support::guard("contention", tasks.join_next()).await {
        task.expect("task ran");
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "two holders at once in this process"
    );
    assert_exclusive(&prefix, CONNECTIONS * TASKS_PER_CONNECTION * ROUNDS).await;
    let locks = support::polling_locks(&prefix).await;
    assert_eq!(locks.holder(KEY).await.expect("holder"), None, "left held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_across_processes() {
    let prefix = Prefix::new();
    let mut children: Vec<_> = (0..CHILDREN)
        .map(|_| spawn_child("contend", &prefix))
        .collect();
    tokio::task::spawn_blocking(move || {
        for child in &mut children {
            expect_success(child);
        }
    })
    .await
    .expect("children joined");
    assert_exclusive(&prefix, CHILDREN * CHILD_TASKS * CHILD_ROUNDS).await;
}
