//! Reading requests and writing JSON answers.

use serde::de::DeserializeOwned;
use serde_json::Value;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request, Response, StatusCode};
use tessera_api::ApiError;

/// The request body, refused with 413 past `limit` bytes.
pub async fn read_body(req: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large(limit));
    }
    let bytes = req
        .into_body()
        .bytes()
        .await
        .map_err(|e| ApiError::bad_request("body_unreadable", format!("{e:?}"), None))?;
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    Ok(bytes.to_vec())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(
        None,
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// Parses a JSON request body into `T` (see [`tessera_api::parse_json`]).
pub async fn read_json<T: DeserializeOwned>(req: Request, limit: usize) -> Result<T, ApiError> {
    let bytes = read_body(req, limit).await?;
    tessera_api::parse_json(&bytes)
}

/// The answer for an error: its JSON body, status and, for 405, `allow`.
pub fn error_response(
    err: ApiError,
) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode> {
    let mut builder = Response::builder()
        .status(err.status)
        .header("content-type", "application/json");
    if let Some(allow) = err.allow {
        builder = builder.header("allow", allow);
    }
    builder
        .body(err.to_json().to_string())
        .expect("static headers are valid")
        .into_response()
}

/// A JSON answer.
pub fn json_response(
    status: StatusCode,
    body: &Value,
) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .expect("static headers are valid")
        .into_response()
}

/// The part of the path below the component's route: Spin's `spin-path-info` header, or the
/// path after `prefix` when the header is missing.
pub fn sub_path(req: &Request, prefix: &str) -> String {
    if let Some(info) = req
        .headers()
        .get("spin-path-info")
        .and_then(|v| v.to_str().ok())
    {
        return info.to_string();
    }
    let path = req.uri().path();
    match path.find(prefix) {
        Some(i) => path[i + prefix.len()..].to_string(),
        None => path.to_string(),
    }
}
