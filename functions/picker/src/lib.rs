//! The picker component: a thin adapter from HTTP, cron and Postgres to tessera-picking.
//!
//! - `POST /v1/market/symbols`, `POST /v1/market/bars` (JSON array or NDJSON; idempotent
//!   upserts answering inserted/updated/rejected), `GET /v1/market/bars`
//! - `GET/PUT /v1/discovery/settings`
//! - `POST /v1/discovery/run`, `GET /v1/discovery/runs/{id}`, `GET /v1/discovery/status`,
//!   `GET /v1/discovery/suggestions`
//! - `GET /v1/discovery/watchlist`, `POST /v1/discovery/watchlist/add`, `…/remove`
//! - `POST /v1/trades`, `POST /v1/trades/{id}/exit`, `GET /v1/trades`
//! - `GET /v1/discovery/performance` (the scorecard)
//! - `GET /v1/discovery/requests`: event discovery runs asked for by the alert component's
//!   price-move monitor, and what came of them (`POST /internal/discovery/requests` runs
//!   them; see `event_runs`)
//! - `POST /internal/cron` (the hourly jobs, every tenant) and
//!   `POST /internal/jobs/{snapshot|discovery|forward-returns}` (one job, every tenant): no
//!   public route reaches them; this component's cron export calls `/internal/cron` by
//!   service chaining (see `tick`)
//! - `GET /internal/openapi`: the public operations described (see `openapi`), for the host's
//!   `/openapi.json`; reached by service chaining only
//!
//! Tenant from `x-tenant-id` (set by a trusted gateway, as in the other components).

mod db;
mod discovery;
mod event_runs;
mod identity;
mod jobs;
mod llm;
mod market;
mod model;
mod openapi;
mod performance;
mod preinit;
mod returns;
mod settings;
mod snapshot;
mod tick;
mod trades;
mod universe;
mod watchlist;

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use tessera_spin_kit::auth;
use tessera_spin_kit::{ApiError, StatusCode, error_response_for, json_response, request_id};

/// A JSON answer.
pub type Handled = Result<(StatusCode, serde_json::Value), ApiError>;

/// Request bodies other than bulk loads are small JSON documents.
pub const BODY_LIMIT: usize = 256 * 1024;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    // The API description, reached only through service chaining (the host joins the
    // components' fragments into `/openapi.json`); before `/internal/*` below, which acts
    // as the cron.
    if *req.method() == Method::GET && req.uri().path() == tessera_api::openapi::FRAGMENT_PATH {
        return json_response(StatusCode::OK, &openapi::fragment());
    }
    // `/internal/*` is reached only by this component's own cron export through service
    // chaining (no route of the application leads to it) and acts for no single tenant.
    if req.uri().path().starts_with("/internal/") {
        let id = request_id(&req);
        return match route(req).await {
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
    match (segments.as_slice(), &method) {
        (["internal", "cron"], &Method::POST) => return jobs::cron(&query).await,
        (["internal", "jobs", job], &Method::POST) => return jobs::one(job, &query).await,
        (["internal", "discovery", "requests"], &Method::POST) => return event_runs::drain().await,
        _ => {}
    }
    let tenant = identity::tenant(&req)?;
    match (segments.as_slice(), method) {
        (["v1", "market", "symbols"], Method::POST) => {
            market::post_symbols(req, &tenant, &query).await
        }
        (["v1", "market", "bars"], Method::POST) => market::post_bars(req, &tenant, &query).await,
        (["v1", "market", "bars"], Method::GET) => market::get_bars(&tenant, &query).await,
        (["v1", "discovery", "settings"], Method::GET) => settings::get(&tenant).await,
        (["v1", "discovery", "settings"], Method::PUT) => settings::put(req, &tenant).await,
        (["v1", "discovery", "run"], Method::POST) => discovery::post_run(req, &tenant).await,
        (["v1", "discovery", "runs", id], Method::GET) => discovery::get_run(&tenant, id).await,
        (["v1", "discovery", "status"], Method::GET) => discovery::status(&tenant).await,
        (["v1", "discovery", "requests"], Method::GET) => event_runs::list(&tenant).await,
        (["v1", "discovery", "suggestions"], Method::GET) => {
            discovery::suggestions(&tenant, &query).await
        }
        (["v1", "discovery", "watchlist"], Method::GET) => watchlist::list(&tenant).await,
        (["v1", "discovery", "watchlist", "add"], Method::POST) => {
            watchlist::add(req, &tenant).await
        }
        (["v1", "discovery", "watchlist", "remove"], Method::POST) => {
            watchlist::remove(req, &tenant).await
        }
        (["v1", "discovery", "performance"], Method::GET) => {
            performance::get(&tenant, &query).await
        }
        (["v1", "trades"], Method::POST) => trades::create(req, &tenant).await,
        (["v1", "trades"], Method::GET) => trades::list(&tenant).await,
        (["v1", "trades", id, "exit"], Method::POST) => {
            let id = id.to_string();
            trades::exit(req, &tenant, &id).await
        }
        (["v1", "market", "symbols"], _) => Err(ApiError::method_not_allowed("POST")),
        (["v1", "market", "bars"], _) => Err(ApiError::method_not_allowed("GET, POST")),
        (["v1", "discovery", "settings"], _) => Err(ApiError::method_not_allowed("GET, PUT")),
        (["v1", "discovery", "run"], _)
        | (["v1", "discovery", "watchlist", "add" | "remove"], _)
        | (["v1", "trades", _, "exit"], _) => Err(ApiError::method_not_allowed("POST")),
        (["v1", "discovery", "runs", _], _)
        | (
            [
                "v1",
                "discovery",
                "status" | "suggestions" | "watchlist" | "performance" | "requests",
            ],
            _,
        ) => Err(ApiError::method_not_allowed("GET")),
        (["v1", "trades"], _) => Err(ApiError::method_not_allowed("GET, POST")),
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no picker endpoint at {path}"),
        )),
    }
}
