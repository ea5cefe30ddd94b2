//! Payload encoding: JSON, gzip-compressed above a size threshold.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::Value;

use crate::error::{Error, Result};

/// Marks a gzip-compressed payload in the task's `enc` field.
pub const GZIP: &str = "gz";

/// Serializes a payload; compresses it when it is at least `threshold` bytes.
pub fn encode(payload: &Value, threshold: usize, limit: usize) -> Result<(Vec<u8>, &'static str)> {
    let json = serde_json::to_vec(payload)?;
    if json.len() > limit {
        return Err(Error::PayloadTooLarge {
            size: json.len(),
            limit,
        });
    }
    if json.len() < threshold {
        return Ok((json, ""));
    }
    let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
    // Writing into a Vec cannot fail.
    let compressed = gz.write_all(&json).and_then(|()| gz.finish());
    match compressed {
        Ok(bytes) if bytes.len() < json.len() => Ok((bytes, GZIP)),
        _ => Ok((json, "")),
    }
}

/// Decodes a stored payload. The error text says what was wrong, for the dead-letter record.
pub fn decode(bytes: &[u8], enc: &str, limit: usize) -> std::result::Result<Value, String> {
    let json;
    let raw = match enc {
        "" => bytes,
        GZIP => {
            let mut out = Vec::new();
            GzDecoder::new(bytes)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("payload does not decompress: {e}"))?;
            if out.len() > limit {
                return Err(format!("payload decompresses to more than {limit} bytes"));
            }
            json = out;
            &json
        }
        other => return Err(format!("payload has unknown encoding {other:?}")),
    };
    serde_json::from_slice(raw).map_err(|e| format!("payload is not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn small_payloads_stay_plain_and_large_ones_compress() {
        let small = json!({"a": 1});
        let (bytes, enc) = encode(&small, 1024, 1 << 20).expect("encodes");
        assert_eq!(enc, "");
        assert_eq!(decode(&bytes, enc, 1 << 20).expect("decodes"), small);

        let large = json!({"text": "lanes ".repeat(2000)});
        let (bytes, enc) = encode(&large, 1024, 1 << 20).expect("encodes");
        assert_eq!(enc, GZIP);
        assert!(bytes.len() < 1000, "compressed to {}", bytes.len());
        assert_eq!(decode(&bytes, enc, 1 << 20).expect("decodes"), large);
    }

    #[test]
    fn oversized_and_corrupt_payloads_are_clear_errors() {
        let big = json!("x".repeat(100));
        assert!(matches!(
            encode(&big, 1024, 50),
            Err(Error::PayloadTooLarge { .. })
        ));
        assert!(
            decode(b"\x1f\x8bnot gzip", GZIP, 1024)
                .unwrap_err()
                .contains("decompress")
        );
        assert!(
            decode(b"{not json", "", 1024)
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            decode(b"{}", "zstd", 1024)
                .unwrap_err()
                .contains("unknown encoding")
        );
    }
}
