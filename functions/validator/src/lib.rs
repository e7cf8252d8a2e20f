//! The validator component: thin adapter from HTTP and Postgres to tessera-validation.
//!
//! - `POST /v1/validate/trade`                  a verdict on a proposed trade (stored for audit)
//! - `GET|PUT /v1/validator/limits`             the tenant's hard limits and breaker rules
//! - `GET  /v1/validations`                     the audit of validations, newest first
//! - `POST /v1/portfolio/snapshots`             the account after a trading cycle (+ closed trades)
//! - `GET  /v1/system/circuit-breaker`          the breaker, its metrics and the auto-resume check
//! - `POST /v1/system/circuit-breaker/resume`   an operator closes a breaker awaiting approval
//! - `POST /v1/validate/formula`                a sheet of formulas evaluated and checked
//! - `POST /v1/validate/model`                  DCF / LBO model checks
//! - `GET  /internal/openapi`                   these operations described (see `openapi`), for
//!   the host's `/openapi.json`; reached by service chaining only
//!
//! The caller is authenticated by tessera_spin_kit::auth (API keys; limits and the breaker's
//! resume need the operator role), and every write is audited.

mod audit;
mod breaker;
mod db;
mod formula;
mod identity;
mod limits;
mod model;
mod openapi;
mod snapshots;
mod trade;

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use tessera_spin_kit::auth;
use tessera_spin_kit::{ApiError, StatusCode, json_response};

/// A JSON answer.
pub type Handled = Result<(StatusCode, serde_json::Value), ApiError>;

/// Request bodies: a sheet of 20,000 cells fits; anything larger is refused before parsing.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    // The API description is reached only through service chaining (the host joins the
    // components' fragments into `/openapi.json`) and holds nothing of any tenant's.
    if *req.method() == Method::GET && req.uri().path() == tessera_api::openapi::FRAGMENT_PATH {
        return json_response(StatusCode::OK, &openapi::fragment());
    }
    auth::serve_json(req, |req, _caller| route(req)).await
}

async fn route(req: Request) -> Handled {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = tessera_api::Query::parse(req.uri().query().unwrap_or(""))?;
    let method = req.method().clone();
    let caller = identity::caller(&req)?;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (segments.as_slice(), method) {
        (["v1", "validate", "trade"], Method::POST) => trade::post(req, &caller).await,
        (["v1", "validate", "formula"], Method::POST) => formula::post(req, &caller).await,
        (["v1", "validate", "model"], Method::POST) => model::post(req, &caller).await,
        (["v1", "validator", "limits"], Method::GET) => limits::get(&caller).await,
        (["v1", "validator", "limits"], Method::PUT) => limits::put(req, &caller).await,
        (["v1", "validations"], Method::GET) => audit::list(&caller, &query).await,
        (["v1", "portfolio", "snapshots"], Method::POST) => snapshots::post(req, &caller).await,
        (["v1", "system", "circuit-breaker"], Method::GET) => breaker::get(&caller).await,
        (["v1", "system", "circuit-breaker", "resume"], Method::POST) => {
            breaker::resume(req, &caller).await
        }
        (["v1", "validate", "trade" | "formula" | "model"], _)
        | (["v1", "portfolio", "snapshots"], _)
        | (["v1", "system", "circuit-breaker", "resume"], _) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        (["v1", "validator", "limits"], _) => Err(ApiError::method_not_allowed("GET, PUT")),
        (["v1", "validations"], _) | (["v1", "system", "circuit-breaker"], _) => {
            Err(ApiError::method_not_allowed("GET"))
        }
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no validator endpoint at {path}"),
        )),
    }
}

/// The request body as `T` (errors as [`name_missing`] words them), and its bytes.
pub async fn read<T: serde::de::DeserializeOwned>(req: Request) -> Result<(T, Vec<u8>), ApiError> {
    let body = tessera_spin_kit::read_json_body(req, BODY_LIMIT).await?;
    let value = tessera_api::parse_json::<T>(&body).map_err(name_missing)?;
    Ok((value, body))
}

/// A missing field named with its full path (`trade.quantity`), where serde names only the
/// object that lacks it.
pub fn name_missing(mut e: ApiError) -> ApiError {
    if e.code == "missing_field"
        && let Some(name) = e
            .message
            .split("missing field `")
            .nth(1)
            .and_then(|r| r.split('`').next())
    {
        e.field = Some(match e.field.as_deref() {
            Some(p) if p != name && !p.ends_with(&format!(".{name}")) => format!("{p}.{name}"),
            _ => name.to_string(),
        });
    }
    e
}
