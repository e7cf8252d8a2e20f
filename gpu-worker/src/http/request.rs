//! Embedding requests in the two shapes the worker speaks, validated before any work:
//!
//! - Spin's remote-LLM protocol (`POST /embed`): `{"model": "all-minilm-l6-v2", "input":
//!   ["a", "b"]}`, what real Spin's `[llm_compute] type = "remote_http"` and the Tessera
//!   host send;
//! - OpenAI's (`POST /v1/embeddings`): `{"input": "a" | ["a", "b"], "model"?,
//!   "encoding_format"?: "float" | "base64", "dimensions"?: 384, "user"?}`.
//!
//! Both take `"truncate": false` to refuse inputs over the model's 256 word pieces instead of
//! cutting them (the default, reported in the answer's `truncated`).

use super::error::ApiError;
use http::StatusCode;
use serde_json::{Map, Value};
use tessera_embedder::{DIM, MODEL_ID};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Spin,
    OpenAi,
}

impl Shape {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Shape::Spin => &["model", "input", "truncate"],
            Shape::OpenAi => &[
                "model",
                "input",
                "encoding_format",
                "dimensions",
                "user",
                "truncate",
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    pub inputs: Vec<String>,
    /// Cut inputs over the limit (true) or refuse them (false).
    pub truncate: bool,
    /// OpenAI's `encoding_format: base64`.
    pub base64: bool,
}

/// Names the model answers to: sentence-transformers', Spin's (`all-minilm-l6-v2`, as
/// `EmbeddingModel::AllMiniLmL6V2` sends it) and the Hugging Face repository's.
pub fn known_model(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    let id = MODEL_ID.to_ascii_lowercase();
    name == id || name == format!("sentence-transformers/{id}")
}

pub fn parse(shape: Shape, body: &[u8], max_inputs: usize) -> Result<EmbedRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(body) = value else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be a JSON object",
        ));
    };
    if let Some(unknown) = body.keys().find(|k| !shape.fields().contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "unknown_field",
            unknown.clone(),
            format!(
                "unknown field {unknown:?}; expected one of {:?}",
                shape.fields()
            ),
        ));
    }
    let given = |name: &str| body.get(name).filter(|v| !v.is_null());

    match (shape, given("model")) {
        (Shape::Spin, None) => {
            return Err(ApiError::bad_request(
                "missing_field",
                "model",
                format!("`model` is required (\"{MODEL_ID}\")"),
            ));
        }
        (_, Some(Value::String(name))) if !known_model(name) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!("model {name:?} is not served here; use {:?}", MODEL_ID),
            )
            .with_field("model"));
        }
        (_, Some(Value::String(_))) | (Shape::OpenAi, None) => {}
        (_, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_type",
                "model",
                "`model` must be a string",
            ));
        }
    }

    let inputs = parse_inputs(given("input"), max_inputs)?;
    let truncate = match given("truncate") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_type",
                "truncate",
                "`truncate` must be true or false",
            ));
        }
    };
    let base64 = openai_options(&body)?;
    Ok(EmbedRequest {
        inputs,
        truncate,
        base64,
    })
}

fn parse_inputs(value: Option<&Value>, max_inputs: usize) -> Result<Vec<String>, ApiError> {
    let inputs = match value {
        None => {
            return Err(ApiError::bad_request(
                "missing_field",
                "input",
                "`input` is required: a string or a list of strings",
            ));
        }
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ApiError::bad_request(
                    "invalid_type",
                    format!("input[{i}]"),
                    "each input must be a string",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_type",
                "input",
                "`input` must be a string or a list of strings",
            ));
        }
    };
    if inputs.is_empty() {
        return Err(ApiError::bad_request(
            "empty_input",
            "input",
            "`input` is an empty list",
        ));
    }
    if inputs.len() > max_inputs {
        return Err(ApiError::bad_request(
            "too_many_inputs",
            "input",
            format!("{} inputs; at most {max_inputs} per request", inputs.len()),
        ));
    }
    if let Some(i) = inputs.iter().position(|s| s.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "empty_input",
            format!("input[{i}]"),
            "the input is empty or only whitespace",
        ));
    }
    Ok(inputs)
}

