//! The benchmark helper runs against a real Redis and cleans up after itself.

use lanes_lock::bench::acquire_release_latency;
use lanes_testkit::Prefix;

use crate::support;

#[tokio::test]
async fn acquire_release_latency_reports_ordered_percentiles_and_leaves_no_keys() {
    let prefix = Prefix::new();
    let locks = support::polling_locks(&prefix).await;
    let summary = acquire_release_latency(&locks, 50).await.expect("bench");
    assert_eq!(summary.samples, 50);
    assert!(
        summary.p50 <= summary.p99 && summary.p99 <= summary.max,
        "{summary:?}"
    );
    assert!(summary.mean <= summary.max);
    assert_eq!(prefix.keys(), Vec::<String>::new());
}
