//! The feedback component: thin adapter from HTTP and Postgres to tessera-feedback.
//!
//! - `POST /v1/messages/{id}/feedback`  rate an assistant message (replaces the caller's earlier rating)
//! - `GET  /v1/messages/{id}/feedback`  the current feedback on a message, and its history
//! - `GET  /v1/feedback/report`         questions clustered by embedding, worst feedback first
//! - `POST /v1/feedback/{id}/promote`   an operator approves a correction: it becomes a `curated` kb document
//! - `GET  /internal/openapi`           these operations as an OpenAPI fragment (see `openapi`)
//!
//! The caller is authenticated by tessera_spin_kit::auth (an API key; the report and promotion
//! need an operator, members rate and read only answers given to them), or, for posting
//! feedback from a browser, by a presigned feedback token. Every write is audited.

mod db;
mod identity;
mod openapi;
mod promote;
mod report;
mod stats;
mod submit;
mod token;
mod view;

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use tessera_spin_kit::auth;
use tessera_spin_kit::{ApiError, StatusCode, error_response_for, json_response, request_id};

/// A JSON answer.
pub type Handled = Result<(StatusCode, serde_json::Value), ApiError>;

#[http_service]
async fn handle(mut req: Request) -> impl IntoResponse {
    // This component's part of the API description, asked for by service chaining (admin's
    // `/openapi.json`); it names no tenant's data.
    if req.method() == Method::GET && req.uri().path() == tessera_api::openapi::FRAGMENT_PATH {
        return json_response(StatusCode::OK, &openapi::fragment());
    }
    let id = request_id(&req);
    // Rating (and reading back) an answer also takes the presigned token handed out with
    // it, so there an API key is optional; the handlers require one or the other.
    let by_token = matches!(
        req.uri()
            .path()
            .trim_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .as_slice(),
        ["v1", "messages", _, "feedback"]
    );
    let caller = if by_token {
        auth::identify_optional(&mut req).await
    } else {
        auth::identify(&mut req).await.map(Some)
    };
    let caller = match caller {
        Ok(c) => c,
        Err(refusal) => return refusal.response(id.as_deref()),
    };
    let audit = caller.as_ref().and_then(|c| auth::Audit::start(c, &req));
    let result = match caller.as_ref().map(|c| auth::authorize(c, &req)) {
        Some(Err(e)) => Err(e),
        _ => route(req).await,
    };
    auth::record(audit, &result).await;
    match result {
        Ok((status, body)) => json_response(status, &body),
        Err(err) => error_response_for(err, id.as_deref()),
    }
}

async fn route(req: Request) -> Handled {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = tessera_api::Query::parse(req.uri().query().unwrap_or(""))?;
    let method = req.method().clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (segments.as_slice(), method) {
        (["v1", "messages", id, "feedback"], Method::POST) => {
            let id = id.to_string();
            submit::post(req, &id).await
        }
        (["v1", "messages", id, "feedback"], Method::GET) => view::get(&req, id).await,
        (["v1", "feedback", "report"], Method::GET) => {
            report::get(&identity::caller(&req)?, &query).await
        }
        (["v1", "feedback", id, "promote"], Method::POST) => {
            let caller = identity::caller(&req)?;
            let id = id.to_string();
            promote::post(req, &caller, &id).await
        }
        (["v1", "messages", _, "feedback"], _) => Err(ApiError::method_not_allowed("GET, POST")),
        (["v1", "feedback", "report"], _) => Err(ApiError::method_not_allowed("GET")),
        (["v1", "feedback", _, "promote"], _) => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no feedback endpoint at {path}"),
        )),
    }
}