/// `encoding_format` and `dimensions` (OpenAI only; absent from Spin's shape by then).
fn openai_options(body: &Map<String, Value>) -> Result<bool, ApiError> {
    let given = |name: &str| body.get(name).filter(|v| !v.is_null());
    if let Some(d) = given("dimensions")
        && d.as_u64() != Some(DIM as u64)
    {
        return Err(ApiError::bad_request(
            "invalid_value",
            "dimensions",
            format!("{MODEL_ID} has {DIM} dimensions"),
        ));
    }
    if let Some(u) = given("user")
        && !u.is_string()
    {
        return Err(ApiError::bad_request(
            "invalid_type",
            "user",
            "`user` must be a string",
        ));
    }
    match given("encoding_format") {
        None => Ok(false),
        Some(Value::String(s)) if s == "float" => Ok(false),
        Some(Value::String(s)) if s == "base64" => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "invalid_value",
            "encoding_format",
            format!("{other}: expected \"float\" or \"base64\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(shape: Shape, body: Value) -> ApiError {
        parse(shape, body.to_string().as_bytes(), 4).unwrap_err()
    }

    #[test]
    fn spin_shape() {
        let r = parse(
            Shape::Spin,
            br#"{"model": "all-minilm-l6-v2", "input": ["a", "b"]}"#,
            4,
        )
        .unwrap();
        assert_eq!(
            r,
            EmbedRequest {
                inputs: vec!["a".into(), "b".into()],
                truncate: true,
                base64: false
            }
        );
        let r = parse(
            Shape::Spin,
            br#"{"model": "all-MiniLM-L6-v2", "input": ["a"], "truncate": false}"#,
            4,
        )
        .unwrap();
        assert!(!r.truncate);
    }

    #[test]
    fn openai_shape() {
        let r = parse(Shape::OpenAi, br#"{"input": "a"}"#, 4).unwrap();
        assert_eq!(r.inputs, vec!["a"]);
        let r = parse(
            Shape::OpenAi,
            br#"{"input": ["a"], "model": "sentence-transformers/all-MiniLM-L6-v2", "encoding_format": "base64", "dimensions": 384, "user": "u"}"#,
            4,
        )
        .unwrap();
        assert!(r.base64);
    }

    #[test]
    fn each_bad_input_is_named() {
        let cases = [
            (
                Shape::Spin,
                json!({"model": "all-minilm-l6-v2", "input": []}),
                400,
                "empty_input",
                "input",
            ),
            (
                Shape::OpenAi,
                json!({"input": ["a", " "]}),
                400,
                "empty_input",
                "input[1]",
            ),
            (
                Shape::OpenAi,
                json!({"input": ""}),
                400,
                "empty_input",
                "input[0]",
            ),
            (
                Shape::OpenAi,
                json!({"input": vec!["a"; 5]}),
                400,
                "too_many_inputs",
                "input",
            ),
            (
                Shape::Spin,
                json!({"model": "llama2-chat", "input": ["a"]}),
                404,
                "model_not_found",
                "model",
            ),
            (
                Shape::OpenAi,
                json!({"model": "text-embedding-3-small", "input": "a"}),
                404,
                "model_not_found",
                "model",
            ),
            (
                Shape::Spin,
                json!({"input": ["a"]}),
                400,
                "missing_field",
                "model",
            ),
            (
                Shape::OpenAi,
                json!({"model": "all-minilm-l6-v2"}),
                400,
                "missing_field",
                "input",
            ),
            (
                Shape::OpenAi,
                json!({"input": 42}),
                400,
                "invalid_type",
                "input",
            ),
            (
                Shape::OpenAi,
                json!({"input": [1, 2]}),
                400,
                "invalid_type",
                "input[0]",
            ),
            (
                Shape::OpenAi,
                json!({"input": "a", "truncate": "no"}),
                400,
                "invalid_type",
                "truncate",
            ),
            (
                Shape::OpenAi,
                json!({"input": "a", "encoding_format": "int8"}),
                400,
                "invalid_value",
                "encoding_format",
            ),
            (
                Shape::OpenAi,
                json!({"input": "a", "dimensions": 1536}),
                400,
                "invalid_value",
                "dimensions",
            ),
            (
                Shape::Spin,
                json!({"model": "all-minilm-l6-v2", "input": ["a"], "encoding_format": "float"}),
                400,
                "unknown_field",
                "encoding_format",
            ),
        ];
        for (shape, body, status, code, field) in cases {
            let e = err(shape, body.clone());
            assert_eq!(
                (e.status.as_u16(), e.code, e.field.as_deref()),
                (status, code, Some(field)),
                "{body}: {e:?}"
            );
        }
        let e = parse(Shape::OpenAi, b"{\"input\": ", 4).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_json"));
        let e = parse(Shape::OpenAi, b"[1]", 4).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_request"));
    }
}
