//! A snap: one upload of photos, queued as a batch with one child task per photo. Its id (the
//! batch id, `photos.<uuid>`) is the job id the seller gets back.

use std::collections::HashMap;

use lanes_queue::{BatchId, BatchSpec, BatchState, Lanes, NewTask, TaskId, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::photo::{KIND, MAX_PHOTOS, PhotoError, PhotoPayload, QUEUE, check_photo};

/// What the photo worker detected in a photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedItem {
    /// A short listing title.
    pub name: String,
    pub category: String,
    pub brand: Option<String>,
    /// `new`, `like new`, `good`, `fair` or `poor`.
    pub condition: String,
    /// The model's confidence, 0 to 1.
    pub confidence: f64,
    pub description: Option<String>,
}

/// What the item would sell for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceEstimate {
    pub price_usd: f64,
    pub low_usd: f64,
    pub high_usd: f64,
    pub currency: String,
    pub rationale: Option<String>,
}

/// Tokens billed for a photo (both calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    pub input: u64,
    /// Answer and thinking tokens.
    pub output: u64,
    pub total: u64,
}

impl std::ops::AddAssign for TokenCounts {
    fn add_assign(&mut self, o: Self) {
        self.input += o.input;
        self.output += o.output;
        self.total += o.total;
    }
}

/// The photo as received and as sent to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// `jpeg`, `png` or `webp`.
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// After EXIF orientation and downscaling, re-encoded as JPEG.
    pub sent_width: u32,
    pub sent_height: u32,
    pub sent_bytes: u64,
}

/// A photo task's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoResult {
    pub item: DetectedItem,
    pub price: PriceEstimate,
    pub tokens: TokenCounts,
    /// Estimated from the configured price table; `None` when a model's price is unknown.
    pub cost_usd: Option<f64>,
    pub vision_model: String,
    pub pricing_model: String,
    pub image: ImageInfo,
}

/// One photo of a snap, as [`snap_status`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoStatus {
    pub index: usize,
    pub task_id: TaskId,
    pub state: TaskState,
    pub attempts: u32,
    pub result: Option<PhotoResult>,
    /// Why it failed (or why its last attempt did, while it is retrying).
    pub error: Option<String>,
}

/// Where a snap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapState {
    /// Photos are queued or being analyzed.
    Processing,
    /// Every photo ended and at least one succeeded (see `failed` for the rest).
    Completed,
    /// Every photo ended and none succeeded.
    Failed,
    Cancelled,
}

impl SnapState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A snap's progress and every photo's outcome so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapStatus {
    pub job_id: BatchId,
    pub status: SnapState,
    /// Percent of the photos that have ended (succeeded or failed).
    pub progress: f64,
    pub total: u64,
    pub done: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub photos: Vec<PhotoStatus>,
    /// Summed over the photos that succeeded.
    pub tokens: TokenCounts,
    pub cost_usd: f64,
    pub created_at_ms: u64,
    pub finished_at_ms: Option<u64>,
}

/// Why a snap was refused or could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("no photos: send {{\"photos\": [base64, ...]}} with 1 to {max} photos")]
    NoPhotos { max: usize },
    #[error("{count} photos in one snap; send at most {max}")]
    TooMany { count: usize, max: usize },
    #[error("photos[{index}]: {error}")]
    Photo { index: usize, error: PhotoError },
    /// Not a photo job id (another queue's batch, or not an id at all).
    #[error("{id:?} is not a photo job id (photos.<32 hex>)")]
    BadJobId { id: String },
    #[error(transparent)]
    Engine(#[from] lanes_queue::Error),
}

impl SnapError {
    /// True when the refusal is about size (HTTP 413 rather than 400).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            Self::Photo {
                error: PhotoError::TooLarge { .. },
                ..
            }
        )
    }
}

/// Checks every photo (base64 that decodes, not empty, not too large) and returns them ready
/// to queue. CPU work proportional to the upload: run it off the async threads for big ones.
pub fn validate_snap(photos: Vec<String>) -> Result<Vec<String>, SnapError> {
    if photos.is_empty() {
        return Err(SnapError::NoPhotos { max: MAX_PHOTOS });
    }
    if photos.len() > MAX_PHOTOS {
        return Err(SnapError::TooMany {
            count: photos.len(),
            max: MAX_PHOTOS,
        });
    }
    photos
        .iter()
        .enumerate()
        .map(|(index, raw)| check_photo(raw).map_err(|error| SnapError::Photo { index, error }))
        .collect()
}

