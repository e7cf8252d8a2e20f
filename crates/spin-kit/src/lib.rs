//! The thin layer every Tessera component shares on top of spin-sdk: reading a request with
//! its size limit, answering JSON and errors (the body of [`tessera_api::ApiError`]), the path
//! below a component's route, and the database connection from the component variable
//! `db_url`. Domain logic does not live here.

pub mod outbound;
pub mod pg;
mod request;

pub use request::{error_response, json_response, read_body, read_json, sub_path};
pub use tessera_api::{ApiError, db_error};

/// Re-exported so components name one `StatusCode`.
pub use spin_sdk::http::StatusCode;

/// The database address, from the component variable `db_url`.
pub async fn db_url() -> Result<String, ApiError> {
    spin_sdk::variables::get("db_url").await.map_err(|e| {
        ApiError::dependency(
            "config_error",
            format!("component variable db_url is not available: {e}"),
        )
    })
}

/// Opens the database named by `db_url`.
pub async fn connect() -> Result<spin_sdk::pg::Connection, ApiError> {
    let url = db_url().await?;
    spin_sdk::pg::Connection::open(url)
        .await
        .map_err(|e| db_error("connect", e))
}
