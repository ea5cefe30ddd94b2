//! In-process bots: parallel accounts on one shared browser, refusal of a second start,
//! idempotent deposits, OTP, bad passwords, transient errors, browser crashes, stop.

use std::time::Duration;

use lanes_bank::{ALREADY_RUNNING, Error as BankError, start_bot};
use lanes_browser::PoolMode;
use lanes_queue::{CancelOutcome, TaskState};
use lanes_testkit::Prefix;

use crate::support::{
    Bank, InProcess, bad_password, browser, expected_ids, lanes, result, secrets_file, stored_ids,
    wait_final, wait_state,
};

const LEASE: Duration = Duration::from_secs(5);
const LONG: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_accounts_in_parallel_share_one_browser() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, LEASE).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let accounts = ["par-1", "par-2", "par-3", "par-4", "par-5"];
    let secrets = secrets_file(dir.path(), &accounts, &[]);
    let bot = InProcess::start(&lanes, &bank, secrets, 5, browser(PoolMode::Shared, None)).await;
    let mut ids = Vec::new();
    for a in accounts {
        ids.push(start_bot(&lanes, a).await.expect("start"));
    }
    let mut infos = Vec::new();
    for id in &ids {
        infos.push(wait_final(&lanes, id, LONG).await);
    }
    let results: Vec<_> = infos.iter().map(result).collect();
    for (a, r) in accounts.iter().zip(&results) {
        assert_eq!(r.account_id, *a);
        assert_eq!(
            stored_ids(&lanes, a).await,
            expected_ids(a),
            "deposits of {a}"
        );
        assert_eq!(r.new_deposits as usize, expected_ids(a).len());
        assert_eq!(r.pages as usize, lanes_fakes::bank::profile(a).pages);
        let s = bank.stats(a).await;
        assert_eq!((s.logins, s.peak_sessions), (1, 1), "{a}: {s:?}");
    }
    let pid = results[0].browser_pid;
    assert!(
        results.iter().all(|r| r.browser_pid == pid),
        "one browser for every account"
    );
    assert_eq!(bot.bot.pool().stats().launched, 1);
    let last_start = infos
        .iter()
        .filter_map(|t| t.started_at_ms)
        .max()
        .expect("starts");
    let first_end = infos
        .iter()
        .filter_map(|t| t.finished_at_ms)
        .min()
        .expect("ends");
    assert!(last_start < first_end, "the five bots ran at the same time");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_start_is_refused_until_the_first_finishes() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, LEASE).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let account = "slow-once";
    let secrets = secrets_file(dir.path(), &[account], &[]);
    let bot = InProcess::start(&lanes, &bank, secrets, 2, browser(PoolMode::Shared, None)).await;

    let first = start_bot(&lanes, account).await.expect("first start");
    match start_bot(&lanes, account).await {
        Err(e @ BankError::AlreadyRunning { .. }) => assert_eq!(e.to_string(), ALREADY_RUNNING),
        other => panic!("second start was not refused: {other:?}"),
    }
    wait_state(&lanes, &first, TaskState::Running, LONG).await;
    assert!(matches!(
        start_bot(&lanes, account).await,
        Err(BankError::AlreadyRunning { .. })
    ));
    let r1 = result(&wait_final(&lanes, &first, LONG).await);
    let want = expected_ids(account);
    assert_eq!(r1.new_deposits as usize, want.len());

    let second = start_bot(&lanes, account)
        .await
        .expect("a new start after the first finished");
    let r2 = result(&wait_final(&lanes, &second, LONG).await);
    assert_eq!(r2.new_deposits, 0, "no deposit stored twice");
    assert_eq!(r2.total_deposits as usize, want.len());
    assert_eq!(stored_ids(&lanes, account).await, want);
    let s = bank.stats(account).await;
    assert_eq!((s.logins, s.peak_sessions), (2, 1), "{s:?}");
    let status = lanes_bank::bot_status(&lanes, account)
        .await
        .expect("status")
        .expect("a task");
    assert_eq!(status.id, second);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn otp_bad_password_and_transient_errors() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, LEASE).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (otp, bad, flaky) = ("acct-otp-1", "acct-badpw", "flaky-1");
    let secrets = secrets_file(
        dir.path(),
        &[otp, flaky],
        &[(bad, bad_password(bad, "not-the-password"))],
    );
    let bot = InProcess::start(&lanes, &bank, secrets, 3, browser(PoolMode::Shared, None)).await;
    let ids = [
        start_bot(&lanes, otp).await.expect("start"),
        start_bot(&lanes, bad).await.expect("start"),
        start_bot(&lanes, flaky).await.expect("start"),
    ];

    let r = result(&wait_final(&lanes, &ids[0], LONG).await);
    assert!(r.otp, "the bank asked for a one-time code");
    assert_eq!(stored_ids(&lanes, otp).await, expected_ids(otp));

    let t = wait_final(&lanes, &ids[1], LONG).await;
    assert_eq!(t.state, TaskState::Failed, "{t:?}");
    assert_eq!(t.attempts, 1, "bad credentials are not retried");
    let err = t.error.clone().unwrap_or_default();
    assert!(err.contains("rejected the username or password"), "{err}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = bank.stats(bad).await;
    assert_eq!(
        (s.failed_logins, s.lockouts, s.locked),
        (1, 0, false),
        "{s:?}"
    );

    let t = wait_final(&lanes, &ids[2], LONG).await;
    let r = result(&t);
    assert_eq!(t.attempts, 2, "the 500 was retried once");
    assert_eq!(bank.stats(flaky).await.errors_served, 1);
    assert_eq!(r.total_deposits as usize, expected_ids(flaky).len());
    assert_eq!(stored_ids(&lanes, flaky).await, expected_ids(flaky));

    // The key of a failed bot is free again.
    start_bot(&lanes, bad)
        .await
        .expect("a new start after a failure");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_browser_is_relaunched_for_the_next_bot() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, LEASE).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = secrets_file(dir.path(), &["crash-1", "crash-2"], &[]);
    let bot = InProcess::start(&lanes, &bank, secrets, 1, browser(PoolMode::Shared, None)).await;
    let id = start_bot(&lanes, "crash-1").await.expect("start");
    let pid = result(&wait_final(&lanes, &id, LONG).await).browser_pid;
    kill(pid);
    let id = start_bot(&lanes, "crash-2").await.expect("start");
    let r = result(&wait_final(&lanes, &id, LONG).await);
    assert_ne!(r.browser_pid, pid, "a new browser");
    assert_eq!(stored_ids(&lanes, "crash-2").await, expected_ids("crash-2"));
    assert_eq!(bot.bot.pool().stats().relaunched_after_crash, 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_killed_mid_bot_is_retried_on_a_new_one() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, LEASE).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let account = "slow-crash";
    let secrets = secrets_file(dir.path(), &[account], &[]);
    let bot = InProcess::start(&lanes, &bank, secrets, 1, browser(PoolMode::Shared, None)).await;
    let id = start_bot(&lanes, account).await.expect("start");
    // Page 1 read: the bot is now waiting on the slow page 2.
    wait_progress(&lanes, &id).await;
    let pids = bot.bot.pool().browser_pids();
    assert_eq!(pids.len(), 1);
    kill(pids[0]);
    let t = wait_final(&lanes, &id, LONG).await;
    let r = result(&t);
    assert_eq!(t.attempts, 2, "retried after the crash");
    assert_ne!(r.browser_pid, pids[0]);
    assert_eq!(stored_ids(&lanes, account).await, expected_ids(account));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_a_running_bot_closes_it_and_frees_the_key() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, LEASE).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let account = "slow-stop";
    let secrets = secrets_file(dir.path(), &[account], &[]);
    let bot = InProcess::start(&lanes, &bank, secrets, 1, browser(PoolMode::Shared, None)).await;
    let id = start_bot(&lanes, account).await.expect("start");
    wait_progress(&lanes, &id).await;
    assert_eq!(
        lanes.cancel(&id).await.expect("cancel"),
        CancelOutcome::Stopping
    );
    let t = wait_final(&lanes, &id, Duration::from_secs(10)).await;
    assert_eq!(t.state, TaskState::Cancelled, "{t:?}");
    let again = start_bot(&lanes, account)
        .await
        .expect("the key is free after a stop");
    result(&wait_final(&lanes, &again, LONG).await);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_per_bot_mode_gives_each_bot_its_own_browser() {
    let prefix = Prefix::new();
    let lanes = lanes(&prefix, LEASE).await;
    let bank = Bank::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = secrets_file(dir.path(), &["own-1", "own-2"], &[]);
    let bot = InProcess::start(
        &lanes,
        &bank,
        secrets,
        2,
        browser(PoolMode::PerSession, None),
    )
    .await;
    let a = start_bot(&lanes, "own-1").await.expect("start");
    let b = start_bot(&lanes, "own-2").await.expect("start");
    let (ra, rb) = (
        result(&wait_final(&lanes, &a, LONG).await),
        result(&wait_final(&lanes, &b, LONG).await),
    );
    assert_ne!(ra.browser_pid, rb.browser_pid);
    assert_eq!(stored_ids(&lanes, "own-1").await, expected_ids("own-1"));
    assert_eq!(bot.bot.pool().stats().launched, 2);
    bot.stop().await;
}

async fn wait_progress(lanes: &lanes_queue::Lanes, id: &lanes_queue::TaskId) {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let t = lanes.task(id).await.expect("task").expect("exists");
        if t.state == TaskState::Running && t.progress.is_some() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no progress: {t:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGKILL to a Chromium this test's bot launched (by its PID).
fn kill(pid: u32) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) on the PID of a browser started by this test's own pool.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}
