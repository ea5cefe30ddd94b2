//! Waiting for a lock: a waiter wakes on release (a `BLPOP` signal across connections, or the
//! in-process wake-up when polling) and acquires; a wait that runs out is `Ok(None)`; a
//! cancelled wait is `Error::Cancelled` and holds nothing.
//!
//! The waiters here poll only once a minute and the holder's TTL is a minute, so without the
//! release wake-up they would retry only at the end of their 30 s wait. A rival takes the lock
//! 10 s after the release unless the waiter already has it, so a waiter that was not woken finds
//! the rival's lock at its deadline and the test fails (instead of merely running slow). That
//! margin is a scenario, not a latency bound: a woken waiter takes milliseconds.

use std::time::Duration;

use lanes_lock::{Error, Guard, Locks};
use lanes_testkit::Prefix;
use tokio_util::sync::CancellationToken;

use crate::support::{self, guard};

const HOLD_TTL: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(30);
const RIVAL_AFTER: Duration = Duration::from_secs(10);
const SLOW_POLL: Duration = Duration::from_secs(60);

type Waiter = tokio::task::JoinHandle<lanes_lock::Result<Option<Guard>>>;

/// Starts `waiter.lock(key)` in a task, gives it time to block, and returns its handle.
async fn start_waiter(waiter: &Locks, key: &'static str) -> Waiter {
    let waiter = waiter.clone();
    let task = tokio::spawn(async move {
        waiter
            .lock(key, HOLD_TTL, WAIT, &CancellationToken::new())
            .await
    });
    // Not an assertion: if the waiter is not blocked yet, it simply finds the lock free.
    tokio::time::sleep(Duration::from_millis(300)).await;
    task
}

/// The waiter's guard, once it has acquired after a release that just happened; a rival (its
/// own connection) tries to take the lock `RIVAL_AFTER` later unless the waiter has won by then.
async fn waiter_wins(prefix: &Prefix, key: &'static str, task: Waiter) -> Guard {
    let rival = support::polling_locks(prefix).await;
    let rival = tokio::spawn(async move {
        tokio::time::sleep(RIVAL_AFTER).await;
        rival.try_lock(key, HOLD_TTL).await
    });
    let outcome = guard("waiter", task).await.expect("waiter task");
    rival.abort();
    outcome
        .expect("lock")
        .expect("the waiter acquired after the release")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_waiter_on_another_connection_wakes_on_release() {
    let prefix = Prefix::new();
    let holder = support::polling_locks(&prefix).await;
    let waiter = support::blocking_locks(&prefix)
        .await
        .with_max_poll(SLOW_POLL)
        .expect("max poll");
    let held = holder
        .try_lock("w", HOLD_TTL)
        .await
        .expect("try_lock")
        .expect("free");
    let first = held.fencing_token();
    let task = start_waiter(&waiter, "w").await;
    assert!(
        !task.is_finished(),
        "waiter returned while the lock was held"
    );
    assert!(held.release().await.expect("release"));
    let taken = waiter_wins(&prefix, "w", task).await;
    assert_eq!(taken.fencing_token(), first + 1);
    let info = holder.holder("w").await.expect("holder").expect("held");
    assert_eq!(info.owner, taken.owner());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_waiter_wakes_when_the_guard_is_dropped() {
    let prefix = Prefix::new();
    let holder = support::blocking_locks(&prefix).await;
    let waiter = support::blocking_locks(&prefix)
        .await
        .with_max_poll(SLOW_POLL)
        .expect("max poll");
    let held = holder
        .try_lock("d", HOLD_TTL)
        .await
        .expect("try_lock")
        .expect("free");
    let first = held.fencing_token();
    let task = start_waiter(&waiter, "d").await;
    drop(held);
    let taken = waiter_wins(&prefix, "d", task).await;
    assert_eq!(taken.fencing_token(), first + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_waiter_wakes_on_a_release_in_its_own_process() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix)
        .await
        .with_max_poll(SLOW_POLL)
        .expect("max poll");
    let held = locks
        .try_lock("p", HOLD_TTL)
        .await
        .expect("try_lock")
        .expect("free");
    let first = held.fencing_token();
    let task = start_waiter(&locks, "p").await;
    assert!(held.release().await.expect("release"));
    let taken = waiter_wins(&prefix, "p", task).await;
    assert_eq!(taken.fencing_token(), first + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_release_wakes_a_blocked_waiter() {
    let prefix = Prefix::new();
    let holder = support::polling_locks(&prefix).await;
    let waiter = support::blocking_locks(&prefix)
        .await
        .with_max_poll(SLOW_POLL)
        .expect("max poll");
    let stuck = holder
        .try_lock("f", HOLD_TTL)
        .await
        .expect("try_lock")
        .expect("free");
    let task = start_waiter(&waiter, "f").await;
    assert!(holder.force_release("f").await.expect("force"));
    let taken = waiter_wins(&prefix, "f", task).await;
    assert!(taken.fencing_token() > stuck.fencing_token());
}

#[tokio::test]
async fn a_wait_that_runs_out_is_none_and_the_holder_keeps_the_lock() {
    let prefix = Prefix::new();
    let holder = support::polling_locks(&prefix).await;
    let held = holder
        .try_lock("busy", HOLD_TTL)
        .await
        .expect("try_lock")
        .expect("free");
    let never = CancellationToken::new();
    for waiter in [
        support::blocking_locks(&prefix).await,
        support::polling_locks(&prefix).await,
    ] {
        let outcome = guard(
            "short wait",
            waiter.lock("busy", HOLD_TTL, Duration::from_millis(300), &never),
        )
        .await
        .expect("lock");
        assert!(outcome.is_none(), "acquired a held lock");
        let zero = waiter
            .lock("busy", HOLD_TTL, Duration::ZERO, &never)
            .await
            .expect("lock");
        assert!(zero.is_none());
    }
    let info = holder.holder("busy").await.expect("holder").expect("held");
    assert_eq!(info.owner, held.owner());
}

#[tokio::test]
async fn a_cancelled_wait_is_an_error_and_holds_nothing() {
    let prefix = Prefix::new();
    let holder = support::polling_locks(&prefix).await;
    let held = holder
        .try_lock("c", HOLD_TTL)
        .await
        .expect("try_lock")
        .expect("free");
    let waiter = support::blocking_locks(&prefix).await;

    let cancelled = CancellationToken::new();
    cancelled.cancel();
    assert!(matches!(
        waiter.lock("c", HOLD_TTL, WAIT, &cancelled).await,
        Err(Error::Cancelled)
    ));

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    assert!(matches!(
        guard("cancelled wait", waiter.lock("c", HOLD_TTL, WAIT, &cancel)).await,
        Err(Error::Cancelled)
    ));

    let info = holder.holder("c").await.expect("holder").expect("held");
    assert_eq!(info.owner, held.owner());
    assert!(held.release().await.expect("release"));
    // The cancelled waiter's abandoned BLPOP does not get in the way of the next wait.
    let never = CancellationToken::new();
    assert!(
        guard(
            "wait after cancel",
            waiter.lock("c", HOLD_TTL, WAIT, &never)
        )
        .await
        .expect("lock")
        .is_some()
    );
}
