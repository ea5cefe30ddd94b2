//! Single-limiter behaviour: decisions, burst, amounts, state, key expiry, cancellation, names.

use std::time::Duration;

use lanes_ratelimit::{Decision, Error, Limits, Rate, bench};
use lanes_testkit::Prefix;
use tokio_util::sync::CancellationToken;

use crate::support::{self, connect, guard, pttl};

fn rate(s: &str) -> Rate {
    s.parse().expect("valid rate")
}

#[tokio::test]
async fn strict_spacing_allows_one_then_says_how_long_to_wait() {
    let prefix = Prefix::new();
    let limiter = support::limits(&prefix)
        .await
        .limiter("strict", rate("10/s"))
        .expect("limiter");
    assert_eq!(
        limiter.try_acquire(1).await.expect("decision"),
        Decision::Allowed
    );
    match limiter.try_acquire(1).await.expect("decision") {
        Decision::Wait(d) => assert!(
            d > Duration::ZERO && d <= Duration::from_millis(100),
            "wait {d:?}"
        ),
        Decision::Allowed => panic!("two grants inside one emission interval with burst 1"),
    }
}

#[tokio::test]
async fn burst_is_available_at_once_then_spent() {
    let prefix = Prefix::new();
    // 3 per hour: nothing refills during the test.
    let limiter = support::limits(&prefix)
        .await
        .limiter("bursty", rate("3/h,burst=3"))
        .expect("limiter");
    let fresh = limiter.state().await.expect("state");
    assert_eq!(
        (fresh.available, fresh.next_free, fresh.paused_until),
        (3, Duration::ZERO, None)
    );

    assert_eq!(
        limiter.try_acquire(2).await.expect("decision"),
        Decision::Allowed
    );
    assert_eq!(limiter.state().await.expect("state").available, 1);
    assert_eq!(
        limiter.try_acquire(1).await.expect("decision"),
        Decision::Allowed
    );

    let spent = limiter.state().await.expect("state");
    assert_eq!(spent.available, 0);
    assert!(
        spent.next_free > Duration::from_secs(19 * 60),
        "next free in {:?}",
        spent.next_free
    );
    match limiter.try_acquire(1).await.expect("decision") {
        Decision::Wait(d) => {
            assert!(d > Duration::from_secs(19 * 60) && d <= Duration::from_secs(20 * 60))
        }
        Decision::Allowed => panic!("a fourth grant out of a burst of three"),
    }
}

#[tokio::test]
async fn limiters_on_different_connections_share_one_budget() {
    let prefix = Prefix::new();
    let a = support::limits(&prefix)
        .await
        .limiter("shared", rate("2/h,burst=2"))
        .expect("limiter");
    let b = support::limits(&prefix)
        .await
        .limiter("shared", rate("2/h,burst=2"))
        .expect("limiter");
    let other = support::limits(&prefix)
        .await
        .limiter("other", rate("2/h,burst=2"))
        .expect("limiter");
    assert!(a.try_acquire(1).await.expect("decision").is_allowed());
    assert!(b.try_acquire(1).await.expect("decision").is_allowed());
    assert!(!a.try_acquire(1).await.expect("decision").is_allowed());
    assert!(!b.try_acquire(1).await.expect("decision").is_allowed());
    assert!(
        other.try_acquire(2).await.expect("decision").is_allowed(),
        "names are separate limiters"
    );
}

#[tokio::test]
async fn asking_for_more_than_the_burst_or_nothing_is_an_error() {
    let prefix = Prefix::new();
    let limiter = support::limits(&prefix)
        .await
        .limiter("amounts", rate("5/s,burst=2"))
        .expect("limiter");
    for n in [0, 3] {
        match limiter.try_acquire(n).await {
            Err(Error::InvalidAmount {
                requested, burst, ..
            }) => assert_eq!((requested, burst), (n, 2)),
            other => panic!("expected InvalidAmount for {n}, got {other:?}"),
        }
        let never = CancellationToken::new();
        assert!(matches!(
            limiter.acquire(n, &never).await,
            Err(Error::InvalidAmount { .. })
        ));
    }
}

#[tokio::test]
async fn acquire_waits_for_its_slot_and_reports_it() {
    let prefix = Prefix::new();
    let limiter = support::limits(&prefix)
        .await
        .limiter("waits", rate("20/s"))
        .expect("limiter");
    let never = CancellationToken::new();
    let mut last = None;
    for _ in 0..5 {
        let grant = guard("acquire", limiter.acquire(1, &never))
            .await
            .expect("grant");
        if let Some(prev) = last {
            assert!(
                grant.at.saturating_duration_since(prev) >= rate("20/s").emission_interval(),
                "grants closer than the interval"
            );
        }
        last = Some(grant.at);
    }
}

#[tokio::test]
async fn acquire_honours_cancellation() {
    let prefix = Prefix::new();
    let limiter = support::limits(&prefix)
        .await
        .limiter("slow", rate("1/h"))
        .expect("limiter");
    assert!(limiter.try_acquire(1).await.expect("decision").is_allowed());

    let cancelled = CancellationToken::new();
    cancelled.cancel();
    assert!(matches!(
        limiter.acquire(1, &cancelled).await,
        Err(Error::Cancelled)
    ));

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
}

#[tokio::test]
async fn limiter_keys_expire_when_idle() {
    let prefix = Prefix::new();
    let limits = support::limits(&prefix).await;
    let limiter = limits.limiter("expiring", rate("10/s")).expect("limiter");
    assert!(limiter.try_acquire(1).await.expect("decision").is_allowed());
    limiter
        .pause_for(Duration::from_millis(500))
        .await
        .expect("pause");

    let mut conn = connect(prefix.url()).await;
    let keys = limits.keys().limiter("expiring");
    let tat_ttl = pttl(&mut conn, &keys.tat).await;
    assert!(
        tat_ttl > 0 && tat_ttl <= 102,
        "tat ttl {tat_ttl} ms: it should expire one interval after the grant"
    );
    let pause_ttl = pttl(&mut conn, &keys.pause).await;
    assert!(
        pause_ttl > 0 && pause_ttl <= 501,
        "pause ttl {pause_ttl} ms"
    );
    for key in prefix.keys() {
        if key != limits.keys().limiter_index() {
            assert!(pttl(&mut conn, &key).await > 0, "{key} has no expiry");
        }
    }
}

#[tokio::test]
async fn names_that_break_keys_are_refused_at_construction() {
    let prefix = Prefix::new();
    let limits = support::limits(&prefix).await;
    for name in ["", "a{b}", "two words"] {
        assert!(
            matches!(
                limits.limiter(name, rate("1/s")),
                Err(Error::InvalidName { .. })
            ),
            "{name:?} should be refused"
        );
    }
    let conn = connect(prefix.url()).await;
    assert!(matches!(
        Limits::new(conn, "bad{prefix}"),
        Err(Error::InvalidName { .. })
    ));
    assert!(limits.limiter("sp_api:eu", rate("8/s")).is_ok());
}

#[tokio::test]
async fn decision_latency_is_measurable() {
    let prefix = Prefix::new();
    let limiter = support::limits(&prefix)
        .await
        .limiter("latency", rate("1000/s,burst=10"))
        .expect("limiter");
    let summary = bench::decision_latency(&limiter, 50)
        .await
        .expect("latency");
    assert_eq!(summary.samples, 50);
    assert!(summary.allowed >= 1);
    assert!(summary.p50 <= summary.p99 && summary.p99 <= summary.max);
}
