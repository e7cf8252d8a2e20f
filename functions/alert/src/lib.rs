//! The alert component: a thin adapter from HTTP and Postgres to tessera-alerting.
//!
//! - `POST/GET /v1/alerts/channels`, `GET/PUT/DELETE /v1/alerts/channels/{id}`
//! - `POST/GET /v1/alerts/rules`, `GET/PUT/DELETE /v1/alerts/rules/{id}`
//! - `POST/GET /v1/alerts/silences`, `GET/PUT/DELETE /v1/alerts/silences/{id}`
//! - `POST /v1/alerts/events`  raise an event: routed, grouped and its due notifications
//!   written to the outbox in one transaction, then attempted at once
//! - `GET  /v1/alerts`         recent events with the deliveries that carried them
//! - `POST /v1/alerts/deliveries/{id}/replay`  send a delivery again (same `webhook-id`)
//! - `POST /internal/dispatch` the dispatcher (flush due groups, send due deliveries); no
//!   public route reaches it: this component's own cron export calls it by service
//!   chaining every tick (see `tick`)
//! - `POST /internal/system-errors` the host's report of a component answering 5xx
//!   (`--report-errors-to alert`), raised as a `system.error` alert (see `system_errors`)
//! - `GET /internal/openapi` the public operations described (see `openapi`), for the host's
//!   `/openapi.json`; reached by service chaining only
//!
//! The caller is authenticated by tessera_spin_kit::auth (API keys; channels, rules, silences
//! and replays need the operator role, raising events the service role); every write is audited.

mod channels;
mod clock;
mod daily;
mod db;
mod dispatch;
mod events;
mod identity;
mod inbox;
mod monitor;
mod openapi;
mod rules;
mod silences;
mod system_errors;
mod tick;

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use tessera_spin_kit::auth;
use tessera_spin_kit::{ApiError, StatusCode, error_response_for, json_response, request_id};

/// A JSON answer.
pub type Handled = Result<(StatusCode, serde_json::Value), ApiError>;

/// Request bodies of this API are small JSON documents.
pub const BODY_LIMIT: usize = 256 * 1024;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    // The API description, like the routes below, is reached only through service chaining
    // (the host joins the components' fragments into `/openapi.json`).
    if *req.method() == Method::GET && req.uri().path() == tessera_api::openapi::FRAGMENT_PATH {
        return json_response(StatusCode::OK, &openapi::fragment());
    }
    // The dispatcher and the host's error reports are reached only through service chaining
    // (no route of the application leads to them) and act for no caller's tenant.
    let internal = match req.uri().path() {
        "/internal/dispatch" => Some(false),
        "/internal/system-errors" => Some(true),
        _ => None,
    };
    if let Some(system_errors) = internal {
        let id = request_id(&req);
        let result = if system_errors {
            system_errors::receive(req).await
        } else {
            dispatch::run().await
        };
        return match result {
            Ok((status, body)) => json_response(status, &body),
            Err(err) => error_response_for(err, id.as_deref()),
        };
    }
    auth::serve_json(req, |req, _caller| route(req)).await
}

async fn route(req: Request) -> Handled {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = tessera_api::Query::parse(req.uri().query().unwrap_or(""))?;
    let method = req.method().clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let tenant = identity::tenant(&req)?;
    match (segments.as_slice(), method) {
        (["v1", "alerts"], Method::GET) => events::list(&tenant, &query).await,
        (["v1", "alerts", "events"], Method::POST) => events::raise(req, &tenant).await,
        (["v1", "alerts", "channels"], Method::POST) => channels::create(req, &tenant).await,
        (["v1", "alerts", "channels"], Method::GET) => channels::list(&tenant).await,
        (["v1", "alerts", "channels", id], Method::GET) => channels::get(&tenant, id).await,
        (["v1", "alerts", "channels", id], Method::PUT) => {
            let id = id.to_string();
            channels::update(req, &tenant, &id).await
        }
        (["v1", "alerts", "channels", id], Method::DELETE) => channels::delete(&tenant, id).await,
        (["v1", "alerts", "rules"], Method::POST) => rules::create(req, &tenant).await,
        (["v1", "alerts", "rules"], Method::GET) => rules::list(&tenant).await,
        (["v1", "alerts", "rules", id], Method::GET) => rules::get(&tenant, id).await,
        (["v1", "alerts", "rules", id], Method::PUT) => {
            let id = id.to_string();
            rules::update(req, &tenant, &id).await
        }
        (["v1", "alerts", "rules", id], Method::DELETE) => rules::delete(&tenant, id).await,
        (["v1", "alerts", "silences"], Method::POST) => silences::create(req, &tenant).await,
        (["v1", "alerts", "silences"], Method::GET) => silences::list(&tenant).await,
        (["v1", "alerts", "silences", id], Method::GET) => silences::get(&tenant, id).await,
        (["v1", "alerts", "silences", id], Method::PUT) => {
            let id = id.to_string();
            silences::update(req, &tenant, &id).await
        }
        (["v1", "alerts", "silences", id], Method::DELETE) => silences::delete(&tenant, id).await,
        (["v1", "alerts", "deliveries", id, "replay"], Method::POST) => {
            dispatch::replay(&tenant, id).await
        }
        (["v1", "alerts"], _) => Err(ApiError::method_not_allowed("GET")),
        (["v1", "alerts", "events"], _) => Err(ApiError::method_not_allowed("POST")),
        (["v1", "alerts", "channels" | "rules" | "silences"], _) => {
            Err(ApiError::method_not_allowed("GET, POST"))
        }
        (["v1", "alerts", "channels" | "rules" | "silences", _], _) => {
            Err(ApiError::method_not_allowed("GET, PUT, DELETE"))
        }
        (["v1", "alerts", "deliveries", _, "replay"], _) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no alerts endpoint at {path}"),
        )),
    }
}
