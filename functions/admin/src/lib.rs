//! The admin component: API keys and the audit log, for the admins of a tenant.
//!
//! - `POST   /v1/admin/keys`                  a new key; the full key is in this answer only
//! - `GET    /v1/admin/keys`                  the tenant's keys (prefixes, never secrets)
//! - `POST   /v1/admin/keys/{prefix}/rotate`  a new key with the same role and user; the old one revoked
//! - `DELETE /v1/admin/keys/{prefix}`         revoke (refused for the tenant's last admin key)
//! - `GET    /v1/admin/audit`                 state-changing requests, newest first, with filters
//!
//! - `GET    /openapi.json`                   the API description of the whole application
//!
//! Every route but the description needs the admin role (tessera_spin_kit::auth::policy); an admin manages the
//! keys of its own tenant. The first key of an installation is made by `cargo xtask up`.

mod audit;
mod keys;
mod openapi;

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use tessera_spin_kit::auth::{self, Caller};
use tessera_spin_kit::{ApiError, StatusCode};

/// A JSON answer.
pub type Handled = Result<(StatusCode, serde_json::Value), ApiError>;

/// Request bodies are small JSON documents.
pub const BODY_LIMIT: usize = 16 * 1024;

/// `to_char` pattern for timestamps in answers.
pub const ISO: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    // The API description is public (like /health): it names routes, never data.
    if req.method() == Method::GET {
        let answer = match req.uri().path() {
            "/openapi.json" => Some(openapi::document().await),
            tessera_api::openapi::FRAGMENT_PATH => Some(Ok((StatusCode::OK, openapi::fragment()))),
            _ => None,
        };
        if let Some(answer) = answer {
            let id = tessera_spin_kit::request_id(&req);
            return match answer {
                Ok((status, body)) => tessera_spin_kit::json_response(status, &body),
                Err(err) => tessera_spin_kit::error_response_for(err, id.as_deref()),
            };
        }
    }
    auth::serve_json(req, |req, caller| async move { route(req, &caller).await }).await
}

async fn route(req: Request, caller: &Caller) -> Handled {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = tessera_api::Query::parse(req.uri().query().unwrap_or(""))?;
    let method = req.method().clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (segments.as_slice(), method) {
        (["v1", "admin", "keys"], Method::POST) => keys::create(req, caller).await,
        (["v1", "admin", "keys"], Method::GET) => keys::list(caller).await,
        (["v1", "admin", "keys", prefix, "rotate"], Method::POST) => {
            keys::rotate(caller, prefix).await
        }
        (["v1", "admin", "keys", prefix], Method::DELETE) => keys::revoke(caller, prefix).await,
        (["v1", "admin", "audit"], Method::GET) => audit::list(caller, &query).await,
        (["v1", "admin", "keys"], _) => Err(ApiError::method_not_allowed("GET, POST")),
        (["v1", "admin", "keys", _, "rotate"], _) => Err(ApiError::method_not_allowed("POST")),
        (["v1", "admin", "keys", _], _) => Err(ApiError::method_not_allowed("DELETE")),
        (["v1", "admin", "audit"], _) => Err(ApiError::method_not_allowed("GET")),
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no admin endpoint at {path}"),
        )),
    }
}