/// Queues a snap of photos already checked by [`validate_snap`]: one batch, one child task per
/// photo, in one round trip. Returns the job id.
pub async fn submit_snap(lanes: &Lanes, photos: Vec<String>) -> Result<BatchId, SnapError> {
    let count = photos.len();
    let children = photos
        .into_iter()
        .enumerate()
        .map(|(i, photo)| {
            let payload = PhotoPayload {
                photo,
                index: i as u32,
            };
            NewTask::new(KIND, json!(payload))
        })
        .collect();
    let spec = BatchSpec::new(children).meta(json!({ "photos": count }));
    Ok(lanes.create_batch(QUEUE, spec).await?)
}

/// Parses a job id, refusing ids of other queues.
pub fn parse_job_id(raw: &str) -> Result<BatchId, SnapError> {
    let bad = || SnapError::BadJobId { id: raw.to_owned() };
    let id: BatchId = raw.parse().map_err(|_| bad())?;
    if id.queue() != QUEUE {
        return Err(bad());
    }
    Ok(id)
}

/// A snap's status, or `None` when there is no such job (or it expired).
pub async fn snap_status(lanes: &Lanes, id: &BatchId) -> Result<Option<SnapStatus>, SnapError> {
    if id.queue() != QUEUE {
        return Ok(None);
    }
    let Some(batch) = lanes.batch(id).await? else {
        return Ok(None);
    };
    let infos = lanes.tasks(&batch.children).await?;
    let by_id: HashMap<&TaskId, _> = infos.iter().map(|t| (&t.id, t)).collect();
    let mut tokens = TokenCounts::default();
    let mut cost = 0.0;
    let photos: Vec<PhotoStatus> = batch
        .children
        .iter()
        .enumerate()
        .map(|(index, task_id)| {
            let info = by_id.get(task_id);
            let result: Option<PhotoResult> = info
                .and_then(|t| t.result.clone())
                .and_then(|r| serde_json::from_value(r).ok());
            if let Some(r) = &result {
                tokens += r.tokens;
                cost += r.cost_usd.unwrap_or(0.0);
            }
            PhotoStatus {
                index,
                task_id: task_id.clone(),
                // Expired before its batch: report it as it must have ended.
                state: info.map_or(TaskState::Succeeded, |t| t.state),
                attempts: info.map_or(0, |t| t.attempts),
                error: info.and_then(|t| t.error.clone()),
                result,
            }
        })
        .collect();
    let status = match batch.state {
        BatchState::Cancelled => SnapState::Cancelled,
        BatchState::Running | BatchState::Finalizing if !batch.is_finished() => {
            SnapState::Processing
        }
        _ if batch.children_succeeded == 0 && batch.total_children > 0 => SnapState::Failed,
        _ => SnapState::Completed,
    };
    Ok(Some(SnapStatus {
        job_id: batch.id,
        status,
        progress: batch.progress,
        total: batch.total_children,
        done: batch.children_done,
        succeeded: batch.children_succeeded,
        failed: batch.children_failed + batch.children_cancelled,
        photos,
        tokens,
        cost_usd: (cost * 1e6).round() / 1e6,
        created_at_ms: batch.created_at_ms,
        finished_at_ms: batch.finished_at_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::encode_photo;

    #[test]
    fn snaps_are_checked_photo_by_photo() {
        let ok = encode_photo(b"\xff\xd8\xff\xe0");
        assert_eq!(
            validate_snap(vec![ok.clone()]).expect("valid"),
            vec![ok.clone()]
        );
        assert!(matches!(
            validate_snap(vec![]),
            Err(SnapError::NoPhotos { .. })
        ));
        let many = vec![ok.clone(); MAX_PHOTOS + 1];
        assert!(matches!(
            validate_snap(many),
            Err(SnapError::TooMany { .. })
        ));
        let e = validate_snap(vec![ok, "%%%".into()]).expect_err("bad base64");
        assert!(
            e.to_string().starts_with("photos[1]: not valid base64"),
            "{e}"
        );
        assert!(!e.is_too_large());
    }

    #[test]
    fn job_ids_must_be_photo_jobs() {
        assert!(parse_job_id("photos.0190f3c2a4b07d2e8f1a2b3c4d5e6f70").is_ok());
        assert!(parse_job_id("analysis.0190f3c2a4b07d2e8f1a2b3c4d5e6f70").is_err());
        assert!(parse_job_id("nope").is_err());
    }
}
