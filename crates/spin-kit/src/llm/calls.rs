//! `llm_calls` rows: every model call (each attempt, cached, local and refused ones), with
//! who it was for and which step asked.

use spin_sdk::pg::Connection;
use tessera_gateway::LlmCall;

use crate::ApiError;
use crate::pg::{self as db, P};

/// Who a call was made for and which step made it (chat fills the conversation fields).
pub struct CallOwner<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub conversation_id: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub step_id: Option<i64>,
    pub step_kind: Option<&'a str>,
}

/// Inserts one `llm_calls` row.
pub async fn record(
    db: &Connection,
    owner: &CallOwner<'_>,
    call: &LlmCall,
) -> Result<(), ApiError> {
    db::execute(
        db,
        "record llm call",
        "INSERT INTO llm_calls (tenant_id, user_id, conversation_id, message_id, step_id, step_kind, provider, model,
            input_tokens, output_tokens, usage_estimated, cost_micros, latency_ms, cache_hit, status, attempt, http_status, error, user_key,
            finish_reason)
         VALUES ($1, $2, $3::uuid, $4::uuid, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        vec![
            P::Str(owner.tenant.to_string()),
            P::Str(owner.user.to_string()),
            db::opt_str(owner.conversation_id),
            db::opt_str(owner.message_id),
            owner.step_id.map_or(P::DbNull, P::Int64),
            db::opt_str(owner.step_kind),
            P::Str(call.provider.clone()),
            P::Str(call.model.clone()),
            P::Int64(call.input_tokens as i64),
            P::Int64(call.output_tokens as i64),
            P::Boolean(call.usage_estimated),
            P::Int64(call.cost_micros as i64),
            P::Int32(call.latency_ms.min(i32::MAX as u64) as i32),
            P::Str(call.cache_hit.as_str().into()),
            P::Str(call.status.as_str().into()),
            P::Int32(call.attempt as i32),
            call.http_status.map_or(P::DbNull, |s| P::Int32(i32::from(s))),
            db::opt_str(call.error.as_deref()),
            P::Boolean(call.user_key),
            db::opt_str(call.finish_reason.as_ref().map(|r| r.as_str())),
        ],
    )
    .await
    .map(|_| ())
}
