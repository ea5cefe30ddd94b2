//! The Redis key schema. Only this module builds key names.
//!
//! Every key of one queue carries the queue's hash tag (`{q}`), so each script touches a single
//! Redis Cluster slot. Per queue `q` under prefix `P`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{q}:ready` | zset | queued task ids, score = priority band + FIFO sequence |
//! | `P:{q}:delayed` | zset | scheduled and retrying task ids, score = run-at (ms) |
//! | `P:{q}:leased` | zset | running task ids, score = lease expiry (ms, Redis clock) |
//! | `P:{q}:dead` | zset | dead-lettered task ids, score = time of death (capped) |
//! | `P:{q}:stop` | set | running task ids asked to stop |
//! | `P:{q}:signal` | list | wake-ups for blocked fetchers (at most 16 entries) |
//! | `P:{q}:seq` | string | counter for FIFO order and fencing tokens |
//! | `P:{q}:stats` | hash | enqueued / succeeded / failed / retried / dead / cancelled / expired |
//! | `P:{q}:t:<id>` | hash | one task: kind, payload, state, attempts, token, result, error, times |
//! | `P:{q}:kheld` | hash | key → slots held (tasks of the key ready, delayed or running) |
//! | `P:{q}:kowner` | hash | key → the task holding a one-slot key |
//! | `P:{q}:lane:<key>` | zset | tasks waiting for their key, in enqueue order |
//! | `P:{q}:batch:<bid>` | hash | one batch: state, counters, children ids, finalize task, result |
//! | `P:{q}:batch-events` | stream | batch events (created, progress, child ends, finalize, end), capped |
//!
//! Global: `P:queues` (set of queue names), `P:workers` (zset worker id → last heartbeat),
//! `P:worker:<id>` (JSON worker record with a TTL).

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// The keys of one queue.
#[derive(Debug, Clone)]
pub struct QueueKeys {
    pub ready: String,
    pub delayed: String,
    pub leased: String,
    pub dead: String,
    pub stop: String,
    pub signal: String,
    pub seq: String,
    pub stats: String,
    pub kheld: String,
    pub kowner: String,
    /// Prefix of task hashes: append a task id.
    pub task_prefix: String,
    /// Prefix of key lanes: append a key.
    pub lane_prefix: String,
    /// Prefix of batch hashes: append a batch id.
    pub batch_prefix: String,
    /// The queue's capped stream of batch events.
    pub batch_events: String,
}

impl QueueKeys {
    pub fn task(&self, id: &str) -> String {
        format!("{}{id}", self.task_prefix)
    }

    pub fn lane(&self, key: &str) -> String {
        format!("{}{key}", self.lane_prefix)
    }

    pub fn batch(&self, id: &str) -> String {
        format!("{}{id}", self.batch_prefix)
    }
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn queue(&self, queue: &str) -> QueueKeys {
        let base = format!("{}:{{{queue}}}", self.prefix);
        QueueKeys {
            ready: format!("{base}:ready"),
            delayed: format!("{base}:delayed"),
            leased: format!("{base}:leased"),
            dead: format!("{base}:dead"),
            stop: format!("{base}:stop"),
            signal: format!("{base}:signal"),
            seq: format!("{base}:seq"),
            stats: format!("{base}:stats"),
            kheld: format!("{base}:kheld"),
            kowner: format!("{base}:kowner"),
            task_prefix: format!("{base}:t:"),
            lane_prefix: format!("{base}:lane:"),
            batch_prefix: format!("{base}:batch:"),
            batch_events: format!("{base}:batch-events"),
        }
    }

    pub fn queues(&self) -> String {
        format!("{}:queues", self.prefix)
    }

    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    pub fn worker(&self, id: &str) -> String {
        format!("{}:worker:{id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_share_one_hash_tag() {
        let k = Keys::new("lanes").queue("photos");
        for key in [
            &k.ready,
            &k.delayed,
            &k.leased,
            &k.dead,
            &k.stop,
            &k.signal,
            &k.seq,
            &k.stats,
            &k.batch_events,
        ] {
            assert!(key.starts_with("lanes:{photos}:"), "{key}");
        }
        assert_eq!(k.task("photos.abc"), "lanes:{photos}:t:photos.abc");
        assert_eq!(k.batch("photos.abc"), "lanes:{photos}:batch:photos.abc");
    }
}
