//! `Generated`: the text of the first candidate and the call's token usage.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, clip};

/// Token counts of one call (`usageMetadata`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// `promptTokenCount`: the prompt, images included.
    pub prompt_tokens: u64,
    /// `candidatesTokenCount`: the answer.
    pub output_tokens: u64,
    /// `thoughtsTokenCount`: thinking (2.5 models), billed as output.
    pub thoughts_tokens: u64,
    /// `totalTokenCount`.
    pub total_tokens: u64,
}

impl Usage {
    /// Tokens billed at the output price (answer + thinking).
    pub fn billed_output(&self) -> u64 {
        // Saturating: the counts come from the API's answer, which may say anything.
        self.output_tokens.saturating_add(self.thoughts_tokens)
    }
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(o.prompt_tokens),
            output_tokens: self.output_tokens.saturating_add(o.output_tokens),
            thoughts_tokens: self.thoughts_tokens.saturating_add(o.thoughts_tokens),
            total_tokens: self.total_tokens.saturating_add(o.total_tokens),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The first candidate's text parts, joined (thought parts left out).
    pub text: String,
    pub usage: Usage,
    /// `STOP`, `MAX_TOKENS`, ...
    pub finish_reason: Option<String>,
    pub model_version: Option<String>,
    pub response_id: Option<String>,
}

impl Generated {
    /// The text as the JSON the response schema asked for.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.text).map_err(|e| Error::BadOutput {
            message: format!(
                "{e} (finish reason {}; text {:?})",
                self.finish_reason.as_deref().unwrap_or("unknown"),
                clip(&self.text)
            ),
        })
    }
}

/// Reasons a candidate ends without a usable answer.
const BLOCKING: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "LANGUAGE",
];

pub(crate) fn parse_generated(bytes: &[u8]) -> Result<Generated, Error> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::BadResponse(format!("not JSON: {e}")))?;
    if let Some(reason) = v["promptFeedback"]["blockReason"].as_str() {
        return Err(Error::Blocked {
            what: "prompt",
            reason: reason.to_owned(),
        });
    }
    let u = &v["usageMetadata"];
    let n = |f: &str| u[f].as_u64().unwrap_or(0);
    let usage = Usage {
        prompt_tokens: n("promptTokenCount"),
        output_tokens: n("candidatesTokenCount"),
        thoughts_tokens: n("thoughtsTokenCount"),
        total_tokens: n("totalTokenCount"),
    };
    let Some(candidate) = v["candidates"].as_array().and_then(|c| c.first()) else {
        return Err(Error::BadResponse("no candidates in the answer".into()));
    };
    let finish_reason = candidate["finishReason"].as_str().map(str::to_owned);
    if let Some(r) = finish_reason.as_deref()
        && BLOCKING.contains(&r)
    {
        return Err(Error::Blocked {
            what: "answer",
            reason: r.to_owned(),
        });
    }
    let text: String = candidate["content"]["parts"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| !p["thought"].as_bool().unwrap_or(false))
                .filter_map(|p| p["text"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if text.is_empty() {
        return Err(Error::BadResponse(format!(
            "the first candidate has no text (finish reason {})",
            finish_reason.as_deref().unwrap_or("unknown")
        )));
    }
    Ok(Generated {
        text,
        usage,
        finish_reason,
        model_version: v["modelVersion"].as_str().map(str::to_owned),
        response_id: v["responseId"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_and_usage_are_read() {
        let body = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "thinking...", "thought": true},
                {"text": "{\"item_name\":"}, {"text": "\"kettle\"}"}
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 270, "candidatesTokenCount": 12,
                              "thoughtsTokenCount": 5, "totalTokenCount": 287},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"
        });
        let g = parse_generated(body.to_string().as_bytes()).expect("parses");
        assert_eq!(g.text, "{\"item_name\":\"kettle\"}");
        assert_eq!(g.usage.prompt_tokens, 270);
        assert_eq!(g.usage.billed_output(), 17);
        let v: Value = g.json().expect("json");
        assert_eq!(v["item_name"], "kettle");
        assert_eq!(g.model_version.as_deref(), Some("gemini-2.5-flash"));
    }

    #[test]
    fn blocked_and_odd_answers_are_errors() {
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}});
        let e = parse_generated(blocked.to_string().as_bytes()).expect_err("blocked");
        assert!(e.is_permanent(), "{e}");
        let safety = json!({"candidates": [{"finishReason": "SAFETY"}]});
        assert!(
            parse_generated(safety.to_string().as_bytes())
                .expect_err("safety")
                .is_permanent()
        );
        let empty = json!({"candidates": []});
        assert!(
            !parse_generated(empty.to_string().as_bytes())
                .expect_err("empty")
                .is_permanent()
        );
        assert!(!parse_generated(b"<html>").expect_err("html").is_permanent());
        let truncated = Generated {
            text: "{\"item_na".into(),
            usage: Usage::default(),
            finish_reason: Some("MAX_TOKENS".into()),
            model_version: None,
            response_id: None,
        };
        let e = truncated.json::<Value>().expect_err("truncated");
        assert!(!e.is_permanent());
        assert!(e.to_string().contains("MAX_TOKENS"), "{e}");
    }
}
