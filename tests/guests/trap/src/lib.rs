//! Panics on every request: a Rust panic in a component is a wasm trap, which the host must
//! turn into a 500 with a request id and keep serving.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    panic!(
        "trap guest: deliberate panic on {} {}",
        req.method(),
        req.uri()
    );
    #[allow(unreachable_code)]
    ""
}
