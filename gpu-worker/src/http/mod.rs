//! The HTTP server: `POST /embed`, `POST /v1/embeddings` (bearer token when configured),
//! `GET /health`, `GET /metrics`. HTTP/1.1 on hyper, shut down gracefully.

mod embeddings;
pub mod error;
pub mod request;

use crate::metrics::Endpoint;
use crate::service::EmbedService;
use bytes::Bytes;
use error::ApiError;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use request::Shape;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// What request handlers share.
pub struct Api {
    pub service: Arc<EmbedService>,
    pub token: Option<String>,
    pub max_inputs: usize,
    pub max_body_bytes: usize,
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Serves until `shutdown` completes, then lets open requests finish.
pub async fn serve(listener: TcpListener, api: Arc<Api>, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&api, req).await) }
            }),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within 30 s");
    }
}

async fn route(api: &Api, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let endpoint = match path.as_str() {
        "/embed" => Endpoint::Embed,
        "/v1/embeddings" => Endpoint::OpenAi,
        "/health" if req.method() == Method::GET => return health(api),
        "/metrics" if req.method() == Method::GET => return metrics(api),
        "/health" | "/metrics" => return method_not_allowed("GET").into_response(),
        _ => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route {path}"),
            )
            .into_response();
        }
    };
    let started = Instant::now();
    let span = RequestSpan::begin(req.method(), &path, req.headers());
    let response = match embed(api, req, endpoint).await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!(code = e.code, message = %e.message, "embedding request failed");
            }
            e.into_response()
        }
    };
    api.service
        .metrics()
        .record_request(endpoint, response.status().as_u16(), started.elapsed());
    if let Some(span) = span {
        span.end(response.status().as_u16(), started.elapsed());
    }
    response
}

/// The server span of an embedding request, exported over OTLP when configured: a child of
/// the caller's `traceparent` (e.g. the kb component's outbound call), or a trace's root.
struct RequestSpan {
    own: tessera_otlp::TraceParent,
    caller: Option<[u8; 8]>,
    name: String,
    method: Method,
    start: std::time::SystemTime,
}

impl RequestSpan {
    fn begin(method: &Method, path: &str, headers: &http::HeaderMap) -> Option<RequestSpan> {
        let incoming = tessera_otlp::traceparent::from_headers(headers);
        let (own, caller) = match incoming {
            Some(caller) => (caller.child(), Some(caller.parent_id)),
            None => (tessera_otlp::TraceParent::start(), None),
        };
        tessera_otlp::exporting(&own).then(|| RequestSpan {
            own,
            caller,
            name: format!("{method} {path}"),
            method: method.clone(),
            start: std::time::SystemTime::now(),
        })
    }

    fn end(self, status: u16, elapsed: std::time::Duration) {
        tessera_otlp::export(tessera_otlp::SpanRecord::http_server(
            &self.own,
            self.caller,
            self.name,
            self.method.as_str(),
            status,
            self.start,
            elapsed,
        ));
    }
}

async fn embed(
    api: &Api,
    req: Request<Incoming>,
    endpoint: Endpoint,
) -> Result<serde_json::Value, ApiError> {
    if req.method() != Method::POST {
        return Err(method_not_allowed("POST"));
    }
    authorize(api.token.as_deref(), req.headers())?;
    let body = Limited::new(req.into_body(), api.max_body_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the body is over {} bytes", api.max_body_bytes),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "body_unreadable",
                    format!("reading the body: {e}"),
                )
            }
        })?
        .to_bytes();
    let shape = match endpoint {
        Endpoint::Embed => Shape::Spin,
        Endpoint::OpenAi => Shape::OpenAi,
    };
    embeddings::handle(&api.service, shape, &body, api.max_inputs).await
}

/// Checks `Authorization: Bearer <token>` (scheme case-insensitive, as Spin sends `bearer`).
pub fn authorize(expected: Option<&str>, headers: &http::HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let unauthorized = |message: &str| {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).with_field("authorization")
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "an `Authorization: Bearer <token>` header is required",
        ));
    };
    let given = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(unauthorized("the bearer token is not valid")),
        None => Err(unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn method_not_allowed(allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {allowed}"),
    )
}

fn health(api: &Api) -> Response<Full<Bytes>> {
    let (depth, tokens) = api.service.queue_depth();
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "status": "ok",
            "model": tessera_embedder::MODEL_ID,
            "dimensions": tessera_embedder::DIM,
            "max_input_tokens": tessera_embedder::MAX_TOKENS,
            "backend": api.service.backend_name(),
            "queue": { "inputs": depth, "tokens": tokens },
        }),
    )
}

fn metrics(api: &Api) -> Response<Full<Bytes>> {
    let (depth, tokens) = api.service.queue_depth();
    let m = api.service.metrics();
    m.set_queue(depth, tokens);
    let mut response = Response::new(Full::new(Bytes::from(m.render())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn bearer_token() {
        assert!(authorize(None, &headers(None)).is_ok());
        assert!(authorize(Some("s3cret"), &headers(Some("Bearer s3cret"))).is_ok());
        assert!(
            authorize(Some("s3cret"), &headers(Some("bearer s3cret"))).is_ok(),
            "Spin sends lowercase"
        );
        for bad in [
            None,
            Some("Bearer wrong"),
            Some("Basic s3cret"),
            Some("s3cret"),
            Some("Bearer s3cre"),
        ] {
            let e = authorize(Some("s3cret"), &headers(bad)).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code, e.field.as_deref()),
                (401, "unauthorized", Some("authorization")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn errors_are_json_with_retry_after_when_given() {
        let e = ApiError {
            retry_after: Some(3),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", "busy")
        };
        let r = e.into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let e = ApiError::bad_request("empty_input", "input[2]", "empty");
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {"code": "empty_input", "message": "empty", "field": "input[2]"}})
        );
    }
}
