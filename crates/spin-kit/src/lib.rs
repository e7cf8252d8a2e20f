//! The thin layer every Tessera component shares on top of spin-sdk: reading a request with
//! its size limit, answering JSON and errors (the body of [`tessera_api::ApiError`]), the path
//! below a component's route, and the database connection from the component variable
//! `db_url`. Domain logic does not live here.

pub mod alert_inbox;
pub mod auth;
pub mod clock;
#[cfg(feature = "embeddings")]
pub mod embeddings;
pub mod identity;
pub mod llm;
pub mod outbound;
pub mod pg;
mod request;

pub use request::{
    error_response, error_response_for, error_response_with, json_response, read_body, read_json,
    read_json_body, request_id, sub_path,
};
pub use tessera_api::ApiError;

/// Re-exported so components name one `StatusCode`.
pub use spin_sdk::http::StatusCode;

/// A database failure, with what was being done: [`pg::pg_error`] for the database's own
/// errors (503 / 400 / 500 by kind), `db_error` for anything else found wrong (500).
pub use pg::pg_error;
pub use tessera_api::db_error;

/// The database address, from the component variable `db_url`.
pub async fn db_url() -> Result<String, ApiError> {
    spin_sdk::variables::get("db_url")
        .await
        .map_err(|e| ApiError::internal(format!("component variable db_url: {e}")))
}

/// Opens the database named by `db_url`; 503 when it cannot be reached.
pub async fn connect() -> Result<spin_sdk::pg::Connection, ApiError> {
    let url = db_url().await?;
    spin_sdk::pg::Connection::open(url)
        .await
        .map_err(|e| pg_error("connect", e))
}
