//! Inbound webhooks: `POST /v1/webhooks/{source}`.
//!
//! Each source has a scheme and secrets in component variables: `webhook_<source>_scheme`
//! (`standard_webhooks`, `github` or `stripe`) and `webhook_<source>_secret` (one secret, or
//! several separated by spaces during a rotation); `-` in a source name reads as `_`. The
//! raw body is verified with tessera-alerting (constant-time, 5-minute timestamp tolerance),
//! then stored in `webhook_events` under the sender's event id: a replay of an event already
//! stored answers 200 and stores nothing. Every verification failure, an unknown source
//! included, is a bare 401 so a prober learns nothing; the reason goes to the log.
//!
//! Hand-off (see `handoff`): a Standard Webhooks envelope whose `type` is listed in the
//! source's `webhook_<source>_accepts` (e.g. `market.bars market.symbols`) goes on to the
//! capability that owns it after it is stored; `webhook_<source>_tenant` names the tenant the
//! source's events belong to. A hand-off that failed answers 503, and the sender's retry of
//! the same event id hands it on again (a refused event is final: 200, with the reason).

mod handoff;
mod openapi;

use serde_json::json;
use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use tessera_alerting::{Scheme, SourceConfig};
use tessera_spin_kit::identity::tenant;
use tessera_spin_kit::pg::{self, P};
use tessera_spin_kit::{
    ApiError, StatusCode, error_response_for, json_response, read_body, request_id,
};

/// Webhook bodies are events, not uploads.
const BODY_LIMIT: usize = 1024 * 1024;

type Handled = Result<(StatusCode, serde_json::Value), ApiError>;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let id = request_id(&req);
    if req.method() == Method::GET && req.uri().path() == tessera_api::openapi::FRAGMENT_PATH {
        return json_response(StatusCode::OK, &openapi::fragment());
    }
    match route(req).await {
        Ok((status, body)) => json_response(status, &body),
        Err(err) => error_response_for(err, id.as_deref()),
    }
}

async fn route(req: Request) -> Handled {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (segments.as_slice(), req.method()) {
        (["v1", "webhooks", source], &Method::POST) => {
            let source = source.to_string();
            receive(req, &source).await
        }
        (["v1", "webhooks", _], _) => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no webhooks endpoint at {path}"),
        )),
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "unauthorized", "invalid webhook signature")
}

fn valid_source(source: &str) -> bool {
    !source.is_empty()
        && source.len() <= 48
        && source
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The source's verification settings, or `None` when it is not configured.
async fn source_config(source: &str) -> Option<SourceConfig> {
    let var = source.replace('-', "_");
    let scheme = spin_sdk::variables::get(&format!("webhook_{var}_scheme"))
        .await
        .ok()?;
    let scheme: Scheme = serde_json::from_value(json!(scheme.trim())).ok()?;
    let secrets = spin_sdk::variables::get(&format!("webhook_{var}_secret"))
        .await
        .ok()?;
    Some(SourceConfig::new(
        scheme,
        secrets.split_whitespace().map(str::to_string).collect(),
    ))
}

async fn receive(req: Request, source: &str) -> Handled {
    let rid = request_id(&req).unwrap_or_default();
    if !valid_source(source) {
        return Err(ApiError::not_found(
            "not_found",
            "a webhook source is 1-48 lowercase letters, digits, '-' or '_'",
        ));
    }
    // The source's tenant (`webhook_<source>_tenant`), else the request's.
    let tenant =
        match spin_sdk::variables::get(&format!("webhook_{}_tenant", source.replace('-', "_")))
            .await
        {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => tenant(&req)?,
        };
    let headers = req.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_body(req, BODY_LIMIT).await?;
    let Some(config) = source_config(source).await else {
        eprintln!("webhooks {rid}: source {source:?} is not configured");
        return Err(unauthorized());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let verified = match config.verify(&headers, &body, now) {
        Ok(v) => v,
        Err(rejection) => {
            eprintln!("webhooks {rid}: {source}: rejected: {}", rejection.reason());
            return Err(unauthorized());
        }
    };
    let Some(event_id) = verified
        .event_id
        .filter(|id| !id.is_empty() && id.len() <= 256)
    else {
        // Without the sender's id a replay could not be told from a new event.
        let field = match config.scheme {
            Scheme::StandardWebhooks => "webhook-id",
            Scheme::GitHub => "x-github-delivery",
            Scheme::Stripe => "id",
        };
        return Err(ApiError::invalid(
            field,
            format!("`{field}` (the event id, 1-256 characters) is required"),
        ));
    };
    let var = source.replace('-', "_");
    let accepted = spin_sdk::variables::get(&format!("webhook_{var}_accepts"))
        .await
        .unwrap_or_default();
    let event_type = tessera_alerting::handoff::event_type(&body);
    let handed_off = event_type
        .as_deref()
        .is_some_and(|t| tessera_alerting::handoff::accepts(&accepted, t));
    let db = tessera_spin_kit::connect(&tenant).await?;
    let inserted = pg::one(
        &db,
        "store webhook event",
        "INSERT INTO webhook_events (tenant_id, source, event_id, body, content_type, event_type, \
           handoff_status) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, source, event_id) DO NOTHING RETURNING id::text",
        vec![
            P::Str(tenant.clone()),
            P::Str(source.into()),
            P::Str(event_id.clone()),
            P::Binary(body.clone()),
            pg::opt_str(content_type.as_deref()),
            pg::opt_str(event_type.as_deref()),
            pg::opt_str(handed_off.then_some("pending")),
        ],
    )
    .await?;
    let (id, duplicate, status) = match inserted {
        Some(row) => (
            pg::text(&row, 0),
            false,
            handed_off.then(|| "pending".to_string()),
        ),
        None => {
            let row = pg::one(
                &db,
                "stored webhook event",
                "SELECT id::text, handoff_status FROM webhook_events \
                 WHERE tenant_id = $1 AND source = $2 AND event_id = $3",
                vec![
                    P::Str(tenant.clone()),
                    P::Str(source.into()),
                    P::Str(event_id.clone()),
                ],
            )
            .await?;
            match row {
                Some(r) => (pg::text(&r, 0), true, pg::opt_text(&r, 1)),
                None => (String::new(), true, None),
            }
        }
    };
    let mut answer =
        json!({ "id": id, "source": source, "event_id": event_id, "duplicate": duplicate });
    // Stored first; then handed on — again on a retry of an event whose hand-off failed.
    if matches!(status.as_deref(), Some("pending" | "failed")) {
        let result = handoff::run(&db, &id, source, &tenant, &body).await?;
        answer["handoff"] = json!({ "status": result.outcome.as_str(), "detail": result.detail });
        if result.outcome == tessera_alerting::handoff::Outcome::Failed {
            eprintln!(
                "webhooks {rid}: {source}: hand-off of {id} failed: {}",
                result.detail
            );
            // The sender retries on a 5xx; its retry (the same event id) tries again.
            let mut err = ApiError::new(
                503,
                "handoff_failed",
                "the event is stored; handing it on failed, send it again later",
            );
            err.retry_after = Some(30);
            return Err(err);
        }
    } else if let Some(status) = status {
        answer["handoff"] = json!({ "status": status });
    }
    Ok((StatusCode::OK, answer))
}
