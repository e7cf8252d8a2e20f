//! The chat component: the progressive protocol (tessera-progressive) over the cost-aware
//! model gateway (tessera-gateway), streamed as Server-Sent Events (docs/chat-stream.md).
//!
//! - `POST /v1/chat/conversations`                     create (optional title, project/page context)
//! - `GET  /v1/chat/conversations/{id}`                messages, steps (model, tokens, cost, timing, status, versions)
//! - `POST /v1/chat/conversations/{id}/messages`       a user message; answers with the SSE stream of its steps
//! - `POST /v1/chat/conversations/{id}/steps/{n}/edit` preview (JSON) or apply (SSE) a step's changed requirements
//! - `GET|PUT /v1/chat/profile`                        skill level, plan tier, monthly budget, own provider keys
//! - `GET  /v1/usage`                                  tokens and cost by user, provider, model and day
//! - `GET  /internal/openapi`                          these operations as an OpenAPI fragment (see `openapi`)
//!
//! The caller is authenticated by tessera_spin_kit::auth (an API key; members see only their
//! own conversations and usage, plan tier and budget need an operator). Completed answers
//! carry a presigned feedback token (see `feedback_token`) for the feedback component. The knowledge base
//! is reached with self requests (`http://self/v1/kb/search`, `/v1/embeddings`).

mod breakers;
mod cache;
mod clock;
mod config;
mod conversations;
mod crypto;
mod db;
mod edit;
mod feedback_token;
mod gateway;
mod identity;
mod kb;
mod openapi;
mod profile;
mod replay;
mod sse;
mod store;
mod turn;
mod usage;

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use tessera_spin_kit::auth;
use tessera_spin_kit::{
    ApiError, StatusCode, error_response_for, json_response, read_json_body, request_id,
};

/// What the handler answers: a finished response or the head of a stream.
pub type Answer =
    Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode>;
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
    let caller = match auth::identify(&mut req).await {
        Ok(c) => c,
        Err(refusal) => return refusal.response(id.as_deref()),
    };
    let audit = auth::Audit::start(&caller, &req);
    // The conversation a write is about (a stream's outcome is known only at its end; the
    // audit row records how it started).
    let target = req
        .uri()
        .path()
        .strip_prefix("/v1/chat/conversations/")
        .and_then(|rest| rest.split('/').next())
        .map(|s| s.chars().take(64).collect::<String>());
    let answer = match auth::authorize(&caller, &req) {
        Ok(()) => route(req).await,
        Err(e) => Err(e),
    };
    if let Some(audit) = audit {
        let status = match &answer {
            Ok(Ok(resp)) => resp.get_status_code(),
            Ok(Err(_)) => 500,
            Err(e) => e.status,
        };
        audit.finish(status, target).await;
    }
    match answer {
        Ok(answer) => answer,
        Err(err) => error_response_for(err, id.as_deref()),
    }
}

fn json(result: Handled) -> Result<Answer, ApiError> {
    result.map(|(status, body)| json_response(status, &body))
}

async fn route(req: Request) -> Result<Answer, ApiError> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = tessera_api::Query::parse(req.uri().query().unwrap_or(""))?;
    let method = req.method().clone();
    let mut caller = identity::caller(&req)?;
    // An operator may read or set another user's profile (plan tier, budget).
    if let (["v1", "chat", "profile"], Some(user)) = (
        path.trim_start_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .as_slice(),
        query.get("user"),
    ) && user != caller.user
    {
        auth::require_role(&caller.auth(), auth::Role::Operator)?;
        if !tessera_spin_kit::identity::valid_identity(user) {
            return Err(ApiError::invalid(
                "user",
                "user is 1-64 letters, digits, '-', '_', '.' or '@'",
            ));
        }
        caller.user = user.to_string();
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (segments.as_slice(), method) {
        (["v1", "chat", "conversations"], Method::POST) => {
            json(conversations::create(req, &caller).await)
        }
        (["v1", "chat", "conversations", id], Method::GET) => {
            json(conversations::get(&caller, id).await)
        }
        (["v1", "chat", "conversations", id, "messages"], Method::POST) => {
            let id = id.to_string();
            conversations::post_message(req, caller, &id).await
        }
        (["v1", "chat", "conversations", id, "steps", n, "edit"], Method::POST) => {
            let (id, n) = (id.to_string(), n.to_string());
            edit::edit(req, caller, &id, &n).await
        }
        (["v1", "chat", "profile"], Method::GET) => json(profile::get(&caller).await),
        (["v1", "chat", "profile"], Method::PUT) => {
            let settings = config::Settings::load().await?;
            let body = read_json_body(req, 16 * 1024).await?;
            json(profile::put(&body, &caller, &settings).await)
        }
        (["v1", "usage"], Method::GET) => json(usage::get(&caller, &query).await),
        (["v1", "chat", "conversations"], _)
        | (["v1", "chat", "conversations", _, "messages"], _)
        | (["v1", "chat", "conversations", _, "steps", _, "edit"], _) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        (["v1", "chat", "conversations", _], _) | (["v1", "usage"], _) => {
            Err(ApiError::method_not_allowed("GET"))
        }
        (["v1", "chat", "profile"], _) => Err(ApiError::method_not_allowed("GET, PUT")),
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no chat endpoint at {path}"),
        )),
    }
}
