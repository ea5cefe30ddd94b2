//! Collecting one channel: pages of 100 messages oldest first, each page's photos downloaded
//! concurrently (`download_concurrency` at a time), the page appended to
//! `<data-dir>/<channel>/messages.jsonl` (one message per line, exactly as the API served it)
//! and synced, photos saved as `<data-dir>/<channel>/media/<message id>.<ext>` (written to a
//! temporary name, then renamed), and then the checkpoint moved past the page.
//!
//! Resuming: the checkpoint holds the last message id and the file's length right after it.
//! A collection that starts again first cuts the file back to that length (dropping a page
//! written after the last checkpoint, by a collector that died before it could record it),
//! then asks for the messages after that id. Photos are rewritten whole, so one saved twice is
//! the same file. A file shorter than its checkpoint (the data directory lost data) restarts the
//! channel from its first message. The result: a channel collected across any number of crashes
//! and restarts holds exactly what one uninterrupted run would: no duplicates, no gaps.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::api::{Api, ApiError, Meter};
use crate::checkpoint::{Base, Checkpoint, Checkpoints};

/// Messages asked for per history page (the API's maximum).
pub const PAGE: u64 = 100;

/// What to do after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop early (the job was cancelled); what was written stays checkpointed.
    Stop,
}

/// Told after every checkpoint: the channel's checkpoint and what this task added since its
/// first attempt.
pub trait Progress: Sync {
    fn report(
        &self,
        channel: &str,
        checkpoint: &Checkpoint,
        base: Base,
    ) -> impl Future<Output = Result<Flow, CollectError>> + Send;
}

/// No progress sink (the benchmark's baseline).
impl Progress for () {
    async fn report(&self, _: &str, _: &Checkpoint, _: Base) -> Result<Flow, CollectError> {
        Ok(Flow::Continue)
    }
}

/// Why a collection stopped short.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("checkpoint store: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another collection took channel @{channel} over (fencing token {fence} is stale)")]
    Superseded { channel: String, fence: u64 },
    #[error("bad history page of @{channel}: {message}")]
    Page { channel: String, message: String },
    #[error("progress: {0}")]
    Engine(#[from] lanes_queue::Error),
    #[error("stopped")]
    Stopped,
}

impl CollectError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { what, path, source }
    }
}

/// What one collection of a channel did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub channel: String,
    pub title: String,
    /// Messages this task added (over all its attempts).
    pub new_messages: u64,
    /// Photos this task saved.
    pub new_images: u64,
    /// Messages stored for the channel in all.
    pub messages: u64,
    pub images: u64,
    /// The channel's message count, as the API said at the start.
    pub total_messages: u64,
    /// The last message stored: the next collection starts after it.
    pub last_id: u64,
    /// Where this attempt started (0: from the first message).
    pub resumed_after: u64,
    /// 429s met and sat out by this attempt.
    pub flood_waits: u64,
    /// API calls made by this attempt.
    pub calls: u64,
}

/// Collects channels into a data directory; cheap to clone.
#[derive(Debug, Clone)]
pub struct Collector {
    pub api: Api,
    pub checkpoints: Checkpoints,
    pub data_dir: PathBuf,
    /// Photos of one channel downloaded at once.
    pub download_concurrency: usize,
}

/// A photo to download: the message id, the API's path, the local file and the expected size.
struct Photo {
    id: u64,
    path: String,
    file: PathBuf,
    size: Option<u64>,
}

impl Collector {
    /// The directory of one channel's output.
    pub fn channel_dir(&self, channel: &str) -> PathBuf {
        self.data_dir.join(channel)
    }

