//! `POST /v1/embeddings`, shaped like OpenAI's: `{"input": "text" | ["a", "b"], "model":
//! "all-MiniLM-L6-v2", "encoding_format": "float" | "base64"}`.

use crate::{Answer, model};
use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use tessera_embedder::MODEL_ID;
use tessera_spin_kit::{ApiError, StatusCode, read_json};

const BODY_LIMIT: usize = 1 << 20;
/// Inputs per call: in-component inference is for queries and small batches; bulk work
/// belongs to the embedding worker.
pub const MAX_INPUTS: usize = 64;
const MAX_INPUT_CHARS: usize = 32_000;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsRequest {
    /// One text or a list of at most 64, each not blank and at most 32000 characters.
    input: Input,
    /// `all-MiniLM-L6-v2` (the default; also `sentence-transformers/all-MiniLM-L6-v2`).
    #[serde(default)]
    model: Option<String>,
    /// `float` (the default) or `base64` (little-endian f32s).
    #[serde(default)]
    #[schemars(extend("enum" = ["float", "base64", null]))]
    encoding_format: Option<String>,
    /// Accepted for compatibility; must be absent or 384.
    #[serde(default)]
    dimensions: Option<u32>,
    /// OpenAI's end-user id; accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    user: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "EmbeddingsInput")]
enum Input {
    One(#[schemars(length(min = 1, max = MAX_INPUT_CHARS))] String),
    Many(
        #[schemars(
            length(min = 1, max = MAX_INPUTS),
            inner(length(min = 1, max = MAX_INPUT_CHARS))
        )]
        Vec<String>,
    ),
}

/// Names the model is known by.
fn known_model(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    name == MODEL_ID.to_ascii_lowercase()
        || name == format!("sentence-transformers/{}", MODEL_ID.to_ascii_lowercase())
}

pub async fn create(req: Request) -> Answer {
    let body: EmbeddingsRequest = read_json(req, BODY_LIMIT).await?;
    let model_name = body.model.unwrap_or_else(|| MODEL_ID.to_string());
    if !known_model(&model_name) {
        return Err(ApiError::new(
            404,
            "model_not_found",
            format!("model {model_name:?} is not served here; use {MODEL_ID:?}"),
        )
        .with_field("model"));
    }
    if let Some(d) = body.dimensions
        && d != tessera_embedder::DIM as u32
    {
        return Err(ApiError::invalid(
            "dimensions",
            format!("{MODEL_ID} has {} dimensions", tessera_embedder::DIM),
        ));
    }
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("{other:?}: expected float or base64"),
            ));
        }
    };
    let inputs = match body.input {
        Input::One(s) => vec![s],
        Input::Many(v) => v,
    };
    if inputs.is_empty() {
        return Err(ApiError::invalid("input", "`input` is an empty list"));
    }
    if inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid(
            "input",
            format!(
                "{} inputs; at most {MAX_INPUTS} per call (use the embedding worker for bulk)",
                inputs.len()
            ),
        ));
    }
    for (i, text) in inputs.iter().enumerate() {
        if text.trim().is_empty() {
            return Err(ApiError::invalid(&format!("input[{i}]"), "is empty"));
        }
        if text.chars().count() > MAX_INPUT_CHARS {
            return Err(ApiError::invalid(
                &format!("input[{i}]"),
                format!("longer than {MAX_INPUT_CHARS} characters"),
            ));
        }
    }
    let embedder = model::embedder()?;
    let mut tokens = 0usize;
    let mut truncated = Vec::new();
    for (i, text) in inputs.iter().enumerate() {
        let n = embedder.count_tokens(text).unwrap_or(0);
        if n > tessera_embedder::MAX_TOKENS {
            truncated.push(i);
        }
        tokens += n.min(tessera_embedder::MAX_TOKENS);
    }
    let vectors = model::embed(&inputs)?;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                json!(encode_base64(v))
            } else {
                json!(v)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!({
            "object": "list",
            "data": data,
            "model": MODEL_ID,
            "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
            // Not in OpenAI's shape: which inputs were cut at the model's 256 word pieces.
            "truncated": truncated,
        }),
    ))
}

/// Little-endian f32s in standard base64, as OpenAI's `encoding_format: base64`.
fn encode_base64(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
