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

/// The body of a JSON endpoint: a present content type must be JSON (415 otherwise), the
/// size is limited (413), and a NUL character in any string is refused (400 naming where),
/// before any of it reaches storage.
pub async fn read_json_body(req: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    tessera_api::check_json_content_type(
        req.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("(not text)")),
    )?;
    let bytes = read_body(req, limit).await?;
    tessera_api::refuse_nul(&bytes)?;
    Ok(bytes)
}

/// Parses a JSON request body into `T` (see [`read_json_body`], [`tessera_api::parse_json`]).
pub async fn read_json<T: DeserializeOwned>(req: Request, limit: usize) -> Result<T, ApiError> {
    let bytes = read_json_body(req, limit).await?;
    tessera_api::parse_json(&bytes)
}

/// The request's id, from the `x-request-id` header the host sets (printable ASCII, at
/// most 128 characters; anything else is ignored rather than logged or echoed).
pub fn request_id(req: &Request) -> Option<String> {
    let id = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| id.to_string())
}

/// The answer for an error, without a request id (see [`error_response_for`]).
pub fn error_response(
    err: ApiError,
) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode> {
    error_response_for(err, None)
}

/// The answer for an error of request `request_id`: its JSON body, status, `allow` for
/// 405 and `retry-after` for 503. An error with an internal detail is logged here, with the
/// request id that its message names.
pub fn error_response_for(
    err: ApiError,
    request_id: Option<&str>,
) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode> {
    error_response_with(err, request_id, &[])
}

/// As [`error_response_for`], with more headers (a 429's `ratelimit-*`).
pub fn error_response_with(
    err: ApiError,
    request_id: Option<&str>,
    extra: &[(&'static str, String)],
) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode> {
    if let Some(line) = err.log_line(request_id) {
        eprintln!("{line}");
    }
    let err = err.for_request(request_id);
    let mut builder = Response::builder()
        .status(err.status)
        .header("content-type", "application/json");
    if let Some(allow) = err.allow {
        builder = builder.header("allow", allow);
    }
    if let Some(seconds) = err.retry_after {
        builder = builder.header("retry-after", seconds.to_string());
    }
    for (name, value) in extra {
        builder = builder.header(*name, value.as_str());
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
