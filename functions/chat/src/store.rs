//! Conversations, messages and steps in Postgres.

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_progressive::events::StepTotals;
use tessera_progressive::{StepKind, StepStatus};
use tessera_spin_kit::ApiError;

use crate::db::{self, P};

pub struct Conversation {
    pub id: String,
    pub context: Value,
}

/// The conversation if it exists, belongs to the caller's tenant and, with `owner`, to that
/// user (members see only their own; another user's answers 404 like a missing one).
pub async fn conversation(
    db: &Connection,
    tenant: &str,
    owner: Option<&str>,
    id: &str,
) -> Result<Conversation, ApiError> {
    let id = db::parse_uuid(id, "conversation_id")?;
    let row = db::one(
        db,
        "read conversation",
        "SELECT id::text, context::text FROM conversations
         WHERE id = $1::uuid AND tenant_id = $2 AND ($3::text IS NULL OR user_id = $3)",
        vec![
            P::Str(id.clone()),
            P::Str(tenant.into()),
            db::opt_str(owner),
        ],
    )
    .await?;
    let row = row.ok_or_else(|| {
        ApiError::not_found(
            "conversation_not_found",
            format!("no conversation with id {id:?}"),
        )
    })?;
    Ok(Conversation {
        id: db::text(&row, 0),
        context: db::json(&row, 1),
    })
}

/// Reserves `count` step numbers; returns the first.
pub async fn allocate_steps(
    db: &Connection,
    conversation: &str,
    count: usize,
) -> Result<i64, ApiError> {
    let row = db::one(
        db,
        "number steps",
        "UPDATE conversations SET next_step = next_step + $2, updated_at = now() WHERE id = $1::uuid RETURNING next_step - $2",
        vec![P::Str(conversation.into()), P::Int32(count as i32)],
    )
    .await?;
    Ok(row.map(|r| db::int(&r, 0)).unwrap_or(1))
}

pub struct NewStep<'a> {
    pub conversation: &'a str,
    pub message: &'a str,
    pub tenant: &'a str,
    pub n: i64,
    pub version: i32,
    pub ordinal: usize,
    pub kind: StepKind,
    pub title: &'a str,
    pub status: StepStatus,
    pub inputs: Value,
    pub depends_on: Vec<i64>,
}

pub async fn insert_step(db: &Connection, s: NewStep<'_>) -> Result<i64, ApiError> {
    let row = db::one(
        db,
        "insert step",
        "INSERT INTO steps (conversation_id, message_id, tenant_id, n, version, ordinal, kind, title, status, inputs, depends_on, started_at)
         VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11::int4[], CASE WHEN $9 = 'running' THEN now() END)
         RETURNING id",
        vec![
            P::Str(s.conversation.into()),
            P::Str(s.message.into()),
            P::Str(s.tenant.into()),
            P::Int32(s.n as i32),
            P::Int32(s.version),
            P::Int32(s.ordinal as i32),
            P::Str(s.kind.as_str().into()),
            P::Str(s.title.into()),
            P::Str(s.status.as_str().into()),
            db::jsonb(&s.inputs),
            P::ArrayInt32(s.depends_on.iter().map(|d| Some(*d as i32)).collect()),
        ],
    )
    .await?;
    Ok(row.map(|r| db::int(&r, 0)).unwrap_or_default())
}

pub async fn start_step(db: &Connection, id: i64, inputs: &Value) -> Result<(), ApiError> {
    db::execute(
        db,
        "start step",
        "UPDATE steps SET status = 'running', started_at = now(), inputs = inputs || $2 WHERE id = $1",
        vec![P::Int64(id), db::jsonb(inputs)],
    )
    .await
    .map(|_| ())
}

/// What a finished step stores.
pub struct Finished<'a> {
    pub status: StepStatus,
    pub output: Option<Value>,
    pub text: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub totals: StepTotals,
    pub cache: &'a str,
    pub error: Option<&'a str>,
    /// Why the model stopped (paid steps): tessera-gateway's `FinishReason::as_str`.
    pub finish_reason: Option<&'a str>,
}

pub async fn finish_step(db: &Connection, id: i64, f: Finished<'_>) -> Result<(), ApiError> {
    db::execute(
        db,
        "finish step",
        "UPDATE steps SET status = $2, output = $3, output_text = $4, provider = $5, model = $6, input_tokens = $7,
             output_tokens = $8, cost_micros = $9, cache_hit = $10, error = $11, finish_reason = $12, finished_at = now(),
             started_at = coalesce(started_at, now()),
             duration_ms = (extract(epoch FROM now() - coalesce(started_at, now())) * 1000)::int4
         WHERE id = $1",
        vec![
            P::Int64(id),
            P::Str(f.status.as_str().into()),
            f.output.as_ref().map_or(P::DbNull, db::jsonb),
            db::opt_str(f.text),
            db::opt_str(f.provider),
            db::opt_str(f.model),
            P::Int64(f.totals.input_tokens as i64),
            P::Int64(f.totals.output_tokens as i64),
            P::Int64(f.totals.cost_micros as i64),
            P::Str(f.cache.into()),
            db::opt_str(f.error),
            db::opt_str(f.finish_reason),
        ],
    )
    .await
    .map(|_| ())
}

/// Marks every unfinished current step of a message (after a failure or a disconnect).
pub async fn close_open_steps(
    db: &Connection,
    message: &str,
    status: StepStatus,
    reason: &str,
) -> Result<(), ApiError> {
    db::execute(
        db,
        "close steps",
        "UPDATE steps SET status = $2, error = coalesce(error, $3), finished_at = now()
         WHERE message_id = $1::uuid AND current AND status IN ('pending', 'running')",
        vec![
            P::Str(message.into()),
            P::Str(status.as_str().into()),
            P::Str(reason.into()),
        ],
    )
    .await
    .map(|_| ())
}

