//! Inbound webhooks: `POST /v1/webhooks/{source}`.
//!
//! Each source has a scheme and secrets in component variables: `webhook_<source>_scheme`
//! (`standard_webhooks`, `github` or `stripe`) and `webhook_<source>_secret` (one secret, or
//! several separated by spaces during a rotation); `-` in a source name reads as `_`. The
//! raw body is verified with tessera-alerting (constant-time, 5-minute timestamp tolerance),
//! then stored in `webhook_events` under the sender's event id: a replay of an event already
//! stored answers 200 and stores nothing. Every verification failure, an unknown source
//! included, is a bare 401 so a prober learns nothing; the reason goes to the log.

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
    let tenant = tenant(&req)?;
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
    let db = tessera_spin_kit::connect().await?;
    let inserted = pg::one(
        &db,
        "store webhook event",
        "INSERT INTO webhook_events (tenant_id, source, event_id, body, content_type) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, source, event_id) DO NOTHING \
         RETURNING id::text",
        vec![
            P::Str(tenant.clone()),
            P::Str(source.into()),
            P::Str(event_id.clone()),
            P::Binary(body),
            pg::opt_str(content_type.as_deref()),
        ],
    )
    .await?;
    let (id, duplicate) = match inserted {
        Some(row) => (pg::text(&row, 0), false),
        None => {
            let row = pg::one(
                &db,
                "stored webhook event",
                "SELECT id::text FROM webhook_events WHERE tenant_id = $1 AND source = $2 AND event_id = $3",
                vec![P::Str(tenant), P::Str(source.into()), P::Str(event_id.clone())],
            )
            .await?;
            (row.map(|r| pg::text(&r, 0)).unwrap_or_default(), true)
        }
    };
    Ok((
        StatusCode::OK,
        json!({ "id": id, "source": source, "event_id": event_id, "duplicate": duplicate }),
    ))
}
