//! The dispatch side of channel jobs, shared by the broker and the worker: `dispatch_job`,
//! `job_status`, `cancel_job`, channel names, and the payloads the worker's kinds read.
//!
//! A job is a batch on queue [`QUEUE`] with one child of kind [`KIND_COLLECT`] per channel and a
//! finalize task of kind [`KIND_FINALIZE`] that sums the channels up into the batch's result;
//! the batch id is the job id. Children run on any collector with a free slot, independently:
//! no barrier between them, and a channel that fails ends only its own child.
//!
//! Channel names are Telegram usernames: `@name`, `name` or `https://t.me/name`, normalized to
//! `name` (lowercase, 4 to 32 of `a-z 0-9 _`, starting with a letter). A name of another shape
//! is refused at dispatch ([`DispatchError::BadChannel`], HTTP 400); a well-formed name the API
//! does not know fails its own child permanently ("channel @x not found ...").

use std::collections::{HashMap, HashSet};

use lanes_queue::{BatchCancel, BatchId, BatchSpec, BatchState, Lanes, NewTask, TaskId, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::checkpoint::{Checkpoints, Standing};

/// The queue channel jobs run on.
pub const QUEUE: &str = "channels";
/// Collects one channel (a batch child).
pub const KIND_COLLECT: &str = "channels.collect";
/// Sums a job's channels up, once, after the last one ended.
pub const KIND_FINALIZE: &str = "channels.finalize";
/// Most channels one job may hold.
pub const MAX_CHANNELS: usize = 1000;

/// The payload of a collect task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectPayload {
    pub channel: String,
}

/// Why a channel list was refused.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("the channel list is empty")]
    Empty,
    #[error("{count} channels in one job; send at most {max}")]
    TooMany { count: usize, max: usize },
    #[error("{channel:?} is not a channel name: {reason}")]
    BadChannel {
        channel: String,
        reason: &'static str,
    },
    /// The engine refused or Redis failed.
    #[error(transparent)]
    Engine(#[from] lanes_queue::Error),
}

