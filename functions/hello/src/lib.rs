//! The smallest Tessera component. It imports only wasi:http, so `wasmtime serve` can run
//! the same file in the host benchmark.

use spin_sdk::http::{FullBody, IntoResponse, Method, Request, Response, StatusCode};
use spin_sdk::http_service;

#[http_service]
async fn hello(req: Request) -> impl IntoResponse {
    let (status, text): (_, &'static [u8]) = match *req.method() {
        Method::GET | Method::HEAD => (StatusCode::OK, b"hello from tessera\n"),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            b"method not allowed; use GET\n",
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(FullBody::new(text))
}
