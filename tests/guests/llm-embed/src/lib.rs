//! `POST {"model": "...", "input": ["..."]}` → `llm::generate_embeddings(model, input)` →
//! `{"embeddings": [[..]], "prompt_token_count": n}`, or the llm error as JSON:
//! `model_not_supported` (404), `invalid_input` (400), `runtime_error` (502).

use serde_json::{Value, json};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;
use spin_sdk::llm::{EmbeddingModel, Error, generate_embeddings};

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let (status, body) = match req.into_body().bytes().await {
        Ok(bytes) => embed(&bytes),
        Err(e) => (400, error("body_unreadable", &format!("{e:?}"))),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
}

fn embed(body: &[u8]) -> (u16, Value) {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return (
            400,
            error("malformed_json", "expected {\"model\", \"input\"}"),
        );
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("all-minilm-l6-v2")
        .to_string();
    let input: Vec<String> = request["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match generate_embeddings(EmbeddingModel::Other(&model), &input) {
        Ok(result) => (
            200,
            json!({
                "embeddings": result.embeddings,
                "prompt_token_count": result.usage.prompt_token_count,
            }),
        ),
        Err(Error::ModelNotSupported) => (404, error("model_not_supported", &model)),
        Err(Error::InvalidInput(message)) => (400, error("invalid_input", &message)),
        Err(Error::RuntimeError(message)) => (502, error("runtime_error", &message)),
    }
}

fn error(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}