/// `@Name`, `name` or `https://t.me/name` → `name`, or why it is not a channel name.
pub fn normalize_channel(raw: &str) -> Result<String, DispatchError> {
    let bad = |reason| DispatchError::BadChannel {
        channel: raw.to_owned(),
        reason,
    };
    let mut s = raw.trim();
    for prefix in ["https://", "http://"] {
        s = s.strip_prefix(prefix).unwrap_or(s);
    }
    for prefix in ["t.me/", "telegram.me/"] {
        s = s.strip_prefix(prefix).unwrap_or(s);
    }
    let s = s.strip_prefix('@').unwrap_or(s).trim_end_matches('/');
    let name = s.to_ascii_lowercase();
    if !(4..=32).contains(&name.len()) {
        return Err(bad("a channel name is 4 to 32 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(bad("a channel name starts with a letter"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(bad("a channel name holds only letters, digits and _"));
    }
    Ok(name)
}

/// Checks and normalizes a channel list, dropping repeats (first one kept).
pub fn validate_channels(channels: Vec<String>) -> Result<Vec<String>, DispatchError> {
    if channels.is_empty() {
        return Err(DispatchError::Empty);
    }
    if channels.len() > MAX_CHANNELS {
        return Err(DispatchError::TooMany {
            count: channels.len(),
            max: MAX_CHANNELS,
        });
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(channels.len());
    for raw in &channels {
        let name = normalize_channel(raw)?;
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Creates a job collecting `channels` (validated here) on [`QUEUE`]; returns its id.
pub async fn dispatch_job(lanes: &Lanes, channels: Vec<String>) -> Result<BatchId, DispatchError> {
    let channels = validate_channels(channels)?;
    let children = channels
        .iter()
        .map(|c| NewTask::new(KIND_COLLECT, json!(CollectPayload { channel: c.clone() })))
        .collect();
    let spec = BatchSpec::new(children)
        .finalize(NewTask::new(KIND_FINALIZE, json!({})))
        .meta(json!({ "channels": channels }));
    let id = lanes.create_batch(QUEUE, spec).await?;
    tracing::info!(job_id = %id, channels = channels.len(), "channel job dispatched");
    Ok(id)
}

/// One channel of a job.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelStatus {
    pub channel: String,
    pub task_id: TaskId,
    pub state: TaskState,
    pub attempts: u32,
    /// Messages this job added to the channel's output.
    pub messages: u64,
    /// Photos this job saved.
    pub images: u64,
    /// Messages stored for the channel in all (this job and earlier ones).
    pub stored_messages: u64,
    /// The channel's message count when last seen (0 before the first look).
    pub total_messages: u64,
    /// The last message stored (where the next collection resumes).
    pub last_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A job and each of its channels.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub job_id: BatchId,
    pub state: BatchState,
    /// Channels ended / channels, in percent.
    pub progress: f64,
    pub channels_total: u64,
    pub channels_done: u64,
    pub channels_succeeded: u64,
    pub channels_failed: u64,
    pub channels_cancelled: u64,
    /// Messages collected by this job (the batch's `processed_items`).
    pub messages: u64,
    /// Photos saved by this job.
    pub images: u64,
    pub channels: Vec<ChannelStatus>,
    /// The finalize step's summary, once it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    pub created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
}

impl JobStatus {
    /// True once every channel ended and the summary was written.
    pub fn is_finished(&self) -> bool {
        self.finished_at_ms.is_some()
    }
}

/// A job's status with per-channel counts, or `None` when there is no such job (or it
/// expired). A few round trips whatever the number of channels.
pub async fn job_status(lanes: &Lanes, id: &BatchId) -> lanes_queue::Result<Option<JobStatus>> {
    let Some(batch) = lanes.batch(id).await? else {
        return Ok(None);
    };
    let infos = lanes.tasks(&batch.children).await?;
    let by_id: HashMap<&TaskId, _> = infos.iter().map(|t| (&t.id, t)).collect();
    let payloads = lanes.payloads(&batch.children).await?;
    let names: Vec<String> = payloads
        .into_iter()
        .zip(&batch.children)
        .map(|(p, id)| {
            p.and_then(|p| serde_json::from_value::<CollectPayload>(p).ok())
                .and_then(|p| normalize_channel(&p.channel).ok())
                .unwrap_or_else(|| format!("?{id}"))
        })
        .collect();
    let checkpoints = Checkpoints::new(
        lanes.connection(),
        lanes.keys().prefix(),
        lanes.config().result_ttl,
    );
    let pairs: Vec<(String, String)> = names
        .iter()
        .zip(&batch.children)
        .map(|(n, id)| (n.clone(), id.to_string()))
        .collect();
    let standings = checkpoints
        .standings(&pairs)
        .await
        .map_err(lanes_queue::Error::Redis)?;
    let mut channels = Vec::with_capacity(names.len());
    let mut images = 0;
    for ((channel, task_id), standing) in names.into_iter().zip(&batch.children).zip(standings) {
        let info = by_id.get(task_id);
        let Standing { checkpoint, .. } = standing;
        let (added, added_images) = standing.added();
        images += added_images;
        channels.push(ChannelStatus {
            channel,
            task_id: task_id.clone(),
            state: info.map_or(TaskState::Queued, |t| t.state),
            attempts: info.map_or(0, |t| t.attempts),
            messages: added,
            images: added_images,
            stored_messages: checkpoint.messages,
            total_messages: checkpoint.total,
            last_id: checkpoint.last_id,
            error: info
                .filter(|t| t.state != TaskState::Succeeded)
                .and_then(|t| t.error.clone()),
        });
    }
    let progress = if batch.total_children == 0 {
        100.0
    } else {
        (batch.children_done as f64 * 1000.0 / batch.total_children as f64).round() / 10.0
    };
    Ok(Some(JobStatus {
        job_id: batch.id,
        state: batch.state,
        progress,
        channels_total: batch.total_children,
        channels_done: batch.children_done,
        channels_succeeded: batch.children_succeeded,
        channels_failed: batch.children_failed,
        channels_cancelled: batch.children_cancelled,
        messages: batch.processed_items,
        images,
        channels,
        result: batch.result,
        created_at_ms: batch.created_at_ms,
        finished_at_ms: batch.finished_at_ms,
    }))
}

/// Cancels a job: waiting channels are dropped, running ones stop after their current page
/// (their checkpoint keeps what they wrote).
pub async fn cancel_job(lanes: &Lanes, id: &BatchId) -> lanes_queue::Result<BatchCancel> {
    lanes.cancel_batch(id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_normalize() {
        for (raw, want) in [
            ("@Rust_Daily", "rust_daily"),
            ("rust_daily", "rust_daily"),
            ("https://t.me/rust_daily", "rust_daily"),
            (" t.me/Rust_Daily/ ", "rust_daily"),
        ] {
            assert_eq!(normalize_channel(raw).ok().as_deref(), Some(want), "{raw}");
        }
        for bad in [
            "",
            "@ab",
            "1abc",
            "with space",
            "a/b/c",
            "ünïcode",
            &"x".repeat(33),
        ] {
            assert!(
                matches!(
                    normalize_channel(bad),
                    Err(DispatchError::BadChannel { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lists_are_checked_and_repeats_dropped() {
        let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            validate_channels(v(&["@aaaa", "bbbb", "AAAA"])).ok(),
            Some(v(&["aaaa", "bbbb"]))
        );
        assert!(matches!(
            validate_channels(vec![]),
            Err(DispatchError::Empty)
        ));
        let many = vec!["abcd".to_owned(); MAX_CHANNELS + 1];
        assert!(matches!(
            validate_channels(many),
            Err(DispatchError::TooMany { .. })
        ));
    }
}
