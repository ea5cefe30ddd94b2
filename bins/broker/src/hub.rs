//! The dashboard hub: one snapshot poller per broker process, shared by every open event
//! stream, so ten open dashboards cost Redis what one does. The poller starts with the first
//! subscriber and stops when the last one leaves (or on shutdown).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::fleet;
use crate::model::Snapshot;
use crate::state::AppState;

/// A snapshot serialized once for every subscriber.
pub type Frame = Arc<String>;

/// Fans one poller's snapshots out to every event stream.
#[derive(Debug)]
pub struct Hub {
    tx: watch::Sender<Option<Frame>>,
    polling: AtomicBool,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(None),
            polling: AtomicBool::new(false),
        }
    }
}

impl Hub {
    /// A receiver of snapshot frames, starting the poller if none runs.
    pub fn subscribe(&self, state: &AppState) -> watch::Receiver<Option<Frame>> {
        // Subscribe before checking the flag: a poller that is about to stop sees this
        // receiver and keeps going (see `poll`).
        let rx = self.tx.subscribe();
        if !self.polling.swap(true, Ordering::AcqRel) {
            // A fresh start: never show a snapshot from before an idle period.
            self.tx.send_replace(None);
            tokio::spawn(poll(state.clone()));
        }
        rx
    }
}

async fn snapshot(
    state: &AppState,
    rows: usize,
    prev: Option<&Snapshot>,
) -> Result<Snapshot, crate::error::AppError> {
    let lanes = state.lanes().await?;
    fleet::snapshot(lanes, &state.limits().await?, rows, prev).await
}

async fn poll(state: AppState) {
    let hub = state.hub();
    let cfg = state.config();
    let (interval, rows, timeout) = (
        cfg.snapshot_interval,
        cfg.dashboard_rows,
        cfg.request_timeout,
    );
    let mut prev: Option<Snapshot> = None;
    let mut was_ok = true;
    tracing::debug!("dashboard poller started");
    loop {
        let snap = match tokio::time::timeout(timeout, snapshot(&state, rows, prev.as_ref())).await
        {
            Ok(Ok(s)) => {
                if !was_ok {
                    tracing::info!("dashboard snapshots recovered");
                }
                was_ok = true;
                s
            }
            Ok(Err(e)) => {
                if was_ok {
                    tracing::warn!(error = %e.cause(), "dashboard snapshot failed");
                }
                was_ok = false;
                Snapshot::unavailable(e.to_string())
            }
            Err(_) => {
                if was_ok {
                    tracing::warn!(?timeout, "dashboard snapshot timed out");
                }
                was_ok = false;
                Snapshot::unavailable("redis did not answer in time".into())
            }
        };
        match serde_json::to_string(&snap) {
            Ok(json) => {
                hub.tx.send_replace(Some(Arc::new(json)));
            }
            Err(e) => tracing::error!(error = %e, "snapshot does not serialize"),
        }
        if snap.redis_ok {
            prev = Some(snap);
        }
        tokio::select! {
            () = state.shutdown().cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
        if hub.tx.receiver_count() == 0 {
            hub.polling.store(false, Ordering::Release);
            // A subscriber that arrived between the count and the store either saw `true` (and
            // counts as a receiver now) or will start a new poller (and set the flag again).
            if hub.tx.receiver_count() == 0 || hub.polling.swap(true, Ordering::AcqRel) {
                break;
            }
        }
    }
    if state.shutdown().is_cancelled() {
        hub.polling.store(false, Ordering::Release);
    }
    tracing::debug!("dashboard poller stopped");
}