pub async fn finish_message(
    db: &Connection,
    message: &str,
    status: &str,
    content: &str,
    totals: StepTotals,
    error: Option<&str>,
    finish_reason: Option<&str>,
) -> Result<(), ApiError> {
    db::execute(
        db,
        "finish message",
        "UPDATE messages SET status = $2, content = $3, input_tokens = input_tokens + $4,
             output_tokens = output_tokens + $5, cost_micros = cost_micros + $6, error = $7, finish_reason = $8,
             updated_at = now()
         WHERE id = $1::uuid",
        vec![
            P::Str(message.into()),
            P::Str(status.into()),
            P::Str(content.into()),
            P::Int64(totals.input_tokens as i64),
            P::Int64(totals.output_tokens as i64),
            P::Int64(totals.cost_micros as i64),
            db::opt_str(error),
            db::opt_str(finish_reason),
        ],
    )
    .await
    .map(|_| ())
}

/// `GET /v1/chat/conversations/{id}`: messages and current steps (older versions listed
/// under each step).
pub async fn conversation_view(
    db: &Connection,
    tenant: &str,
    owner: Option<&str>,
    id: &str,
) -> Result<Value, ApiError> {
    let c = conversation(db, tenant, owner, id).await?;
    let head = db::one(
        db,
        "read conversation",
        "SELECT title, context::text, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), user_id
         FROM conversations WHERE id = $1::uuid",
        vec![P::Str(c.id.clone())],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("conversation_not_found", "the conversation was deleted"))?;
    let messages = db::rows(
        db,
        "read messages",
        "SELECT id::text, role, content, status, reply_to::text, input_tokens, output_tokens, cost_micros, error,
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), analysis::text, sources::text,
             finish_reason
         FROM messages WHERE conversation_id = $1::uuid ORDER BY created_at, role DESC",
        vec![P::Str(c.id.clone())],
    )
    .await?;
    let steps = db::rows(
        db,
        "read steps",
        &format!("{STEP_COLUMNS} WHERE conversation_id = $1::uuid ORDER BY n, version"),
        vec![P::Str(c.id.clone())],
    )
    .await?;
    let mut current: Vec<Value> = Vec::new();
    let mut older: Vec<Value> = Vec::new();
    for r in &steps {
        let v = step_json(r);
        if db::boolean(r, 22) {
            current.push(v);
        } else {
            older.push(v);
        }
    }
    for s in &mut current {
        let n = s["n"].clone();
        let versions: Vec<Value> = older.iter().filter(|o| o["n"] == n).cloned().collect();
        s["previous_versions"] = Value::Array(versions);
    }
    // Steps replaced by a re-plan keep their numbers but belong to no current layout.
    let superseded: Vec<Value> = older
        .iter()
        .filter(|o| !current.iter().any(|s| s["n"] == o["n"]))
        .cloned()
        .collect();
    let signer = crate::feedback_token::Signer::load().await;
    let messages: Vec<Value> = messages
        .iter()
        .map(|r| {
            let answered = db::text(r, 1) == "assistant" && db::text(r, 3) == "completed";
            let feedback_token = signer
                .as_ref()
                .filter(|_| answered)
                .map(|s| s.token(&db::text(r, 0)));
            json!({
                "id": db::text(r, 0),
                "role": db::text(r, 1),
                "content": db::text(r, 2),
                "status": db::text(r, 3),
                "reply_to": db::opt_text(r, 4),
                "input_tokens": db::int(r, 5),
                "output_tokens": db::int(r, 6),
                "cost_micros": db::int(r, 7),
                "cost_usd": db::int(r, 7) as f64 / 1e6,
                "error": db::opt_text(r, 8),
                "created_at": db::text(r, 9),
                "analysis": db::json(r, 10),
                "sources": db::json(r, 11),
                "finish_reason": db::opt_text(r, 12),
                "feedback_token": feedback_token,
            })
        })
        .collect();
    Ok(json!({
        "id": c.id,
        "title": db::text(&head, 0),
        "context": db::json(&head, 1),
        "created_at": db::text(&head, 2),
        "user_id": db::text(&head, 3),
        "messages": messages,
        "steps": current,
        "superseded_steps": superseded,
    }))
}

pub const STEP_COLUMNS: &str = "SELECT id, n, version, ordinal, kind, title, status, provider, model, input_tokens, output_tokens,
    cost_micros, cache_hit, depends_on, error, output::text, output_text, inputs::text,
    to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
    to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), duration_ms, message_id::text, current,
    finish_reason
    FROM steps";

pub fn step_json(r: &spin_sdk::pg::Row) -> Value {
    json!({
        "n": db::int(r, 1),
        "version": db::int(r, 2),
        "message_id": db::text(r, 21),
        "ordinal": db::int(r, 3),
        "kind": db::text(r, 4),
        "title": db::text(r, 5),
        "status": db::text(r, 6),
        "provider": db::opt_text(r, 7),
        "model": db::opt_text(r, 8),
        "input_tokens": db::int(r, 9),
        "output_tokens": db::int(r, 10),
        "cost_micros": db::int(r, 11),
        "cost_usd": db::int(r, 11) as f64 / 1e6,
        "cache": db::text(r, 12),
        "depends_on": db::int_array(r, 13),
        "error": db::opt_text(r, 14),
        "output": db::json(r, 15),
        "text": db::opt_text(r, 16),
        "inputs": db::json(r, 17),
        "started_at": db::opt_text(r, 18),
        "finished_at": db::opt_text(r, 19),
        "duration_ms": db::opt_int(r, 20),
        "finish_reason": db::opt_text(r, 23),
    })
}
