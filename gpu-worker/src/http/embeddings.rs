//! `POST /embed` and `POST /v1/embeddings`: validate, tokenize, check lengths, embed through
//! the batcher, answer in the caller's shape.

use super::error::ApiError;
use super::request::{self, EmbedRequest, Shape};
use crate::service::{EmbedFailure, EmbedService};
use http::StatusCode;
use serde_json::{Value, json};
use tessera_embedder::{MAX_TOKENS, MODEL_ID};

pub async fn handle(
    service: &EmbedService,
    shape: Shape,
    body: &[u8],
    max_inputs: usize,
) -> Result<Value, ApiError> {
    let EmbedRequest {
        inputs,
        truncate,
        base64,
    } = request::parse(shape, body, max_inputs)?;
    let tokenized = service.tokenize(inputs).await.map_err(failure)?;
    let truncated: Vec<usize> = tokenized
        .iter()
        .enumerate()
        .filter(|(_, t)| t.truncated)
        .map(|(i, _)| i)
        .collect();
    if !truncate && let Some(&i) = truncated.first() {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "input_too_long",
            format!(
                "input {i} is {} word pieces; the model reads at most {MAX_TOKENS} (send \
                 \"truncate\": true to cut it)",
                tokenized[i].word_pieces
            ),
        )
        .with_field(format!("input[{i}]")));
    }
    let tokens: usize = tokenized.iter().map(|t| t.ids.len()).sum();
    let vectors = service.embed_tokenized(&tokenized).await.map_err(failure)?;
    Ok(match shape {
        Shape::Spin => json!({
            "embeddings": vectors,
            "usage": { "promptTokenCount": tokens },
            // Beyond Spin's shape (its client ignores them): what was cut, and the model.
            "model": MODEL_ID,
            "truncated": truncated,
        }),
        Shape::OpenAi => json!({
            "object": "list",
            "data": vectors
                .iter()
                .enumerate()
                .map(|(index, v)| {
                    let embedding = if base64 { json!(encode_base64(v)) } else { json!(v) };
                    json!({ "object": "embedding", "index": index, "embedding": embedding })
                })
                .collect::<Vec<_>>(),
            "model": MODEL_ID,
            "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
            "truncated": truncated,
        }),
    })
}

fn failure(e: EmbedFailure) -> ApiError {
    match e {
        EmbedFailure::QueueFull(full, retry_after) => ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                format!(
                    "the worker is busy: {} of {} queued inputs; retry after {retry_after} s",
                    full.depth, full.capacity
                ),
            )
        },
        EmbedFailure::ShuttingDown => ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                e.to_string(),
            )
        },
        EmbedFailure::Model(_) | EmbedFailure::Tokenize(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "embedding_failed",
            e.to_string(),
        ),
    }
}

/// Little-endian f32s in standard base64, as OpenAI's `encoding_format: base64`.
pub fn encode_base64(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() {
                ALPHABET[((n >> shift) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_known_floats() {
        // 1.0f32 = 00 00 80 3f; -2.0f32 = 00 00 00 c0.
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
        assert_eq!(encode_base64(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(encode_base64(&[]), "");
    }
}
