//! The mixed workload: what each task does (its payload, read by the worker's handlers) and the
//! plan the controller enqueues in waves (generic tasks, keyed `serial` lanes, batches), with the
//! outcome each task is designed to reach.

use serde::{Deserialize, Serialize};

/// Queue of the generic tasks.
pub const GEN_QUEUE: &str = "chaos-gen";
/// Queue of the keyed (`serial`) tasks.
pub const SERIAL_QUEUE: &str = "chaos-serial";
/// Queue of the batches, their children and finalize tasks.
pub const BATCH_QUEUE: &str = "chaos-batch";
pub const QUEUES: [&str; 3] = [GEN_QUEUE, SERIAL_QUEUE, BATCH_QUEUE];

pub const GEN_KIND: &str = "gen";
pub const SERIAL_KIND: &str = "serial";
pub const CHILD_KIND: &str = "child";
pub const FINALIZE_KIND: &str = "finalize";

/// Sequences per key in the keyed lanes.
pub const SEQS_PER_KEY: u32 = 25;
/// Children per batch (at most).
pub const CHILDREN_PER_BATCH: usize = 150;

/// A task's payload: what its handler does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Index in the plan (unique per run).
    pub n: u64,
    /// How long the handler sleeps.
    pub sleep_ms: u64,
    /// The first this many attempts fail with a retryable error.
    #[serde(default)]
    pub fail_first: u32,
    /// Then the task fails permanently (dead-lettered as `failed`, never retried).
    #[serde(default)]
    pub permanent: bool,
    /// Keyed tasks: the key and the position in it (1-based, enqueue order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
    /// Batch children: items the child reports as processed (absolute progress).
    #[serde(default)]
    pub items: u64,
}

impl Spec {
    /// The state the task is designed to end in.
    pub fn expected_failure(&self) -> bool {
        self.permanent
    }
}

/// How many tasks of each path a run of `total` tasks holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shape {
    pub generic: usize,
    pub keys: usize,
    pub serial: usize,
    pub batches: usize,
    pub children: usize,
}

impl Shape {
    /// About a quarter keyed, 15 % batch children (plus one finalize per batch), the rest
    /// generic; at least two keys and one batch.
    pub fn of(total: usize) -> Self {
        let keys = (total / 4 / SEQS_PER_KEY as usize).max(2);
        let serial = keys * SEQS_PER_KEY as usize;
        let children = (total * 15 / 100).max(10);
        let batches = children.div_ceil(CHILDREN_PER_BATCH).max(1);
        let generic = total.saturating_sub(serial + children + batches);
        Self {
            generic,
            keys,
            serial,
            batches,
            children,
        }
    }

    pub fn total(&self) -> usize {
        self.generic + self.serial + self.children + self.batches
    }
}

/// A deterministic pseudo-random stream (a seeded `fastrand`), so a run can be repeated.
pub fn rng(seed: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed)
}

/// A generic task's spec: mostly short, some slow (so workers hold tasks when they are killed
/// or frozen), 6 % fail once or twice first, 0.5 % fail permanently.
pub fn generic(n: u64, r: &mut fastrand::Rng) -> Spec {
    let roll = r.u32(0..1000);
    Spec {
        n,
        sleep_ms: if r.u32(0..20) == 0 {
            r.u64(100..400)
        } else {
            r.u64(0..8)
        },
        fail_first: match roll {
            0..40 => 1,
            40..60 => 2,
            _ => 0,
        },
        permanent: (60..65).contains(&roll),
        ..Spec::default()
    }
}

/// A keyed task's spec: small varied durations, 5 % fail once first (order must survive it).
pub fn serial(n: u64, key: &str, seq: u32, r: &mut fastrand::Rng) -> Spec {
    Spec {
        n,
        sleep_ms: r.u64(2..40),
        fail_first: u32::from(r.u32(0..20) == 0),
        key: Some(key.to_owned()),
        seq: Some(seq),
        ..Spec::default()
    }
}

/// A batch child's spec: reports `items` processed; 5 % fail once first, 2 % fail permanently
/// (before reporting progress, so their items never count).
pub fn child(n: u64, r: &mut fastrand::Rng) -> Spec {
    let roll = r.u32(0..100);
    Spec {
        n,
        sleep_ms: r.u64(1..30),
        fail_first: u32::from(roll < 5),
        permanent: (5..7).contains(&roll),
        items: r.u64(1..20),
        ..Spec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_covers_every_path_and_adds_up() {
        for total in [1_500, 20_000, 50] {
            let s = Shape::of(total);
            assert!(s.keys >= 2 && s.batches >= 1 && s.children >= 10, "{s:?}");
            assert!(s.total() >= total.min(s.serial + s.children + s.batches));
            assert_eq!(s.serial, s.keys * SEQS_PER_KEY as usize);
        }
        let s = Shape::of(20_000);
        assert_eq!(s.total(), 20_000);
    }

    #[test]
    fn the_same_seed_gives_the_same_workload() {
        let (mut a, mut b) = (rng(7), rng(7));
        let xs: Vec<Spec> = (0..100).map(|n| generic(n, &mut a)).collect();
        let ys: Vec<Spec> = (0..100).map(|n| generic(n, &mut b)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|s| s.fail_first > 0));
    }
}
