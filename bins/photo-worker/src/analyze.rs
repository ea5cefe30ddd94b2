//! The `photos.analyze` handler: prepare the photo, ask the vision model what the item is,
//! ask the (cheaper) text model what it sells for, and record item, price, tokens and cost.
//!
//! Every Gemini call first takes a grant from the fleet-wide limiter `gemini` (one GCRA in
//! Redis shared by every photo worker), so the fleet stays under the API's requests per minute.
//! What each failure becomes (see `lanes_gemini::Disposition`):
//! - 429: the limiter is paused for every worker for Gemini's `RetryInfo.retryDelay` (capped);
//!   the call waits for the limiter and is made again, up to `rate_limit_waits` times in one
//!   attempt, then the task is retried after that delay (a quota is not the photo's fault, so
//!   it should not use up the photo's retries while the fleet is being throttled);
//! - 5xx, timeouts, connection errors, answers that do not parse: a retry with the kind's
//!   exponential backoff and full jitter;
//! - a bad key, a refused request, a blocked answer, a photo that is not an image:
//!   a permanent failure with the message — no retries.
//!
//! The detected item is saved as the task's progress (fenced by the lease), so a retry or a
//! redelivery after a crash that happened during pricing does not pay for detection again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanes_gemini::{Disposition, Gemini, GenerateRequest, Generated, PriceTable, Usage};
use lanes_photos::{DetectedItem, PhotoPayload, PhotoResult, PriceEstimate, TokenCounts};
use lanes_queue::{TaskContext, TaskError, TaskResult};
use lanes_ratelimit::Limiter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::prepare::{PrepareConfig, Prepared, prepare};

const VISION_SYSTEM: &str = "You are an expert reseller. You identify the main item in a photo \
    a seller took, for a second-hand marketplace listing.";
const VISION_PROMPT: &str = "Identify the main item in this photo. Give a short listing title \
    (item_name), its category, its brand if it is visible or obvious (else null), its condition \
    as it looks (new, like new, good, fair or poor), your confidence from 0 to 1, and a \
    one-sentence description.";
const PRICING_SYSTEM: &str = "You are a pricing analyst for a second-hand marketplace.";

/// The response schema of item detection.
pub fn vision_schema() -> Value {
    json!({
        "type": "OBJECT",
        "properties": {
            "item_name": {"type": "STRING", "description": "short listing title"},
            "category": {"type": "STRING"},
            "brand": {"type": "STRING", "nullable": true},
            "condition": {"type": "STRING", "enum": ["new", "like new", "good", "fair", "poor"]},
            "confidence": {"type": "NUMBER"},
            "description": {"type": "STRING"}
        },
        "required": ["item_name", "category", "condition", "confidence"],
        "propertyOrdering": ["item_name", "category", "brand", "condition", "confidence", "description"]
    })
}

/// The response schema of pricing.
pub fn pricing_schema() -> Value {
    json!({
        "type": "OBJECT",
        "properties": {
            "price_usd": {"type": "NUMBER", "description": "most likely sale price"},
            "low_usd": {"type": "NUMBER"},
            "high_usd": {"type": "NUMBER"},
            "currency": {"type": "STRING"},
            "rationale": {"type": "STRING"}
        },
        "required": ["price_usd", "low_usd", "high_usd", "currency"],
        "propertyOrdering": ["price_usd", "low_usd", "high_usd", "currency", "rationale"]
    })
}

/// What the handler needs, shared by every task of the process.
#[derive(Debug)]
pub struct Analyzer {
    pub gemini: Gemini,
    /// The fleet-wide `gemini` limiter.
    pub limiter: Limiter,
    pub vision_model: String,
    pub pricing_model: String,
    pub prices: PriceTable,
    pub prepare: PrepareConfig,
    /// 429s absorbed within one attempt (waiting on the paused limiter) before the task is
    /// handed back to the queue for a later retry.
    pub rate_limit_waits: u32,
    /// 429 without a `RetryInfo`: pause this long.
    pub default_retry_delay: Duration,
    /// `thinkingConfig.thinkingBudget` for both calls (`None`: the model's default).
    pub thinking_budget: Option<i32>,
}

#[derive(Debug, Deserialize)]
struct VisionAnswer {
    item_name: String,
    category: String,
    #[serde(default)]
    brand: Option<String>,
    condition: String,
    confidence: f64,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PricingAnswer {
    price_usd: f64,
    low_usd: f64,
    high_usd: f64,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    rationale: Option<String>,
}

/// What an attempt saves after detection (the task's progress).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    stage: String,
    item: DetectedItem,
    vision_usage: Usage,
}

