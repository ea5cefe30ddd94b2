//! The photo analyzer's contract (seed 002), shared by the worker (`photo-worker`), the broker's
//! `/seller/snap` routes, the demo and the load test — without any image or HTTP dependency, so
//! the broker never compiles an image decoder:
//!
//! - [`photo`]: the queue ([`QUEUE`]) and kind ([`KIND`]), the task payload (one photo as
//!   base64), and the checks a photo passes before it is queued: base64 that decodes, not
//!   empty, not larger than [`MAX_PHOTO_BYTES`] (done without decoding the image: whether the
//!   bytes are an image is the worker's call, per photo, so one bad photo never sinks its
//!   batch).
//! - [`snap`]: a snap (a user's upload of one or more photos) is a batch with one child per
//!   photo: [`submit_snap`] queues it in one round trip, [`snap_status`] reads its progress and
//!   every photo's item, price, tokens and cost ([`PhotoResult`], what the worker records).

pub mod photo;
pub mod snap;

pub use photo::{
    KIND, MAX_PHOTO_BYTES, MAX_PHOTOS, PhotoError, PhotoPayload, QUEUE, check_photo, decode_photo,
    encode_photo, normalize_photo,
};
pub use snap::{
    DetectedItem, ImageInfo, PhotoResult, PhotoStatus, PriceEstimate, SnapError, SnapState,
    SnapStatus, TokenCounts, parse_job_id, snap_status, submit_snap, validate_snap,
};
