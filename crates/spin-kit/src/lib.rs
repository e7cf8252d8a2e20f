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

/// Opens the database named by `db_url` for `tenant`: row-level security lets the
/// connection see and write only that tenant's rows (a query that forgets its
/// `WHERE tenant_id` finds nothing of another tenant); 503 when the database cannot be
/// reached, 500 for a tenant that is not a valid identity (a bug: callers pass checked ids).
pub async fn connect(tenant: &str) -> Result<spin_sdk::pg::Connection, ApiError> {
    if !tessera_api::tenancy::valid_tenant(tenant) {
        return Err(ApiError::internal(format!(
            "connect: {} is not a tenant id",
            tessera_api::echo(tenant)
        )));
    }
    open_scoped(tenant).await
}

/// Opens the database for work that spans tenants by design (the alert dispatcher, the
/// API-key lookup that finds a key's tenant). Anything acting for a caller uses
/// [`connect`] with the caller's tenant.
pub async fn connect_across_tenants() -> Result<spin_sdk::pg::Connection, ApiError> {
    open_scoped(tessera_api::tenancy::ACROSS_TENANTS).await
}

async fn open_scoped(scope: &str) -> Result<spin_sdk::pg::Connection, ApiError> {
    let url = db_url().await?;
    let db = spin_sdk::pg::Connection::open(url)
        .await
        .map_err(|e| pg_error("connect", e))?;
    pg::rows(
        &db,
        "name the connection's tenant",
        tessera_api::tenancy::SET_TENANT_SQL,
        vec![pg::P::Str(scope.to_string())],
    )
    .await?;
    Ok(db)
}