/// The handler of [`lanes_photos::KIND`].
pub async fn analyze(ctx: TaskContext, a: Arc<Analyzer>) -> TaskResult {
    let started = Instant::now();
    let payload: PhotoPayload = ctx.payload_as()?;
    let bytes = lanes_photos::decode_photo(&payload.photo)
        .map_err(|e| TaskError::permanent(format!("photo {}: {e}", payload.index)))?;
    drop(payload.photo);
    let cfg = a.prepare;
    let prepared: Prepared = tokio::task::spawn_blocking(move || prepare(&bytes, &cfg))
        .await
        .map_err(|e| TaskError::retry(format!("image preparation did not finish: {e}")))?
        .map_err(|e| TaskError::permanent(format!("photo {}: {e}", payload.index)))?;

    let resumed = if ctx.attempt > 1 {
        checkpoint(&ctx).await
    } else {
        None
    };
    let (item, vision_usage) = match resumed {
        Some(c) => {
            tracing::info!(task_id = %ctx.id, item = %c.item.name, "resuming after detection");
            (c.item, c.vision_usage)
        }
        None => {
            let (item, usage) = detect(&ctx, &a, &prepared).await?;
            let saved = Checkpoint {
                stage: "detected".into(),
                item: item.clone(),
                vision_usage: usage,
            };
            if let Err(e) = ctx.progress(json!(saved)).await {
                tracing::warn!(task_id = %ctx.id, error = %e, "could not save the detected item");
            }
            (item, usage)
        }
    };
    let (price, pricing_usage) = estimate(&ctx, &a, &item).await?;

    let cost = match (
        a.prices.cost(&a.vision_model, &vision_usage),
        a.prices.cost(&a.pricing_model, &pricing_usage),
    ) {
        (Some(v), Some(p)) => Some(((v + p) * 1e8).round() / 1e8),
        _ => None,
    };
    let both = vision_usage + pricing_usage;
    let result = PhotoResult {
        item,
        price,
        tokens: TokenCounts {
            input: both.prompt_tokens,
            output: both.billed_output(),
            total: both.total_tokens,
        },
        cost_usd: cost,
        vision_model: a.vision_model.clone(),
        pricing_model: a.pricing_model.clone(),
        image: prepared.info,
    };
    tracing::info!(
        task_id = %ctx.id,
        item = %result.item.name,
        price_usd = result.price.price_usd,
        tokens = result.tokens.total,
        cost_usd = result.cost_usd.unwrap_or(0.0),
        ms = started.elapsed().as_millis() as u64,
        "photo analyzed"
    );
    serde_json::to_value(&result).map_err(|e| TaskError::permanent(format!("result: {e}")))
}

async fn checkpoint(ctx: &TaskContext) -> Option<Checkpoint> {
    let info = ctx.lanes().task(&ctx.id).await.ok()??;
    serde_json::from_value(info.progress?).ok()
}

async fn detect(
    ctx: &TaskContext,
    a: &Analyzer,
    prepared: &Prepared,
) -> Result<(DetectedItem, Usage), TaskError> {
    let req = GenerateRequest::new()
        .system(VISION_SYSTEM)
        .image("image/jpeg", &prepared.jpeg)
        .text(VISION_PROMPT)
        .json_schema(vision_schema())
        .temperature(0.2)
        .thinking_budget(a.thinking_budget);
    let answer = call(ctx, a, &a.vision_model, &req).await?;
    let v: VisionAnswer = answer.json().map_err(gemini_error)?;
    let name = v.item_name.trim();
    if name.is_empty() {
        return Err(TaskError::retry("the vision model named no item"));
    }
    Ok((
        DetectedItem {
            name: name.to_owned(),
            category: v.category.trim().to_owned(),
            brand: v
                .brand
                .map(|b| b.trim().to_owned())
                .filter(|b| !b.is_empty()),
            condition: v.condition,
            confidence: if v.confidence.is_finite() {
                v.confidence.clamp(0.0, 1.0)
            } else {
                0.0
            },
            description: v.description.filter(|d| !d.trim().is_empty()),
        },
        answer.usage,
    ))
}

