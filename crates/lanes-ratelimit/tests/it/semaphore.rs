//! Distributed semaphore: capacity under contention, leases that outlive their TTL while
//! renewed, dead holders that lose their slot, release on drop, cancellation, bad config.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lanes_ratelimit::{Error, Limits, SemaphoreConfig};
use lanes_testkit::Prefix;
use tokio_util::sync::CancellationToken;

use crate::support::{self, connect, guard, spawn_child};

const HOLDER_TTL: Duration = Duration::from_secs(1);

fn holder_key(prefix: &str) -> String {
    format!("{prefix}:test:holder")
}

/// Child mode: take the only slot of `dead` (1 s lease), say so, then live until killed.
pub async fn child_holder(prefix: &str) {
    let url = lanes_testkit::redis_url();
    let limits = Limits::new(connect(&url).await, prefix).expect("valid prefix");
    let sem = limits
        .semaphore(
            "dead",
            SemaphoreConfig::new(1).lease_ttl(HOLDER_TTL).owner("child"),
        )
        .expect("semaphore");
    let permit = sem
        .acquire(&CancellationToken::new())
        .await
        .expect("permit");
    let mut conn = connect(&url).await;
    let _: usize = redis::AsyncCommands::rpush(&mut conn, holder_key(prefix), permit.holder())
        .await
        .expect("announce");
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(permit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_holders_than_capacity_under_contention() {
    const CAPACITY: usize = 3;
    const ROUNDS: usize = 8;
    let prefix = Prefix::new();
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 {
        // Each "process" has its own connection; four tasks each.
        let sem = support::limits(&prefix)
            .await
            .semaphore(
                "pool",
                SemaphoreConfig::new(CAPACITY as u32).max_poll(Duration::from_millis(20)),
            )
            .expect("semaphore");
        for _ in 0..4 {
            let (sem, inside, most, done) =
                (sem.clone(), inside.clone(), most.clone(), done.clone());
            tasks.spawn(async move {
                let never = CancellationToken::new();
                for _ in 0..ROUNDS {
                    let permit = sem.acquire(&never).await.expect("permit");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let state = sem.state().await.expect("state");
                    assert!(
                        state.holders.len() <= CAPACITY,
                        "redis lists {} holders",
                        state.holders.len()
                    );
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    assert!(
                        permit.release().await.expect("release"),
                        "lease lost while held"
                    );
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    }
    while let Some(task) = guard("contention", tasks.join_next()).await {
        task.expect("task ran");
    }
    assert_eq!(done.load(Ordering::SeqCst), 3 * 4 * ROUNDS);
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=CAPACITY).contains(&most),
        "{most} holders at once, capacity {CAPACITY}"
    );
}

#[tokio::test]
async fn full_is_none_and_release_or_drop_frees_the_slot() {
    let prefix = Prefix::new();
    let sem = support::limits(&prefix)
        .await
        .semaphore("one", SemaphoreConfig::new(1))
        .expect("semaphore");
    let other = support::limits(&prefix)
        .await
        .semaphore("one", SemaphoreConfig::new(1))
        .expect("semaphore");

    let permit = sem
        .try_acquire()
        .await
        .expect("attempt")
        .expect("free slot");
    assert!(other.try_acquire().await.expect("attempt").is_none());
    assert!(permit.release().await.expect("release"));

    let permit = other
        .try_acquire()
        .await
        .expect("attempt")
        .expect("freed by release");
    drop(permit);
    let never = CancellationToken::new();
    let permit = guard("acquire after drop", sem.acquire(&never))
        .await
        .expect("freed by drop");
    let state = sem.state().await.expect("state");
    assert_eq!(state.capacity, 1);
    assert_eq!(state.holders.len(), 1);
    assert_eq!(state.holders[0].id, permit.holder());
    assert!(state.holders[0].lease_left <= sem.lease_ttl());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_outlives_its_ttl() {
    let prefix = Prefix::new();
    let ttl = Duration::from_secs(3);
    let config = SemaphoreConfig::new(1).lease_ttl(ttl);
    let sem = support::limits(&prefix)
        .await
        .semaphore("renewed", config.clone())
        .expect("semaphore");
    let other = support::limits(&prefix)
        .await
        .semaphore("renewed", config)
        .expect("semaphore");
    let permit = sem
        .try_acquire()
        .await
        .expect("attempt")
        .expect("free slot");
    tokio::time::sleep(ttl + Duration::from_secs(1)).await;
    assert!(!permit.is_lost());
    assert!(
        other.try_acquire().await.expect("attempt").is_none(),
        "slot freed while renewed"
    );
    assert!(permit.release().await.expect("release"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_loses_its_slot_after_its_ttl() {
    let prefix = Prefix::new();
    let mut child = spawn_child("holder", &prefix, "");
    let mut conn = connect(prefix.url()).await;
    let announced = guard("child holder", async {
        loop {
            let id: Option<String> =
                redis::AsyncCommands::lindex(&mut conn, holder_key(prefix.name()), 0)
                    .await
                    .expect("LINDEX");
            if let Some(id) = id {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let sem = support::limits(&prefix)
        .await
        .semaphore(
            "dead",
            SemaphoreConfig::new(1)
                .lease_ttl(HOLDER_TTL)
                .max_poll(Duration::from_millis(50)),
        )
        .expect("semaphore");
    let state = sem.state().await.expect("state");
    assert_eq!(
        state
            .holders
            .iter()
            .map(|h| h.id.as_str())
            .collect::<Vec<_>>(),
        [announced.as_str()]
    );
    assert!(
        sem.try_acquire().await.expect("attempt").is_none(),
        "the child holds the only slot"
    );

    child.signal(libc::SIGKILL);
    assert!(
        child.wait_timeout(Duration::from_secs(10)).is_some(),
        "child did not die"
    );

    let never = CancellationToken::new();
    let permit = guard("acquire after the holder died", sem.acquire(&never))
        .await
        .expect("slot of the dead holder");
    let state = sem.state().await.expect("state");
    assert_eq!(
        state
            .holders
            .iter()
            .map(|h| h.id.as_str())
            .collect::<Vec<_>>(),
        [permit.holder()]
    );
}

#[tokio::test]
async fn a_lease_taken_away_fires_lost() {
    let prefix = Prefix::new();
    let limits = support::limits(&prefix).await;
    let sem = limits
        .semaphore(
            "stolen",
            SemaphoreConfig::new(1).lease_ttl(Duration::from_millis(300)),
        )
        .expect("semaphore");
    let permit = sem
        .try_acquire()
        .await
        .expect("attempt")
        .expect("free slot");
    let mut conn = connect(prefix.url()).await;
    let removed: usize = redis::AsyncCommands::zrem(
        &mut conn,
        limits.keys().semaphore_holders("stolen"),
        permit.holder(),
    )
    .await
    .expect("ZREM");
    assert_eq!(removed, 1);
    guard("lost", permit.lost().cancelled()).await;
    assert!(permit.is_lost());
    assert!(
        !permit.release().await.expect("release"),
        "release reports the lease was already gone"
    );
}

#[tokio::test]
async fn a_cancelled_acquire_holds_nothing() {
    let prefix = Prefix::new();
    let sem = support::limits(&prefix)
        .await
        .semaphore("busy", SemaphoreConfig::new(1))
        .expect("semaphore");
    let permit = sem
        .try_acquire()
        .await
        .expect("attempt")
        .expect("free slot");

    let cancelled = CancellationToken::new();
    cancelled.cancel();
    assert!(matches!(
        sem.acquire(&cancelled).await,
        Err(Error::Cancelled)
    ));

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    assert!(matches!(
        guard("acquire", sem.acquire(&cancel)).await,
        Err(Error::Cancelled)
    ));

    let state = sem.state().await.expect("state");
    assert_eq!(
        state
            .holders
            .iter()
            .map(|h| h.id.as_str())
            .collect::<Vec<_>>(),
        [permit.holder()]
    );
}

#[tokio::test]
async fn bad_semaphore_config_is_refused_at_construction() {
    let prefix = Prefix::new();
    let limits = support::limits(&prefix).await;
    let refused = |config: SemaphoreConfig| {
        matches!(
            limits.semaphore("s", config),
            Err(Error::InvalidConfig { .. })
        )
    };
    assert!(refused(SemaphoreConfig::new(0)));
    assert!(refused(
        SemaphoreConfig::new(1).lease_ttl(Duration::from_millis(1))
    ));
    assert!(refused(SemaphoreConfig::new(1).max_poll(Duration::ZERO)));
    assert!(refused(SemaphoreConfig::new(1).owner("")));
    assert!(matches!(
        limits.semaphore("a}b", SemaphoreConfig::new(1)),
        Err(Error::InvalidName { .. })
    ));
    assert!(
        limits
            .semaphore("ok", SemaphoreConfig::new(2).owner("worker-1"))
            .is_ok()
    );
}
