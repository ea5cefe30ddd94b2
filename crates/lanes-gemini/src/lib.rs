//! A small client for Google's Gemini `generateContent`, on reqwest with rustls.
//!
//! `POST {base}/v1beta/models/{model}:generateContent` with the key in the `x-goog-api-key`
//! header (never in the URL, so it cannot leak through an error message or a log line), images
//! as `inline_data` (base64 + MIME type), and JSON answers constrained by
//! `generationConfig.responseSchema`. The answer's `candidates[0].content.parts[*].text` and its
//! `usageMetadata` come back as [`Generated`]; a [`PriceTable`] turns the token counts into a
//! cost estimate.
//!
//! Every failure is an [`Error`] whose [`Error::disposition`] says what a caller should do —
//! the engine never has to parse a message:
//! - `429 RESOURCE_EXHAUSTED` → [`Disposition::RateLimited`] with the body's
//!   `RetryInfo.retryDelay` (capped by [`GeminiConfig::max_retry_delay`]);
//! - 5xx (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, `INTERNAL`), timeouts, connection failures and
//!   answers that do not parse → [`Disposition::Transient`] (retry with backoff and jitter);
//! - `400 API_KEY_INVALID`, `403 PERMISSION_DENIED`, `400 INVALID_ARGUMENT`, `404` (unknown
//!   model), a blocked prompt or answer → [`Disposition::Permanent`], with Gemini's message.
//!
//! ```no_run
//! # async fn demo(photo: Vec<u8>) -> Result<(), lanes_gemini::Error> {
//! use lanes_gemini::{ApiKey, Gemini, GeminiConfig, GenerateRequest};
//!
//! let gemini = Gemini::new(GeminiConfig::new(
//!     "https://generativelanguage.googleapis.com",
//!     ApiKey::new("from the environment"),
//! ))?;
//! let req = GenerateRequest::new()
//!     .image("image/jpeg", &photo)
//!     .text("What is this item?")
//!     .json_schema(serde_json::json!({
//!         "type": "OBJECT",
//!         "properties": {"item_name": {"type": "STRING"}},
//!         "required": ["item_name"],
//!     }));
//! let answer = gemini.generate("gemini-2.5-flash", &req).await?;
//! let item: serde_json::Value = answer.json()?;
//! println!("{item} for {} tokens", answer.usage.total_tokens);
//! # Ok(()) }
//! ```
//!
//! Modules:
//! - `client` — [`Gemini`] and [`GeminiConfig`] (base URL, [`ApiKey`], timeouts, retry cap).
//! - `request` — [`GenerateRequest`] and its [`Part`]s.
//! - `response` — [`Generated`] and [`Usage`].
//! - `error` — [`Error`], [`Disposition`], and the parsing of Gemini's error bodies.
//! - `price` — [`PriceTable`] and [`ModelPrice`] (USD per million tokens).

mod client;
mod error;
#[cfg(test)]
mod fuzz;
mod price;
mod request;
mod response;

pub use client::{ApiKey, Gemini, GeminiConfig};
pub use error::{Disposition, Error, parse_retry_delay};
pub use price::{ModelPrice, PriceTable};
pub use request::{GenerateRequest, Part};
pub use response::{Generated, Usage};

/// The public endpoint, for configuration defaults and documentation.
pub const GOOGLE_BASE_URL: &str = "https://generativelanguage.googleapis.com";
