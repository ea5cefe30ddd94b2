//! The leases one worker holds: what its heartbeat renews and what `inspect` shows as active and
//! reserved. An entry belongs to one attempt, identified by (task id, fencing token): a retry of
//! a task can be leased again by another slot of the same worker before the failed attempt's
//! bookkeeping is done, and nothing about the old attempt may touch the new one.

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

use crate::client::{Fetched, Lease, Renewal};
use crate::registry::TaskSummary;
use crate::task::TaskId;

/// One held lease.
pub(crate) struct Held {
    pub lease: Lease,
    pub kind: String,
    pub attempt: u32,
    pub since_ms: u64,
    /// Running (true) or leased ahead of a free slot (false).
    pub started: bool,
    /// Fired when someone asks the task to stop.
    pub stop: CancellationToken,
    /// Fired when the lease turns out to be someone else's now.
    pub lost: CancellationToken,
}

/// The worker's held leases by task id.
#[derive(Default)]
pub(crate) struct HeldSet {
    map: HashMap<TaskId, Held>,
}

impl HeldSet {
    /// Starts tracking an attempt; returns its stop and lost tokens.
    pub fn insert(
        &mut self,
        task: &Fetched,
        started: bool,
        now_ms: u64,
    ) -> (CancellationToken, CancellationToken) {
        let held = Held {
            lease: task.lease.clone(),
            kind: task.kind.clone(),
            attempt: task.attempt,
            since_ms: now_ms,
            started,
            stop: CancellationToken::new(),
            lost: CancellationToken::new(),
        };
        let tokens = (held.stop.clone(), held.lost.clone());
        self.map.insert(task.lease.id.clone(), held);
        tokens
    }

    fn current(&self, lease: &Lease) -> Option<&Held> {
        self.map
            .get(&lease.id)
            .filter(|h| h.lease.token == lease.token)
    }

    /// The attempt got a run slot.
    pub fn mark_started(&mut self, lease: &Lease, now_ms: u64) {
        if let Some(h) = self
            .map
            .get_mut(&lease.id)
            .filter(|h| h.lease.token == lease.token)
        {
            h.started = true;
            h.since_ms = now_ms;
        }
    }

    /// Stops tracking this attempt (not a later attempt of the same task).
    pub fn remove(&mut self, lease: &Lease) {
        if self.current(lease).is_some() {
            self.map.remove(&lease.id);
        }
    }

    /// A snapshot of every held lease, by queue, for one round of renewals.
    pub fn leases_by_queue(&self) -> HashMap<String, Vec<Lease>> {
        let mut by_queue: HashMap<String, Vec<Lease>> = HashMap::new();
        for h in self.map.values() {
            by_queue
                .entry(h.lease.queue().to_owned())
                .or_default()
                .push(h.lease.clone());
        }
        by_queue
    }

    /// Applies what renewing `sent` found: a lost lease cancels its attempt only if that attempt
    /// is still the one held; a stop request reaches whichever attempt runs now.
    pub fn apply_renewal(&self, sent: &[Lease], renewal: &Renewal) {
        for id in &renewal.lost {
            if let Some(lease) = sent.iter().find(|l| &l.id == id)
                && let Some(h) = self.current(lease)
            {
                h.lost.cancel();
            }
        }
        for id in &renewal.stop {
            if let Some(h) = self.map.get(id) {
                h.stop.cancel();
            }
        }
    }

    /// (active, reserved), oldest first.
    pub fn summaries(&self) -> (Vec<TaskSummary>, Vec<TaskSummary>) {
        let (mut active, mut reserved) = (Vec::new(), Vec::new());
        for h in self.map.values() {
            let s = TaskSummary {
                id: h.lease.id.to_string(),
                kind: h.kind.clone(),
                attempt: h.attempt,
                since_ms: h.since_ms,
            };
            if h.started {
                active.push(s)
            } else {
                reserved.push(s)
            }
        }
        active.sort_by_key(|s| s.since_ms);
        reserved.sort_by_key(|s| s.since_ms);
        (active, reserved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(token: &str, n: u32) -> Fetched {
        Fetched {
            lease: Lease {
                id: "jobs.0123456789abcdef0123456789abcdef".parse().expect("id"),
                token: token.into(),
            },
            kind: "k".into(),
            payload: Vec::new(),
            encoding: String::new(),
            attempt: n,
            max_retries: None,
            soft_limit: None,
            hard_limit: None,
            created_at_ms: 0,
            key: None,
        }
    }

    #[test]
    fn removing_an_old_attempt_keeps_the_new_attempt_of_the_same_task() {
        let mut set = HeldSet::default();
        let (old, new) = (attempt("7", 1), attempt("9", 2));
        set.insert(&old, true, 1);
        set.insert(&new, true, 2);
        set.remove(&old.lease);
        assert_eq!(
            set.leases_by_queue()["jobs"],
            vec![new.lease.clone()],
            "the retry is still renewed"
        );
        set.remove(&new.lease);
        assert!(set.leases_by_queue().is_empty());
    }

    #[test]
    fn a_lost_report_about_an_old_attempt_does_not_cancel_the_new_one() {
        let mut set = HeldSet::default();
        let (old, new) = (attempt("7", 1), attempt("9", 2));
        set.insert(&old, true, 1);
        let sent: Vec<Lease> = set.leases_by_queue().remove("jobs").unwrap_or_default();
        let (_, lost_new) = set.insert(&new, true, 2);
        let report = Renewal {
            lost: vec![new.lease.id.clone()],
            stop: Vec::new(),
        };
        set.apply_renewal(&sent, &report);
        assert!(
            !lost_new.is_cancelled(),
            "the report was about token 7; token 9 is fine"
        );
        // A report about the attempt actually sent does cancel it.
        let sent = set.leases_by_queue().remove("jobs").unwrap_or_default();
        set.apply_renewal(&sent, &report);
        assert!(lost_new.is_cancelled());
    }

    #[test]
    fn a_stop_request_reaches_the_running_attempt_and_started_follows_the_token() {
        let mut set = HeldSet::default();
        let (old, new) = (attempt("7", 1), attempt("9", 2));
        set.insert(&old, false, 1);
        let (stop_new, _) = set.insert(&new, false, 2);
        set.mark_started(&old.lease, 3);
        assert!(
            set.summaries().0.is_empty(),
            "the old attempt's start does not mark the new one"
        );
        set.mark_started(&new.lease, 4);
        assert_eq!(set.summaries().0.len(), 1);
        set.apply_renewal(
            &[],
            &Renewal {
                lost: Vec::new(),
                stop: vec![new.lease.id.clone()],
            },
        );
        assert!(stop_new.is_cancelled());
    }
}