async fn estimate(
    ctx: &TaskContext,
    a: &Analyzer,
    item: &DetectedItem,
) -> Result<(PriceEstimate, Usage), TaskError> {
    let prompt = format!(
        "Estimate the fair resale price in US dollars of this item on second-hand marketplaces \
         today.\nItem: {}\nCategory: {}\nBrand: {}\nCondition: {}\nDescription: {}\nGive the \
         most likely sale price (price_usd), a low and a high bound, the currency (USD), and a \
         one-sentence rationale.",
        item.name,
        item.category,
        item.brand.as_deref().unwrap_or("unknown"),
        item.condition,
        item.description.as_deref().unwrap_or("none"),
    );
    let req = GenerateRequest::new()
        .system(PRICING_SYSTEM)
        .text(prompt)
        .json_schema(pricing_schema())
        .temperature(0.2)
        .thinking_budget(a.thinking_budget);
    let answer = call(ctx, a, &a.pricing_model, &req).await?;
    let p: PricingAnswer = answer.json().map_err(gemini_error)?;
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    if !(ok(p.price_usd) && ok(p.low_usd) && ok(p.high_usd)) {
        return Err(TaskError::retry(format!(
            "the pricing model answered no usable price ({} / {} / {})",
            p.price_usd, p.low_usd, p.high_usd
        )));
    }
    let mut bounds = [p.low_usd, p.price_usd, p.high_usd];
    bounds.sort_by(f64::total_cmp);
    Ok((
        PriceEstimate {
            price_usd: p.price_usd,
            low_usd: bounds[0],
            high_usd: bounds[2],
            currency: p.currency.unwrap_or_else(|| "USD".into()),
            rationale: p.rationale.filter(|r| !r.trim().is_empty()),
        },
        answer.usage,
    ))
}

fn gemini_error(e: lanes_gemini::Error) -> TaskError {
    match e.disposition() {
        Disposition::Permanent => TaskError::permanent(e.to_string()),
        Disposition::Transient => TaskError::retry(e.to_string()),
        Disposition::RateLimited { retry_after } => TaskError::Retry {
            message: e.to_string(),
            after: retry_after,
        },
    }
}

/// One Gemini call under the fleet-wide limiter, absorbing 429s by pausing the limiter.
async fn call(
    ctx: &TaskContext,
    a: &Analyzer,
    model: &str,
    req: &GenerateRequest,
) -> Result<Generated, TaskError> {
    let cancel = ctx.cancellation();
    let mut throttled = 0;
    loop {
        match a.limiter.acquire(1, cancel).await {
            Ok(_) => {}
            Err(lanes_ratelimit::Error::Cancelled) => {
                return Err(TaskError::retry(
                    "stopped while waiting for the gemini limiter",
                ));
            }
            Err(e) => return Err(TaskError::retry(format!("gemini limiter: {e}"))),
        }
        let answer = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Err(TaskError::retry(format!("stopped while {model} was answering")));
            }
            r = a.gemini.generate(model, req) => r,
        };
        let e = match answer {
            Ok(g) => return Ok(g),
            Err(e) => e,
        };
        let Disposition::RateLimited { retry_after } = e.disposition() else {
            tracing::warn!(task_id = %ctx.id, model, error = %e, "gemini call failed");
            return Err(gemini_error(e));
        };
        let delay = retry_after.unwrap_or(a.default_retry_delay);
        throttled += 1;
        match a.limiter.pause_for(delay).await {
            Ok(_) => {}
            Err(pe) => tracing::warn!(error = %pe, "could not pause the gemini limiter"),
        }
        tracing::warn!(
            task_id = %ctx.id,
            model,
            retry_after_ms = delay.as_millis() as u64,
            throttled,
            "gemini answered 429: every worker waits"
        );
        if throttled > a.rate_limit_waits {
            return Err(TaskError::Retry {
                message: e.to_string(),
                after: Some(delay),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_require_what_the_answers_need() {
        for (schema, answer) in [
            (
                vision_schema(),
                json!({"item_name": "x", "category": "c", "condition": "good", "confidence": 0.5}),
            ),
            (
                pricing_schema(),
                json!({"price_usd": 1.0, "low_usd": 0.5, "high_usd": 2.0, "currency": "USD"}),
            ),
        ] {
            assert_eq!(schema["type"], "OBJECT");
            for r in schema["required"].as_array().expect("required") {
                let r = r.as_str().expect("name");
                assert!(schema["properties"].get(r).is_some(), "{r}");
                assert!(answer.get(r).is_some(), "{r}");
            }
        }
        let _: VisionAnswer = serde_json::from_value(
            json!({"item_name": "x", "category": "c", "condition": "good", "confidence": 0.5}),
        )
        .expect("vision");
        let _: PricingAnswer =
            serde_json::from_value(json!({"price_usd": 1.0, "low_usd": 0.5, "high_usd": 2.0}))
                .expect("pricing");
    }
}
