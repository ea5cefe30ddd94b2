//! Integration tests of lanes-lock against a real `redis-server` (started once per test binary by
//! lanes-testkit), one key prefix per test.

mod bench;
mod contention;
mod errors;
mod expiry;
mod fencing;
mod operators;
mod support;
mod waiting;

/// Entry point of the child processes spawned by the multi-process tests (the test binary runs
/// itself with `child_entry --exact` and a mode in the environment). A no-op in a normal run.
#[test]
fn child_entry() {
    support::child_main();
}
