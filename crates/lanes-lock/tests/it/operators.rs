//! Ownership and operator tools: a release never deletes someone else's lock, `force_release`
//! frees a stuck lock (and the evicted guard notices), `holder` reports owner, token and TTL,
//! dropping a guard releases in the background.

use std::time::Duration;

use lanes_testkit::Prefix;

use crate::support::{self, guard};

#[tokio::test]
async fn holder_reports_owner_fencing_token_and_ttl() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix)
        .await
        .with_owner_label("worker-7")
        .expect("label");
    assert_eq!(locks.holder("acct").await.expect("holder"), None);
    let ttl = Duration::from_secs(10);
    let held = locks
        .try_lock("acct", ttl)
        .await
        .expect("try_lock")
        .expect("free");
    assert!(held.owner().starts_with("worker-7/"));
    assert_eq!(held.key(), "acct");
    assert_eq!(held.ttl(), ttl);
    let info = locks.holder("acct").await.expect("holder").expect("held");
    assert_eq!(info.owner, held.owner());
    assert_eq!(info.fencing_token, held.fencing_token());
    assert!(
        info.ttl_left > Duration::ZERO && info.ttl_left <= ttl,
        "{info:?}"
    );
    assert!(
        locks
            .check_fence("acct", held.fencing_token())
            .await
            .expect("check")
    );
    assert!(
        !locks
            .check_fence("acct", held.fencing_token() + 1)
            .await
            .expect("check")
    );
    assert!(!locks.check_fence("free", 1).await.expect("check"));
}

#[tokio::test]
async fn tokens_increase_per_key_and_keys_are_independent() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let ttl = Duration::from_secs(10);
    let mut last = 0;
    for _ in 0..5 {
        let held = locks
            .try_lock("a", ttl)
            .await
            .expect("try_lock")
            .expect("free");
        assert!(held.fencing_token() > last);
        last = held.fencing_token();
        assert!(held.release().await.expect("release"));
    }
    // Another key has its own counter and is not blocked by "a".
    let a = locks
        .try_lock("a", ttl)
        .await
        .expect("try_lock")
        .expect("free");
    let b = locks
        .try_lock("b", ttl)
        .await
        .expect("try_lock")
        .expect("free");
    assert_eq!(b.fencing_token(), 1);
    assert!(a.fencing_token() > last);
}

#[tokio::test]
async fn release_never_deletes_someone_elses_lock() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let other = support::polling_locks(&prefix).await;
    let ttl = Duration::from_millis(600);
    let first = locks
        .try_lock("k", ttl)
        .await
        .expect("try_lock")
        .expect("free");

    // An operator frees it; someone else takes it.
    assert!(locks.force_release("k").await.expect("force"));
    let second = other
        .try_lock("k", ttl)
        .await
        .expect("try_lock")
        .expect("freed");
    assert!(second.fencing_token() > first.fencing_token());

    // The evicted guard notices at its next renewal, and its release leaves the new lock alone.
    guard("evicted guard sees lost", first.lost().cancelled()).await;
    assert!(first.is_lost());
    assert!(
        !first.release().await.expect("release"),
        "released someone else's lock"
    );
    let info = other
        .holder("k")
        .await
        .expect("holder")
        .expect("still held");
    assert_eq!(info.owner, second.owner());
    assert!(!second.is_lost());

    assert!(second.release().await.expect("release"));
    assert_eq!(other.holder("k").await.expect("holder"), None);
    assert!(
        !locks.force_release("k").await.expect("force"),
        "nothing to free"
    );
}

#[tokio::test]
async fn a_dropped_guard_releases_in_the_background() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let held = locks
        .try_lock("dropped", Duration::from_secs(30))
        .await
        .expect("try_lock")
        .expect("free");
    let fence = held.fencing_token();
    drop(held);
    let again = guard("lock after drop", async {
        loop {
            if let Some(g) = locks
                .try_lock("dropped", Duration::from_secs(30))
                .await
                .expect("try_lock")
            {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(again.fencing_token() > fence);
}
