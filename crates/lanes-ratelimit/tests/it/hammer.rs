//! Many processes and tasks against one limiter: the limit holds in every window (Redis clock)
//! and a saturated limiter delivers at least 97 % of its rate.

use std::time::Duration;

use lanes_ratelimit::{Rate, ServerTime, bench};
use lanes_testkit::{ChildGuard, Prefix};

use crate::support::{self, connect, expect_success, spawn_child};

const RATE: &str = "50/s";
const PROCESSES: usize = 4;
const TASKS_PER_PROCESS: usize = 2;
const RUN_FOR: Duration = Duration::from_secs(3);

fn grants_key(prefix: &str, child: &str) -> String {
    format!("{prefix}:test:grants:{child}")
}

/// Child mode: two tasks hammer the shared limiter, then the grant timestamps go to a list.
pub async fn child(prefix: &str, child: &str) {
    let url = lanes_testkit::redis_url();
    let limits = lanes_ratelimit::Limits::new(connect(&url).await, prefix).expect("valid prefix");
    let limiter = limits
        .limiter("hammer", RATE.parse().expect("valid rate"))
        .expect("valid limiter");
    let grants = bench::hammer(&limiter, TASKS_PER_PROCESS, RUN_FOR)
        .await
        .expect("hammer ran");
    let micros: Vec<u64> = grants.iter().map(|t| t.as_micros()).collect();
    let mut conn = connect(&url).await;
    let _: usize = redis::AsyncCommands::rpush(&mut conn, grants_key(prefix, child), micros)
        .await
        .expect("record grants");
}

#[test]
fn four_processes_with_two_tasks_each_share_one_limit() {
    let prefix = Prefix::new();
    let mut children: Vec<ChildGuard> = (0..PROCESSES)
        .map(|i| spawn_child("hammer", &prefix, &i.to_string()))
        .collect();
    for child in &mut children {
        expect_success(child);
    }

    let mut conn = lanes_testkit::connection(prefix.url()).expect("connect");
    let mut grants = Vec::new();
    for i in 0..PROCESSES {
        let mine: Vec<u64> = redis::cmd("LRANGE")
            .arg(grants_key(prefix.name(), &i.to_string()))
            .arg(0)
            .arg(-1)
            .query(&mut *conn)
            .expect("read grants");
        assert!(!mine.is_empty(), "process {i} got no grant at all");
        grants.extend(mine.into_iter().map(ServerTime::from_micros));
    }

    let rate: Rate = RATE.parse().expect("valid rate");
    for window in [
        Duration::from_secs(1),
        Duration::from_millis(500),
        Duration::from_millis(100),
    ] {
        let report = bench::check_windows(&grants, &rate, window);
        assert!(report.within_limit(), "over the limit: {report:?}");
    }
    let report = bench::check_windows(&grants, &rate, rate.period());
    eprintln!("4 processes x 2 tasks at {rate}: {report:?}");
    // Burst 1: strict spacing, never two grants closer than the emission interval.
    assert!(
        report
            .min_gap
            .is_some_and(|gap| gap >= rate.emission_interval()),
        "grants closer than {:?}: {report:?}",
        rate.emission_interval()
    );
    assert!(
        report.delivered_ratio >= 0.97,
        "saturated limiter under-delivered: {report:?}"
    );
    assert!(report.grants >= 100, "too few grants to judge: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_holds_in_every_window_across_connections() {
    let prefix = Prefix::new();
    let rate: Rate = "40/s,burst=5".parse().expect("valid rate");
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let limiter = support::limits(&prefix)
            .await
            .limiter("bursty", rate)
            .expect("valid limiter");
        runs.spawn(async move { bench::hammer(&limiter, 2, Duration::from_secs(2)).await });
    }
    let mut grants = Vec::new();
    while let Some(run) = runs.join_next().await {
        grants.extend(run.expect("task joined").expect("hammer ran"));
    }
    for window in [
        Duration::from_secs(1),
        Duration::from_millis(250),
        Duration::ZERO,
    ] {
        let report = bench::check_windows(&grants, &rate, window);
        assert!(report.within_limit(), "over the limit: {report:?}");
    }
    let report = bench::check_windows(&grants, &rate, rate.period());
    eprintln!("3 connections x 2 tasks at {rate}: {report:?}");
    // The first five come at once from the idle burst, so the whole run sits above 100 %.
    assert!(
        report.delivered_ratio >= 0.97,
        "saturated limiter under-delivered: {report:?}"
    );
}
