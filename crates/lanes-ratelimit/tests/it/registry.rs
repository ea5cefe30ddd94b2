//! Listing the limiters and semaphores the fleet uses (what a dashboard enumerates).

use lanes_ratelimit::{LimiterInfo, SemaphoreConfig, SemaphoreInfo};
use lanes_testkit::Prefix;

use crate::support;

#[tokio::test]
async fn used_limiters_and_semaphores_are_listed_with_their_config() {
    let prefix = Prefix::new();
    let limits = support::limits(&prefix).await;
    assert!(limits.list_limiters().await.expect("list").is_empty());

    let keepa = limits
        .limiter("keepa", "5/h".parse().expect("rate"))
        .expect("limiter");
    let gemini = limits
        .limiter("gemini", "50/m,burst=5".parse().expect("rate"))
        .expect("limiter");
    keepa.try_acquire(1).await.expect("decision");
    gemini.try_acquire(1).await.expect("decision");
    let browsers = limits
        .semaphore("browsers", SemaphoreConfig::new(4))
        .expect("semaphore");
    let permit = browsers
        .try_acquire()
        .await
        .expect("attempt")
        .expect("a free slot");

    // Another process sees them, and can rebuild a handle from the listing to inspect it.
    let elsewhere = support::limits(&prefix).await;
    let listed = elsewhere.list_limiters().await.expect("list");
    assert_eq!(
        listed,
        vec![
            LimiterInfo {
                name: "gemini".into(),
                rate: "50/m,burst=5".parse().expect("rate")
            },
            LimiterInfo {
                name: "keepa".into(),
                rate: "5/h".parse().expect("rate")
            },
        ]
    );
    let rebuilt = elsewhere
        .limiter(&listed[1].name, listed[1].rate)
        .expect("limiter");
    assert_eq!(rebuilt.state().await.expect("state").available, 0);

    assert_eq!(
        elsewhere.list_semaphores().await.expect("list"),
        vec![SemaphoreInfo {
            name: "browsers".into(),
            capacity: 4
        }]
    );
    permit.release().await.expect("release");
}
