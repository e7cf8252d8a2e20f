//! Handing a stored event to its capability (tessera_alerting::handoff): a self request
//! (`http://self/...`) to the picker's or the knowledge base's own API, as the source's
//! tenant with the service role — the source's API key (`webhook_<source>_api_key`) in
//! `keys` mode, the identity headers in `trusted-headers` mode — and the outcome recorded on
//! the event. A failed hand-off is tried again when the sender retries the same event.

use bytes::Bytes;
use serde_json::{Value, json};
use spin_sdk::http::FullBody;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::pg::Connection;
use tessera_alerting::handoff::{self, Outcome};
use tessera_spin_kit::ApiError;
use tessera_spin_kit::auth::{self, Mode, ROLE_HEADER, TENANT_HEADER, USER_HEADER};
use tessera_spin_kit::pg::{self, P};

/// What is kept of the capability's answer.
const ANSWER_KEPT: usize = 2048;

/// The outcome and what to record of it.
pub struct HandedOn {
    pub outcome: Outcome,
    pub detail: Value,
}

/// Hands `body` (stored as event `id`) to its capability and records the outcome.
pub async fn run(
    db: &Connection,
    id: &str,
    source: &str,
    tenant: &str,
    body: &[u8],
) -> Result<HandedOn, ApiError> {
    let result = send(source, tenant, body).await;
    pg::execute(
        db,
        "record hand-off",
        "UPDATE webhook_events SET handoff_status = $2, handoff_attempts = handoff_attempts + 1, \
           handoff_result = $3, \
           handed_off_at = CASE WHEN $2 = 'failed' THEN NULL ELSE now() END \
         WHERE id = $1::uuid",
        vec![
            P::Str(id.into()),
            P::Str(result.outcome.as_str().into()),
            pg::jsonb(&result.detail),
        ],
    )
    .await?;
    Ok(result)
}

async fn send(source: &str, tenant: &str, body: &[u8]) -> HandedOn {
    let plan = match handoff::plan(body) {
        Ok(plan) => plan,
        Err(e) => {
            return HandedOn {
                outcome: Outcome::Rejected,
                detail: json!({ "error": e.message() }),
            };
        }
    };
    let target = json!({ "method": plan.method, "path": plan.path });
    let failed = |why: String| HandedOn {
        outcome: Outcome::Failed,
        detail: json!({ "target": target, "error": why }),
    };
    let mut request = http::Request::builder()
        .method(plan.method)
        .uri(format!("http://self{}", plan.path))
        .header("content-type", "application/json");
    match auth::mode().await {
        Ok(Mode::TrustedHeaders) => {
            request = request
                .header(TENANT_HEADER, tenant)
                .header(ROLE_HEADER, "service")
                .header(USER_HEADER, format!("webhook-{source}"));
        }
        Ok(Mode::Keys) => {
            let var = format!("webhook_{}_api_key", source.replace('-', "_"));
            match spin_sdk::variables::get(&var).await {
                Ok(key) if !key.trim().is_empty() => {
                    request = request.header("authorization", format!("Bearer {}", key.trim()));
                }
                _ => {
                    return failed(format!(
                        "no API key to hand events on with: set the variable {var} to a \
                         service key of the tenant"
                    ));
                }
            }
        }
        Err(e) => return failed(e.message),
    }
    let payload = plan
        .body
        .as_ref()
        .map(|b| Bytes::from(b.to_string()))
        .unwrap_or_default();
    let request = match request.body(FullBody::new(payload)) {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let answer = async {
        let resp = tessera_spin_kit::outbound::send(request).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().bytes().await?;
        Ok::<_, spin_sdk::wasip3::http::types::ErrorCode>((status, bytes))
    };
    match answer.await {
        Ok((status, bytes)) => {
            let kept = &bytes[..bytes.len().min(ANSWER_KEPT)];
            let answer = serde_json::from_slice::<Value>(kept)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(kept).into_owned()));
            HandedOn {
                outcome: Outcome::of_status(Some(status)),
                detail: json!({ "target": target, "status": status, "answer": answer }),
            }
        }
        Err(e) => failed(format!("{e:?}")),
    }
}
