//! Fencing: a resource that remembers the highest token it accepted refuses writes from a holder
//! that lost its lock, even though that holder still believes it holds it.

use std::time::Duration;

use lanes_testkit::Prefix;

use crate::support;

#[tokio::test]
async fn a_stale_token_is_refused_by_the_fenced_resource() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let ttl = Duration::from_secs(10);
    let stale = locks
        .try_lock("res", ttl)
        .await
        .expect("try_lock")
        .expect("free");
    let old = stale.fencing_token();
    assert!(
        locks
            .fenced_set("balance", old, "100")
            .await
            .expect("write")
    );
    assert!(
        locks
            .fenced_set("balance", old, "110")
            .await
            .expect("write"),
        "same token twice"
    );

    // The holder stalls; an operator (or its TTL) frees the lock and a new holder writes.
    assert!(locks.force_release("res").await.expect("force"));
    let fresh = locks
        .try_lock("res", ttl)
        .await
        .expect("try_lock")
        .expect("freed");
    assert!(fresh.fencing_token() > old);
    assert!(
        locks
            .fenced_set("balance", fresh.fencing_token(), "250")
            .await
            .expect("write")
    );

    // The stalled holder wakes up and writes with its old token: refused, value kept.
    assert!(
        !locks
            .fenced_set("balance", old, "999")
            .await
            .expect("write")
    );
    assert!(!locks.check_fence("res", old).await.expect("check"));
    let value = locks
        .fenced_get("balance")
        .await
        .expect("get")
        .expect("written");
    assert_eq!(
        (value.fencing_token, value.value.as_str()),
        (fresh.fencing_token(), "250")
    );
    assert_eq!(locks.fenced_get("never-written").await.expect("get"), None);
}

#[tokio::test]
async fn tokens_compare_exactly_past_two_to_the_53() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let big = (1u64 << 53) + 1;
    assert!(locks.fenced_set("big", big, "a").await.expect("write"));
    assert!(!locks.fenced_set("big", big - 1, "b").await.expect("write"));
    assert!(
        !locks.fenced_set("big", 9, "c").await.expect("write"),
        "shorter number"
    );
    assert!(locks.fenced_set("big", u64::MAX, "d").await.expect("write"));
    let value = locks
        .fenced_get("big")
        .await
        .expect("get")
        .expect("written");
    assert_eq!((value.fencing_token, value.value.as_str()), (u64::MAX, "d"));
}

#[tokio::test]
async fn large_fencing_tokens_round_trip_exactly() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let keys = locks.keys().lock("big").expect("valid key");
    let mut conn = support::connect(prefix.url()).await;
    let start: u64 = 1_000_000_000_000_000_000; // past 2^53: not exact as a double
    let _: () = redis::AsyncCommands::set(&mut conn, &keys.fence, start)
        .await
        .expect("SET fence counter");
    let held = locks
        .try_lock("big", Duration::from_secs(10))
        .await
        .expect("try_lock")
        .expect("free");
    assert_eq!(held.fencing_token(), start + 1);
    let info = locks.holder("big").await.expect("holder").expect("held");
    assert_eq!(info.fencing_token, start + 1);
    assert!(locks.check_fence("big", start + 1).await.expect("check"));
}
