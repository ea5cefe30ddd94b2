//! A Redis that cannot be reached is a typed error after a bounded retry: never a hang, never a
//! silent grant.

use std::process::{Command, Stdio};
use std::time::Duration;

use lanes_ratelimit::{Error, Limits, RetryPolicy, SemaphoreConfig};
use lanes_testkit::{ChildGuard, free_port, wait_for};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

use crate::support::guard;

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
async fn a_closed_port_is_unavailable_not_a_pass() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let limits = Limits::new(lazy_manager(&url), "unreachable").expect("limits");
    let limiter = limits
        .limiter("api", "8/s".parse().expect("rate"))
        .expect("limiter");
    let sem = limits
        .semaphore("pool", SemaphoreConfig::new(2))
        .expect("semaphore");
    let never = CancellationToken::new();

    assert_unavailable(
        "try_acquire",
        guard("try_acquire", limiter.try_acquire(1)).await,
    );
    assert_unavailable(
        "acquire",
        guard("acquire", limiter.acquire(1, &never)).await,
    );
    assert_unavailable(
        "pause_for",
        guard("pause_for", limiter.pause_for(Duration::from_secs(1))).await,
    );
    assert_unavailable("state", guard("state", limiter.state()).await);
    assert_unavailable("list", guard("list", limits.list_limiters()).await);
    assert_unavailable(
        "semaphore try_acquire",
        guard("sem", sem.try_acquire()).await,
    );
    assert_unavailable("semaphore acquire", guard("sem", sem.acquire(&never)).await);

    let message = format!("{}", limiter.try_acquire(1).await.expect_err("an error"));
    assert_eq!(message, "redis unavailable after 3 attempts");
}

#[tokio::test]
async fn a_redis_that_dies_mid_run_is_unavailable() {
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let mut server = ChildGuard::spawn(&mut cmd).expect("start a private redis-server");
    let url = format!("redis://127.0.0.1:{port}/");
    let up = wait_for(Duration::from_secs(10), || {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut conn = client.get_connection().ok()?;
        redis::cmd("PING").query::<String>(&mut conn).ok()
    });
    assert!(up.is_some(), "private redis-server did not start");

    let limits = Limits::new(lazy_manager(&url), "dies")
        .expect("limits")
        .with_retry(RetryPolicy {
            attempts: 2,
            ..RetryPolicy::default()
        })
        .expect("valid retry policy");
    let limiter = limits
        .limiter("api", "100/s".parse().expect("rate"))
        .expect("limiter");
    assert!(
        limiter
            .try_acquire(1)
            .await
            .expect("redis is up")
            .is_allowed()
    );

    server.signal(libc::SIGKILL);
    assert!(
        server.wait_timeout(Duration::from_secs(10)).is_some(),
        "redis-server did not die"
    );

    match guard("try_acquire", limiter.try_acquire(1)).await {
        Err(Error::Unavailable { attempts: 2, .. }) => {}
        other => panic!("expected Unavailable after 2 attempts, got {other:?}"),
    }
}

#[test]
fn a_retry_policy_without_attempts_is_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let limits = Limits::new(lazy_manager("redis://127.0.0.1:1/"), "p").expect("limits");
        let zero = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(matches!(
            limits.with_retry(zero),
            Err(Error::InvalidConfig { .. })
        ));
    });
}