    /// Collects `channel` from its checkpoint on, under fencing token `fence` (the channel
    /// lock's), counting what it adds for `task`. Stops at the first error (the checkpoint keeps
    /// every page written before it), when `cancel` fires, or when `progress` says so.
    #[tracing::instrument(skip_all, fields(channel = %channel))]
    pub async fn collect(
        &self,
        channel: &str,
        fence: u64,
        task: &str,
        progress: &impl Progress,
        cancel: &CancellationToken,
    ) -> Result<Summary, CollectError> {
        let meter = Meter::default();
        let info = self.api.chat(channel, &meter, cancel).await?;
        let superseded = || CollectError::Superseded {
            channel: channel.to_owned(),
            fence,
        };
        let begun = self
            .checkpoints
            .begin(channel, fence, task)
            .await?
            .ok_or_else(superseded)?;
        let (mut cp, mut base) = (begun.checkpoint, begun.base);
        let dir = self.channel_dir(channel);
        let media = dir.join("media");
        tokio::fs::create_dir_all(&media)
            .await
            .map_err(CollectError::io("create", &media))?;
        let path = dir.join("messages.jsonl");
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .await
            .map_err(CollectError::io("open", &path))?;
        let len = file
            .metadata()
            .await
            .map_err(CollectError::io("stat", &path))?
            .len();
        if len < cp.bytes {
            tracing::warn!(
                file_bytes = len,
                checkpoint_bytes = cp.bytes,
                "the output is shorter than its checkpoint (data lost): collecting the channel again from the start"
            );
            cp = Checkpoint::default();
            base = Base::default();
            if !self
                .checkpoints
                .save(channel, fence, task, &cp, Some(base))
                .await?
            {
                return Err(superseded());
            }
        } else if len > cp.bytes {
            tracing::info!(
                dropped_bytes = len - cp.bytes,
                "dropping what was written after the last checkpoint"
            );
        }
        file.set_len(cp.bytes)
            .await
            .map_err(CollectError::io("truncate", &path))?;
        file.seek(SeekFrom::Start(cp.bytes))
            .await
            .map_err(CollectError::io("seek", &path))?;
        clean_media(&media, cp.last_id).await?;
        cp.total = info.message_count;
        let resumed_after = cp.last_id;
        if resumed_after > 0 {
            tracing::info!(
                after = resumed_after,
                messages = cp.messages,
                total = cp.total,
                "resuming"
            );
        } else {
            tracing::info!(total = cp.total, title = %info.title, "collecting");
        }
        if progress.report(channel, &cp, base).await? == Flow::Stop {
            return Err(CollectError::Stopped);
        }
        loop {
            if cancel.is_cancelled() {
                return Err(CollectError::Stopped);
            }
            let page = self
                .api
                .history(channel, cp.last_id, PAGE, &meter, cancel)
                .await?;
            if page.is_empty() {
                break;
            }
            let (ids, photos) = self.read_page(channel, &media, cp.last_id, &page)?;
            let saved = self.download(channel, photos, &meter, cancel).await?;
            let mut lines = Vec::with_capacity(page.len() * 256);
            for m in &page {
                serde_json::to_writer(&mut lines, m).map_err(|e| CollectError::Page {
                    channel: channel.to_owned(),
                    message: e.to_string(),
                })?;
                lines.push(b'\n');
            }
            file.write_all(&lines)
                .await
                .map_err(CollectError::io("write", &path))?;
            file.sync_data()
                .await
                .map_err(CollectError::io("sync", &path))?;
            if saved > 0 {
                sync_dir(&media).await?;
            }
            cp.last_id = ids.last().copied().unwrap_or(cp.last_id);
            cp.bytes += lines.len() as u64;
            cp.messages += ids.len() as u64;
            cp.images += saved;
            if !self
                .checkpoints
                .save(channel, fence, task, &cp, None)
                .await?
            {
                return Err(superseded());
            }
            tracing::info!(
                last_id = cp.last_id,
                messages = cp.messages,
                total = cp.total,
                images = cp.images,
                "page saved"
            );
            if progress.report(channel, &cp, base).await? == Flow::Stop {
                return Err(CollectError::Stopped);
            }
        }
        tracing::info!(
            messages = cp.messages,
            images = cp.images,
            added = cp.messages.saturating_sub(base.messages),
            "channel collected"
        );
        Ok(Summary {
            channel: channel.to_owned(),
            title: info.title,
            new_messages: cp.messages.saturating_sub(base.messages),
            new_images: cp.images.saturating_sub(base.images),
            messages: cp.messages,
            images: cp.images,
            total_messages: cp.total,
            last_id: cp.last_id,
            resumed_after,
            flood_waits: meter.flood_waits.load(Ordering::Relaxed),
            calls: meter.calls.load(Ordering::Relaxed),
        })
    }

