//! `pause_for`: after a 429, no process is granted anything until the pause ends (Redis clock).

use std::time::Duration;

use lanes_ratelimit::{Decision, Error, Rate};
use lanes_testkit::Prefix;
use tokio_util::sync::CancellationToken;

use crate::support::{self, guard};

fn rate(s: &str) -> Rate {
    s.parse().expect("valid rate")
}

#[tokio::test]
async fn no_grant_anywhere_until_the_pause_ends() {
    let prefix = Prefix::new();
    let here = support::limits(&prefix)
        .await
        .limiter("api", rate("100/s,burst=10"))
        .expect("limiter");
    // Another worker, on its own connection.
    let there = support::limits(&prefix)
        .await
        .limiter("api", rate("100/s,burst=10"))
        .expect("limiter");
    assert!(here.try_acquire(1).await.expect("decision").is_allowed());

    let until = here
        .pause_for(Duration::from_millis(300))
        .await
        .expect("pause");

    let state = there.state().await.expect("state");
    assert_eq!(state.paused_until, Some(until));
    assert_eq!(state.available, 0);
    assert!(state.next_free > Duration::ZERO && state.next_free <= Duration::from_millis(300));
    match there.try_acquire(1).await.expect("decision") {
        Decision::Wait(d) => assert!(
            d > Duration::ZERO && d <= Duration::from_millis(300),
            "wait {d:?}"
        ),
        Decision::Allowed => panic!("granted during a pause"),
    }

    let never = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for limiter in [here.clone(), there.clone(), here, there] {
        let never = never.clone();
        tasks.spawn(async move { limiter.acquire(1, &never).await });
    }
    while let Some(grant) = guard("acquire after pause", tasks.join_next()).await {
        let grant = grant.expect("task joined").expect("grant");
        assert!(
            grant.at >= until,
            "granted at {:?}, before the pause ended at {until:?}",
            grant.at
        );
    }
}

#[tokio::test]
async fn a_shorter_pause_never_shortens_a_longer_one() {
    let prefix = Prefix::new();
    let limiter = support::limits(&prefix)
        .await
        .limiter("api", rate("5/s"))
        .expect("limiter");
    let long = limiter
        .pause_for(Duration::from_secs(60))
        .await
        .expect("pause");
    let short = limiter
        .pause_for(Duration::from_millis(10))
        .await
        .expect("pause");
    assert_eq!(short, long);
    assert_eq!(
        limiter.state().await.expect("state").paused_until,
        Some(long)
    );

    // A waiting acquire can be cancelled out of a long pause.
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    assert!(matches!(
        guard("acquire", limiter.acquire(1, &cancel)).await,
        Err(Error::Cancelled)
    ));

    limiter.clear_pause().await.expect("clear");
    assert_eq!(limiter.state().await.expect("state").paused_until, None);
    assert!(limiter.try_acquire(1).await.expect("decision").is_allowed());
}

#[tokio::test]
async fn an_absurd_pause_is_refused() {
    let prefix = Prefix::new();
    let limiter = support::limits(&prefix)
        .await
        .limiter("api", rate("5/s"))
        .expect("limiter");
    let two_years = Duration::from_secs(2 * 365 * 24 * 3600);
    assert!(matches!(
        limiter.pause_for(two_years).await,
        Err(Error::InvalidConfig { .. })
    ));
}
