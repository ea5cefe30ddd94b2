//! Bad input and an unreachable Redis are typed errors: never a panic, a hang, or a lock
//! reported acquired.

use std::time::Duration;

use lanes_lock::{Error, Locks, MAX_KEY_LEN, RetryPolicy};
use lanes_testkit::{Prefix, free_port};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

use crate::support::{self, guard};

const TTL: Duration = Duration::from_secs(5);

fn invalid_key<T: std::fmt::Debug>(what: &str, outcome: Result<T, Error>) {
    assert!(
        matches!(outcome, Err(Error::InvalidKey { .. })),
        "{what}: expected InvalidKey, got {outcome:?}"
    );
}

#[tokio::test]
async fn bad_keys_are_refused_before_touching_redis() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let never = CancellationToken::new();
    let long = "k".repeat(MAX_KEY_LEN + 1);
    for bad in ["", "a{b", "a}b", "{tag}", long.as_str()] {
        invalid_key("try_lock", locks.try_lock(bad, TTL).await);
        invalid_key("lock", locks.lock(bad, TTL, TTL, &never).await);
        invalid_key("holder", locks.holder(bad).await);
        invalid_key("force_release", locks.force_release(bad).await);
        invalid_key("check_fence", locks.check_fence(bad, 1).await);
        invalid_key("fenced_set", locks.fenced_set(bad, 1, "v").await);
        invalid_key("fenced_get", locks.fenced_get(bad).await);
    }
    let message = locks
        .try_lock("a{b", TTL)
        .await
        .expect_err("refused")
        .to_string();
    assert_eq!(
        message,
        "invalid lock key \"a{b\": must not contain braces (they would break the cluster hash tag)"
    );
    assert_eq!(prefix.key_count(), 0, "a refused call wrote to redis");
    // The longest allowed key works.
    let longest = "k".repeat(MAX_KEY_LEN);
    assert!(
        locks
            .try_lock(&longest, TTL)
            .await
            .expect("try_lock")
            .is_some()
    );
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let prefix = Prefix::new();
    let conn = support::connect(prefix.url()).await;
    for bad in ["", "a b", "a{b"] {
        assert!(matches!(
            Locks::new(conn.clone(), bad),
            Err(Error::InvalidConfig {
                what: "key prefix",
                ..
            })
        ));
    }
    let locks = Locks::new(conn, prefix.name()).expect("valid prefix");
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(29),
        Duration::from_secs(2 * 86_400),
    ] {
        assert!(matches!(
            locks.try_lock("k", ttl).await,
            Err(Error::InvalidConfig {
                what: "lock ttl",
                ..
            })
        ));
    }
    assert!(matches!(
        locks.clone().with_max_poll(Duration::ZERO),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        locks.clone().with_max_poll(Duration::from_secs(7200)),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        locks.clone().with_owner_label("two words"),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        locks.clone().with_retry(RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        }),
        Err(Error::InvalidConfig { .. })
    ));
    // An unrepresentably long wait is "forever", not a panic.
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    assert!(matches!(
        locks.lock("k", TTL, Duration::MAX, &cancelled).await,
        Err(Error::Cancelled)
    ));
}

/// A connection manager that gives up reconnecting quickly (the caller's choice, not ours).
fn lazy_manager(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url).expect("valid url");
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Some(Duration::from_millis(200)))
        .set_response_timeout(Some(Duration::from_millis(200)));
    ConnectionManager::new_lazy_with_config(client, config).expect("lazy connection manager")
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, outcome: Result<T, Error>) {
    match outcome {
        Err(Error::Unavailable { attempts, .. }) => assert_eq!(attempts, 3, "{what}: retries"),
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_port_is_unavailable_never_acquired() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let client = redis::Client::open(url.as_str()).expect("valid url");
    let locks = Locks::new(lazy_manager(&url), "unreachable")
        .expect("locks")
        .with_wait_client(client);
    let never = CancellationToken::new();

    assert_unavailable(
        "try_lock",
        guard("try_lock", locks.try_lock("k", TTL)).await,
    );
    assert_unavailable(
        "lock",
        guard("lock", locks.lock("k", TTL, Duration::from_secs(5), &never)).await,
    );
    assert_unavailable("holder", guard("holder", locks.holder("k")).await);
    assert_unavailable(
        "force_release",
        guard("force", locks.force_release("k")).await,
    );
    assert_unavailable(
        "check_fence",
        guard("check", locks.check_fence("k", 1)).await,
    );
    assert_unavailable(
        "fenced_set",
        guard("set", locks.fenced_set("r", 1, "v")).await,
    );
    assert_unavailable("fenced_get", guard("get", locks.fenced_get("r")).await);
    assert_unavailable(
        "bench",
        guard(
            "bench",
            lanes_lock::bench::acquire_release_latency(&locks, 3),
        )
        .await,
    );

    let message = locks
        .try_lock("k", TTL)
        .await
        .expect_err("an error")
        .to_string();
    assert_eq!(message, "redis unavailable after 3 attempts");
}
