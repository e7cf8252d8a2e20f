//! The chat component (being built).
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use tessera_spin_kit::{ApiError, error_response};

#[http_service]
async fn handle(_req: Request) -> impl IntoResponse {
    error_response(ApiError::new(503, "not_ready", "the chat component is being built"))
}
