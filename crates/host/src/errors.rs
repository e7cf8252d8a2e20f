//! JSON error answers: `{"error": {"code", "message", "request_id"?, "field"?}}`.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::WasiBody;

/// The request header that tells a component the id the host logs its request under.
pub const REQUEST_ID: &str = "x-request-id";

pub fn json_response(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    request_id: &str,
) -> http::Response<WasiBody> {
    let body = serde_json::json!({
        "error": { "code": code, "message": message.into(), "request_id": request_id }
    });
    let mut response = http::Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn full(body: impl Into<Bytes>) -> WasiBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
