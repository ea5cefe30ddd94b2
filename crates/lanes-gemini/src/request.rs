//! `GenerateRequest`: the parts of one user turn (text, inline images), an optional system
//! instruction, and the generation settings (JSON answers with a response schema).

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// One part of the user's turn.
#[derive(Clone, PartialEq)]
pub enum Part {
    Text(String),
    /// An image (or other blob) sent inline: its MIME type and its bytes, base64-encoded once.
    InlineData {
        mime_type: String,
        data: String,
    },
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Self::InlineData { mime_type, data } => f
                .debug_struct("InlineData")
                .field("mime_type", mime_type)
                .field("base64_len", &data.len())
                .finish(),
        }
    }
}

/// One `generateContent` request. Build it once; it can be sent again on a retry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateRequest {
    pub system: Option<String>,
    pub parts: Vec<Part>,
    /// With a schema, `responseMimeType` is `application/json` and the answer follows it.
    pub response_schema: Option<Value>,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    /// `thinkingConfig.thinkingBudget` for the 2.5 models (0 turns thinking off on Flash).
    pub thinking_budget: Option<i32>,
}

impl GenerateRequest {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn system(mut self, text: impl Into<String>) -> Self {
        self.system = Some(text.into());
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// An inline image (`image/jpeg`, `image/png`, `image/webp`, ...).
    pub fn image(mut self, mime_type: impl Into<String>, bytes: &[u8]) -> Self {
        self.parts.push(Part::InlineData {
            mime_type: mime_type.into(),
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        });
        self
    }

    /// Ask for JSON following `schema` (Gemini's OpenAPI subset: `type`, `properties`,
    /// `required`, `enum`, `nullable`, ...).
    pub fn json_schema(mut self, schema: Value) -> Self {
        self.response_schema = Some(schema);
        self
    }

    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = Some(t);
        self
    }

    pub fn max_output_tokens(mut self, n: u32) -> Self {
        self.max_output_tokens = Some(n);
        self
    }

    pub fn thinking_budget(mut self, budget: Option<i32>) -> Self {
        self.thinking_budget = budget;
        self
    }

    /// The JSON body, as the REST API documents it.
    pub fn body(&self) -> Value {
        let parts: Vec<Value> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => json!({ "text": t }),
                Part::InlineData { mime_type, data } => {
                    json!({ "inline_data": { "mime_type": mime_type, "data": data } })
                }
            })
            .collect();
        let mut body = Map::new();
        body.insert(
            "contents".into(),
            json!([{ "role": "user", "parts": parts }]),
        );
        if let Some(s) = &self.system {
            body.insert(
                "systemInstruction".into(),
                json!({ "parts": [{ "text": s }] }),
            );
        }
        let mut gen_cfg = Map::new();
        if let Some(schema) = &self.response_schema {
            gen_cfg.insert("responseMimeType".into(), json!("application/json"));
            gen_cfg.insert("responseSchema".into(), schema.clone());
        }
        if let Some(t) = self.temperature {
            gen_cfg.insert("temperature".into(), json!(t));
        }
        if let Some(n) = self.max_output_tokens {
            gen_cfg.insert("maxOutputTokens".into(), json!(n));
        }
        if let Some(b) = self.thinking_budget {
            gen_cfg.insert("thinkingConfig".into(), json!({ "thinkingBudget": b }));
        }
        if !gen_cfg.is_empty() {
            body.insert("generationConfig".into(), Value::Object(gen_cfg));
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_documented_shape() {
        let req = GenerateRequest::new()
            .system("be brief")
            .image("image/jpeg", b"\xff\xd8\xff")
            .text("what is it?")
            .json_schema(json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}))
            .temperature(0.2)
            .thinking_budget(Some(0));
        let b = req.body();
        assert_eq!(b["contents"][0]["role"], "user");
        assert_eq!(
            b["contents"][0]["parts"][0]["inline_data"]["mime_type"],
            "image/jpeg"
        );
        assert_eq!(b["contents"][0]["parts"][0]["inline_data"]["data"], "/9j/");
        assert_eq!(b["contents"][0]["parts"][1]["text"], "what is it?");
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(
            b["generationConfig"]["responseMimeType"],
            "application/json"
        );
        assert_eq!(b["generationConfig"]["responseSchema"]["type"], "OBJECT");
        assert_eq!(b["generationConfig"]["thinkingConfig"]["thinkingBudget"], 0);
        assert!(
            !format!("{req:?}").contains("/9j/"),
            "debug hides the image"
        );
    }
}
