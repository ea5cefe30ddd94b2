//! One photo: where it is queued, what its task carries, and the base64 checks it passes at the
//! door (no image decoding here).

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde::{Deserialize, Serialize};

/// The queue photo tasks run on.
pub const QUEUE: &str = "photos";
/// The kind of one photo's analysis (item detection, then pricing).
pub const KIND: &str = "photos.analyze";
/// Most photos in one snap.
pub const MAX_PHOTOS: usize = 50;
/// Largest photo accepted, decoded (a task's payload is capped at 8 MiB of JSON; this leaves
/// room for base64's third).
pub const MAX_PHOTO_BYTES: usize = 6 * 1024 * 1024;

/// Standard alphabet, padding optional (browsers and scripts differ).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A photo task's payload: the photo as (standard) base64, and its place in the snap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoPayload {
    pub photo: String,
    pub index: u32,
}

/// Why a photo was refused at the door.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("the photo is empty")]
    Empty,
    #[error("not valid base64: {reason}")]
    NotBase64 { reason: String },
    #[error("the photo is {bytes} bytes; the limit is {max} bytes")]
    TooLarge { bytes: usize, max: usize },
}

/// The base64 text of a photo as sent (a `data:image/...;base64,` prefix and whitespace
/// removed), checked without decoding when it is obviously too large.
pub fn normalize_photo(raw: &str) -> Result<String, PhotoError> {
    let mut s = raw.trim();
    if let Some(rest) = s.strip_prefix("data:")
        && let Some((_, data)) = rest.split_once(',')
    {
        s = data;
    }
    let s = if s.bytes().any(|b| b.is_ascii_whitespace()) {
        s.chars().filter(|c| !c.is_ascii_whitespace()).collect()
    } else {
        s.to_owned()
    };
    if s.is_empty() {
        return Err(PhotoError::Empty);
    }
    let estimated = s.len() / 4 * 3;
    if estimated > MAX_PHOTO_BYTES + 3 {
        return Err(PhotoError::TooLarge {
            bytes: estimated,
            max: MAX_PHOTO_BYTES,
        });
    }
    Ok(s)
}

/// Decodes a photo's base64 (see [`normalize_photo`] for what is accepted) and checks its size.
pub fn decode_photo(raw: &str) -> Result<Vec<u8>, PhotoError> {
    decode_normalized(&normalize_photo(raw)?)
}

/// Checks a photo as [`decode_photo`] does and returns its normalized base64 (what is queued).
pub fn check_photo(raw: &str) -> Result<String, PhotoError> {
    let s = normalize_photo(raw)?;
    decode_normalized(&s)?;
    Ok(s)
}

fn decode_normalized(s: &str) -> Result<Vec<u8>, PhotoError> {
    let bytes = LENIENT
        .decode(s.as_bytes())
        .map_err(|e| PhotoError::NotBase64 {
            reason: e.to_string(),
        })?;
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(PhotoError::TooLarge {
            bytes: bytes.len(),
            max: MAX_PHOTO_BYTES,
        });
    }
    Ok(bytes)
}

/// Standard base64 of `bytes` (what clients send).
pub fn encode_photo(bytes: &[u8]) -> String {
    general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_checked_without_looking_at_the_image() {
        let jpeg = [0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        let b64 = encode_photo(&jpeg);
        assert_eq!(decode_photo(&b64), Ok(jpeg.to_vec()));
        assert_eq!(
            decode_photo(&format!("data:image/jpeg;base64,{b64}")),
            Ok(jpeg.to_vec())
        );
        assert_eq!(decode_photo(b64.trim_end_matches('=')), Ok(jpeg.to_vec()));
        let wrapped = format!("{}\n{}", &b64[..4], &b64[4..]);
        assert_eq!(decode_photo(&wrapped), Ok(jpeg.to_vec()));
        // Text is not refused here: the worker says it is not an image.
        assert!(decode_photo(&encode_photo(b"hello, I am a text file")).is_ok());
        assert_eq!(decode_photo("  "), Err(PhotoError::Empty));
        let bad = decode_photo("not base64!!").expect_err("bad");
        assert!(matches!(bad, PhotoError::NotBase64 { .. }), "{bad:?}");
        assert!(bad.to_string().starts_with("not valid base64: "), "{bad}");
        let huge = "A".repeat((MAX_PHOTO_BYTES / 3 + 10) * 4);
        assert!(matches!(
            decode_photo(&huge),
            Err(PhotoError::TooLarge { .. })
        ));
    }
}
