//! Leases: a killed holder loses the lock within its TTL and its fencing token goes stale; a live
//! holder keeps a 1 s lock for 3 s because its guard renews it.

use std::time::Duration;

use lanes_testkit::Prefix;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use crate::support::{self, connect, first_in_list, guard, spawn_child, test_key};

const TTL: Duration = Duration::from_secs(1);
const KEY: &str = "dead";
const LEDGER: &str = "ledger";

/// Child mode: take `dead` with a 1 s TTL, write the ledger with its token, announce
/// `owner fence`, then live (renewing) until killed.
pub async fn child_holder(prefix: &str) {
    let url = lanes_testkit::redis_url();
    let locks = support::polling_locks_at(&url, prefix)
        .await
        .with_owner_label("child")
        .expect("label");
    let held = locks
        .try_lock(KEY, TTL)
        .await
        .expect("try_lock")
        .expect("the lock is free");
    assert!(
        locks
            .fenced_set(LEDGER, held.fencing_token(), "written by the child")
            .await
            .expect("fenced set")
    );
    let mut conn = connect(&url).await;
    let _: usize = conn
        .rpush(
            test_key(prefix, "holder"),
            format!("{} {}", held.owner(), held.fencing_token()),
        )
        .await
        .expect("announce");
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_loses_the_lock_and_its_token_goes_stale() {
    let prefix = Prefix::new();
    let mut child = spawn_child("holder", &prefix);
    let mut conn = connect(prefix.url()).await;
    let announced = guard(
        "child holder",
        first_in_list(&mut conn, &test_key(prefix.name(), "holder")),
    )
    .await;
    let (child_owner, child_fence) = announced.split_once(' ').expect("owner fence");
    let child_fence: u64 = child_fence.parse().expect("fence");

    let locks = support::blocking_locks(&prefix).await;
    let info = locks.holder(KEY).await.expect("holder").expect("held");
    assert_eq!(
        (info.owner.as_str(), info.fencing_token),
        (child_owner, child_fence)
    );
    assert!(info.owner.starts_with("child/"));
    assert!(
        locks.try_lock(KEY, TTL).await.expect("try_lock").is_none(),
        "the child holds the lock"
    );

    child.signal(libc::SIGKILL);
    assert!(
        child.wait_timeout(Duration::from_secs(10)).is_some(),
        "child did not die"
    );

    // No release signal comes from a dead holder: the waiter retries when the TTL runs out.
    let never = CancellationToken::new();
    let taken = guard(
        "lock after the holder died",
        locks.lock(KEY, TTL, Duration::from_secs(60), &never),
    )
    .await
    .expect("lock")
    .expect("the dead holder's lock expired");
    assert!(taken.fencing_token() > child_fence);
    let info = locks.holder(KEY).await.expect("holder").expect("held");
    assert_eq!(info.owner, taken.owner());

    assert!(!locks.check_fence(KEY, child_fence).await.expect("check"));
    assert!(
        locks
            .check_fence(KEY, taken.fencing_token())
            .await
            .expect("check")
    );
    assert!(
        locks
            .fenced_set(LEDGER, taken.fencing_token(), "written by the new holder")
            .await
            .expect("fenced set")
    );
    assert!(
        !locks
            .fenced_set(LEDGER, child_fence, "late write from the dead holder")
            .await
            .expect("fenced set"),
        "a stale token was accepted"
    );
    let ledger = locks
        .fenced_get(LEDGER)
        .await
        .expect("get")
        .expect("written");
    assert_eq!(ledger.value, "written by the new holder");
    assert_eq!(ledger.fencing_token, taken.fencing_token());
    assert!(taken.release().await.expect("release"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_holder_keeps_a_one_second_lock_for_three_seconds() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let other = support::blocking_locks(&prefix).await;
    let held = locks
        .try_lock("renewed", TTL)
        .await
        .expect("try_lock")
        .expect("free");
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            other
                .try_lock("renewed", TTL)
                .await
                .expect("try_lock")
                .is_none(),
            "the lock expired while its holder lived"
        );
        let info = other
            .holder("renewed")
            .await
            .expect("holder")
            .expect("held");
        assert_eq!(info.fencing_token, held.fencing_token());
        assert!(info.ttl_left <= TTL);
    }
    assert!(!held.is_lost());
    assert!(
        held.release().await.expect("release"),
        "the lock was still held"
    );
    assert!(
        other
            .try_lock("renewed", TTL)
            .await
            .expect("try_lock")
            .is_some()
    );
}
