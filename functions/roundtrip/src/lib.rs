//! Round-trips data through every storage interface the host gives components:
//!
//! - `POST /roundtrip/kv`     `{"op": "set"|"get"|"delete"|"exists", "key": "…", "value": "…"}`
//!   on the `default` key-value store;
//! - `POST /roundtrip/pg`     writes one value of each Postgres type Tessera uses (int4, int8,
//!   float8, text, bool, jsonb, uuid, timestamptz, NULL) with parameters, reads the row back
//!   and returns what came back; the body may override any value (see [`pg`]);
//! - `POST /roundtrip/vector` `{"embedding": [384 numbers]}`: writes it as text with
//!   `$1::vector` into a `vector(384)` column and reads it back with `::text`;
//! - `GET /roundtrip/check`   runs all three with built-in values: a self-check for operators
//!   (200 when everything came back intact, 503 otherwise).
//!
//! The database address comes from the component variable `db_url`. Bad input gets a JSON
//! 400 `{"error": {"code", "message", "field"}}`; nothing here panics on input.

mod kv;
mod pg;
mod vector;

use serde_json::{Value, json};
use spin_sdk::http::{IntoResponse, Method, Request, StatusCode};
use spin_sdk::http_service;
use tessera_spin_kit::{ApiError, error_response, json_response, read_body, sub_path};

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    match route(req).await {
        Ok((status, body)) => json_response(status, &body),
        Err(err) => error_response(err),
    }
}

async fn route(req: Request) -> Result<(StatusCode, Value), ApiError> {
    let path = sub_path(&req, "/roundtrip");
    let method = req.method().clone();
    match (path.as_str(), method) {
        ("" | "/", Method::GET) => Ok((StatusCode::OK, index())),
        ("/check", Method::GET) => Ok(check().await),
        ("/kv", Method::POST) => {
            let body = json_body(req).await?;
            Ok((StatusCode::OK, kv::handle(&body).await?))
        }
        ("/pg", Method::POST) => {
            let body = json_body_or_empty(req).await?;
            Ok((StatusCode::OK, pg::handle(&body).await?))
        }
        ("/vector", Method::POST) => {
            let body = json_body(req).await?;
            Ok((StatusCode::OK, vector::handle(&body).await?))
        }
        ("" | "/" | "/check", _) => Err(ApiError::method_not_allowed("GET")),
        ("/kv" | "/pg" | "/vector", _) => Err(ApiError::method_not_allowed("POST")),
        (other, _) => Err(ApiError::not_found(
            "not_found",
            format!("no roundtrip endpoint at {other:?}; see GET /roundtrip/"),
        )),
    }
}

fn index() -> Value {
    json!({
        "component": "roundtrip",
        "endpoints": {
            "POST /roundtrip/kv": "{\"op\": \"set|get|delete|exists\", \"key\": \"…\", \"value\": \"…\"}",
            "POST /roundtrip/pg": "optional overrides: int32, int64, float64, text, bool, jsonb, uuid, timestamp (unix seconds)",
            "POST /roundtrip/vector": "{\"embedding\": [384 numbers]}",
            "GET /roundtrip/check": "runs all three; 200 when everything round-tripped",
        }
    })
}

/// The largest body any roundtrip endpoint needs (a 384-d vector as JSON is ~8 KiB).
const BODY_LIMIT: usize = 1 << 20;

async fn json_body(req: Request) -> Result<Value, ApiError> {
    let bytes = read_body(req, BODY_LIMIT).await?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body is empty; send a JSON object",
            None,
        ));
    }
    parse_object(&bytes)
}

async fn json_body_or_empty(req: Request) -> Result<Value, ApiError> {
    let bytes = read_body(req, BODY_LIMIT).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    parse_object(&bytes)
}

fn parse_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
            None,
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body must be a JSON object",
            None,
        ));
    }
    Ok(value)
}

/// Every round trip with built-in values.
async fn check() -> (StatusCode, Value) {
    let kv = kv::self_check().await;
    let pg = pg::self_check().await;
    let vector = vector::self_check().await;
    let ok = [&kv, &pg, &vector]
        .iter()
        .all(|r| r.get("ok") == Some(&Value::Bool(true)));
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        json!({ "ok": ok, "kv": kv, "pg": pg, "vector": vector }),
    )
}