    /// Checks a page (ids rising, all after `after`) and lists its photos.
    fn read_page(
        &self,
        channel: &str,
        media: &Path,
        after: u64,
        page: &[Value],
    ) -> Result<(Vec<u64>, Vec<Photo>), CollectError> {
        let bad = |message: String| CollectError::Page {
            channel: channel.to_owned(),
            message,
        };
        let mut ids = Vec::with_capacity(page.len());
        let mut photos = Vec::new();
        let mut prev = after;
        for m in page {
            let id = m["message_id"]
                .as_u64()
                .ok_or_else(|| bad(format!("a message without a message_id: {m}")))?;
            if id <= prev {
                return Err(bad(format!(
                    "message {id} after message {prev}: ids must rise"
                )));
            }
            prev = id;
            ids.push(id);
            // The largest size is the last one, as the Bot API lists them.
            if let Some(p) = m["photo"].as_array().and_then(|sizes| sizes.last()) {
                let path = p["file_path"]
                    .as_str()
                    .ok_or_else(|| bad(format!("message {id}: a photo without a file_path")))?;
                photos.push(Photo {
                    id,
                    path: path.to_owned(),
                    file: media.join(format!("{id}.{}", extension(path))),
                    size: p["file_size"].as_u64(),
                });
            }
        }
        Ok((ids, photos))
    }

    /// Downloads and saves a page's photos, `download_concurrency` at a time.
    async fn download(
        &self,
        channel: &str,
        photos: Vec<Photo>,
        meter: &Meter,
        cancel: &CancellationToken,
    ) -> Result<u64, CollectError> {
        let n = photos.len() as u64;
        futures::stream::iter(photos)
            .map(|p| self.save_photo(channel, p, meter, cancel))
            .buffer_unordered(self.download_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(n)
    }

    async fn save_photo(
        &self,
        channel: &str,
        p: Photo,
        meter: &Meter,
        cancel: &CancellationToken,
    ) -> Result<(), CollectError> {
        let bytes = self.api.file(channel, &p.path, meter, cancel).await?;
        if let Some(size) = p.size.filter(|s| *s != bytes.len() as u64) {
            return Err(CollectError::Page {
                channel: channel.to_owned(),
                message: format!(
                    "photo of message {}: {} bytes arrived, {size} announced",
                    p.id,
                    bytes.len()
                ),
            });
        }
        let tmp = p
            .file
            .with_extension(format!("part-{:08x}", fastrand::u32(..)));
        let write = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&bytes).await?;
            f.sync_data().await?;
            tokio::fs::rename(&tmp, &p.file).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(CollectError::io("save photo", &p.file)(e));
        }
        Ok(())
    }
}

/// A safe file extension from an API path (`png` from `photos/x/17.png`), `bin` otherwise.
fn extension(path: &str) -> String {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    if (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        ext.to_ascii_lowercase()
    } else {
        "bin".to_owned()
    }
}

/// Removes what a collector that died left in `media`: half-written photos, and photos of
/// messages after the checkpoint (their page is collected again, and a message deleted
/// meanwhile must not leave its photo behind). The caller holds the channel's lock.
async fn clean_media(media: &Path, last_id: u64) -> Result<(), CollectError> {
    let mut entries = tokio::fs::read_dir(media)
        .await
        .map_err(CollectError::io("list", media))?;
    let mut removed = 0;
    while let Some(e) = entries
        .next_entry()
        .await
        .map_err(CollectError::io("list", media))?
    {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let id = name.split('.').next().and_then(|s| s.parse::<u64>().ok());
        let stale = name.contains(".part-") || id.is_none_or(|id| id > last_id);
        if stale {
            let path = e.path();
            tokio::fs::remove_file(&path)
                .await
                .map_err(CollectError::io("remove", &path))?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed photos written after the last checkpoint");
    }
    Ok(())
}

/// Makes renames in `dir` durable.
async fn sync_dir(dir: &Path) -> Result<(), CollectError> {
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| CollectError::io("sync", dir)(std::io::Error::other(e)))?
        .map_err(CollectError::io("sync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_safe() {
        assert_eq!(extension("photos/x/17.png"), "png");
        assert_eq!(extension("photos/x/17.JPG"), "jpg");
        assert_eq!(extension("photos/x/17"), "bin");
        assert_eq!(extension("photos/x/17.../../etc"), "bin");
    }
}
