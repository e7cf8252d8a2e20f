//! `POST /v1/chat/conversations`, `GET /v1/chat/conversations/{id}` and
//! `POST /v1/chat/conversations/{id}/messages` (the streamed turn).

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_progressive::stale;
use tessera_progressive::{ChatEvent, HistoryMessage, TurnLayout};
use tessera_spin_kit::{ApiError, StatusCode, connect, read_json_body};

use crate::config::Settings;
use crate::db::{self, P};
use crate::gateway::{Account, Gateway};
use crate::identity::Caller;
use crate::sse::Sink;
use crate::turn::{Stop, Turn};
use crate::{Answer, Handled, kb, profile, replay, store};

const BODY_LIMIT: usize = 64 * 1024;
/// The longest question accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 8_000;

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// At most 200 characters.
    #[serde(default)]
    #[schemars(length(max = 200))]
    title: Option<String>,
    /// `{"project": "…", "page": "/path"}`; a page adds its kb scope to searches.
    #[serde(default)]
    context: Option<serde_json::Map<String, Value>>,
}

pub async fn create(req: Request, caller: &Caller) -> Handled {
    let body = read_json_body(req, BODY_LIMIT).await?;
    let new: NewConversation = if body.iter().all(u8::is_ascii_whitespace) {
        NewConversation::default()
    } else {
        tessera_api::parse_json(&body)?
    };
    let title = new.title.unwrap_or_default();
    if title.chars().count() > 200 {
        return Err(ApiError::invalid("title", "at most 200 characters"));
    }
    let context = Value::Object(new.context.unwrap_or_default());
    if let Some(page) = context.get("page")
        && !page
            .as_str()
            .is_some_and(|p| p.starts_with('/') && p.len() <= 200)
    {
        return Err(ApiError::invalid(
            "context.page",
            "a page is a path starting with '/' (at most 200 characters)",
        ));
    }
    let db = connect(&caller.tenant).await?;
    let row = db::one(
        &db,
        "create conversation",
        "INSERT INTO conversations (tenant_id, user_id, title, context) VALUES ($1, $2, $3, $4)
         RETURNING id::text, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
        vec![P::Str(caller.tenant.clone()), P::Str(caller.user.clone()), P::Str(title.clone()), db::jsonb(&context)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("create conversation: no id returned"))?;
    Ok((
        StatusCode::CREATED,
        json!({ "id": db::text(&row, 0), "title": title, "context": context, "created_at": db::text(&row, 1) }),
    ))
}

pub async fn get(caller: &Caller, id: &str) -> Handled {
    let db = connect(&caller.tenant).await?;
    Ok((
        StatusCode::OK,
        store::conversation_view(&db, &caller.tenant, caller.owner_filter(), id).await?,
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NewChatMessage")]
pub struct NewMessage {
    /// The question: not empty, at most 8000 characters.
    #[schemars(length(min = 1, max = 8000))]
    content: String,
    /// `provider` or `provider/model` to use first for paid steps.
    #[serde(default)]
    model: Option<String>,
}

/// Marks the conversation's stale turns failed (cut off by a deadline, a disconnect or a
/// crash; see tessera_progressive::stale), so they never block it.
pub async fn close_stale(
    db: &Connection,
    conversation: &str,
    stale_after_s: u32,
) -> Result<(), ApiError> {
    let closed = db::one(
        db,
        "close stale turns",
        &stale::close_sql(true),
        vec![
            P::Int32(stale_after_s as i32),
            P::Str(stale::REASON.into()),
            P::Str(conversation.into()),
        ],
    )
    .await?;
    if let Some(r) = closed.filter(|r| db::int(r, 0) > 0) {
        eprintln!(
            "chat: closed {} stale turn(s) ({} steps) in conversation {conversation}",
            db::int(&r, 0),
            db::int(&r, 1)
        );
    }
    Ok(())
}

/// Refuses a second turn while one is being written (its steps would interleave). Callers
/// close stale turns first ([`close_stale`]), so only a live turn counts.
pub async fn ensure_idle(db: &Connection, conversation: &str) -> Result<(), ApiError> {
    let busy = db::one(
        db,
        "check running turn",
        "SELECT 1 FROM messages WHERE conversation_id = $1::uuid AND status = 'running'",
        vec![P::Str(conversation.into())],
    )
    .await?;
    match busy {
        Some(_) => Err(ApiError::conflict(
            "turn_running",
            "a reply in this conversation is still being written; wait for its finish event",
        )),
        None => Ok(()),
    }
}

pub fn scopes(context: &Value) -> Vec<String> {
    match context.get("page").and_then(Value::as_str) {
        Some(page) => vec!["global".into(), format!("page:{page}")],
        None => Vec::new(),
    }
}

pub async fn post_message(req: Request, caller: Caller, id: &str) -> Result<Answer, ApiError> {
    let body = read_json_body(req, BODY_LIMIT)
        .await
        .map_err(|e| e.with_field("content"))?;
    let msg: NewMessage = tessera_api::parse_json(&body)?;
    let content = msg.content.trim().to_string();
    if content.is_empty() {
        return Err(ApiError::invalid("content", "the message is empty"));
    }
    if content.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::too_large(
            Some("content"),
            format!("the message is longer than {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    if let Some(m) = &msg.model
        && (m.is_empty() || m.len() > 120)
    {
        return Err(ApiError::invalid(
            "model",
            "expected `provider` or `provider/model`",
        ));
    }
    let settings = Settings::load().await?;
    let db = connect(&caller.tenant).await?;
    let conv = store::conversation(&db, &caller.tenant, caller.owner_filter(), id).await?;
    close_stale(&db, &conv.id, settings.stale_after_s).await?;
    ensure_idle(&db, &conv.id).await?;
    // Both messages exist before the stream opens: `start` names them.
    db::begin(&db).await?;
    let inserted = insert_messages(&db, &caller, &conv.id, &content).await;
    let (user_message, message) = match inserted {
        Ok(ids) => ids,
        Err(e) => {
            db::rollback(&db).await;
            return Err(e);
        }
    };
    db::commit(&db).await?;
    let (sink, resp) = Sink::open(settings.heartbeat);
    let turn = Turn {
        tenant: caller.tenant.clone(),
        forward: caller.forward.clone(),
        request_id: caller.request.clone(),
        conversation_id: conv.id.clone(),
        message_id: message,
        question: content,
        question_embedding: None,
        part_embeddings: Vec::new(),
        history: Vec::new(),
        skill: Default::default(),
        scopes: scopes(&conv.context),
        analysis: None,
        sources: Vec::new(),
        plan: None,
        local_plan: false,
        layout: TurnLayout {
            steps: TurnLayout::head(),
        },
        rows: Default::default(),
        outputs: Default::default(),
        report: None,
        local_note: None,
        local_drafts: false,
        truncated: Default::default(),
        semantic_cache: true,
        totals: Default::default(),
        record: Default::default(),
    };
    spin_sdk::wasip3::spawn(run_message(
        settings,
        db,
        caller,
        turn,
        user_message,
        msg.model,
        sink,
    ));
    Ok(resp)
}

async fn insert_messages(
    db: &Connection,
    caller: &Caller,
    conversation: &str,
    content: &str,
) -> Result<(String, String), ApiError> {
    let user = db::one(
        db,
        "insert message",
        "INSERT INTO messages (conversation_id, tenant_id, role, content) VALUES ($1::uuid, $2, 'user', $3) RETURNING id::text",
        vec![P::Str(conversation.into()), P::Str(caller.tenant.clone()), P::Str(content.into())],
    )
    .await?
    .map(|r| db::text(&r, 0))
    .unwrap_or_default();
    let assistant = db::one(
        db,
        "insert message",
        "INSERT INTO messages (conversation_id, tenant_id, role, status, reply_to, created_at)
         VALUES ($1::uuid, $2, 'assistant', 'running', $3::uuid, clock_timestamp()) RETURNING id::text",
        vec![P::Str(conversation.into()), P::Str(caller.tenant.clone()), P::Str(user.clone())],
    )
    .await?
    .map(|r| db::text(&r, 0))
    .unwrap_or_default();
    Ok((user, assistant))
}

/// Earlier completed exchanges of the conversation, oldest first (the last ten).
pub async fn history(
    db: &Connection,
    conversation: &str,
    before: &str,
) -> Result<Vec<HistoryMessage>, ApiError> {
    let rows = db::rows(
        db,
        "read history",
        "SELECT u.content, a.content, u.embedding::text FROM messages a JOIN messages u ON u.id = a.reply_to
         WHERE a.conversation_id = $1::uuid AND a.status = 'completed' AND a.role = 'assistant'
           AND a.created_at < (SELECT created_at FROM messages WHERE id = $2::uuid)
         ORDER BY a.created_at DESC LIMIT 10",
        vec![P::Str(conversation.into()), P::Str(before.into())],
    )
    .await?;
    let mut out: Vec<HistoryMessage> = rows
        .iter()
        .map(|r| HistoryMessage {
            question: db::text(r, 0),
            answer: db::text(r, 1),
            embedding: db::opt_text(r, 2).and_then(|t| db::parse_vector(&t)),
        })
        .collect();
    out.reverse();
    Ok(out)
}

/// The account a turn is billed to.
pub async fn account(
    db: &Connection,
    settings: &Settings,
    caller: &Caller,
    pinned: Option<String>,
) -> Result<(Account, profile::Profile), ApiError> {
    let p = profile::load(db, caller).await?;
    let account = account_of(db, settings, caller, pinned, &p).await?;
    Ok((account, p))
}

/// The account of a caller whose profile `p` is already read.
async fn account_of(
    db: &Connection,
    settings: &Settings,
    caller: &Caller,
    pinned: Option<String>,
    p: &profile::Profile,
) -> Result<Account, ApiError> {
    let (month_tokens, month_cost_micros) = profile::month_usage(db, caller).await?;
    Ok(Account {
        tenant: caller.tenant.clone(),
        user: caller.user.clone(),
        tier: p.tier,
        monthly_budget_micros: p.monthly_budget_micros,
        month_tokens,
        month_cost_micros,
        user_keys: profile::user_keys(settings, caller, p),
        // A model the user's up-votes favour goes first unless the request names one.
        pinned: pinned.or_else(|| p.preferred_model()),
    })
}

async fn run_message(
    settings: Settings,
    db: Connection,
    caller: Caller,
    mut turn: Turn,
    user_message: String,
    pinned: Option<String>,
    mut sink: Sink,
) {
    sink.send(&ChatEvent::Start {
        conversation_id: turn.conversation_id.clone(),
        message_id: turn.message_id.clone(),
        user_message_id: Some(user_message.clone()),
        edit_of: None,
    })
    .await;
    // The whole turn from the cache, before analysis (docs/adr/0020).
    let before = match replay::look_up(&settings, &db, &caller, &turn, pinned.as_deref()).await {
        Ok((_, Some(hit))) => {
            return replay::serve(&db, &caller, turn, &user_message, hit, sink).await;
        }
        Ok((before, None)) => before,
        Err(e) => return turn.finish(&db, sink, Err(Stop::Error(e))).await,
    };
    let prepared = prepare(
        &settings,
        &db,
        &caller,
        &mut turn,
        &user_message,
        pinned,
        &before,
    )
    .await;
    let result = match prepared {
        Ok(account) => {
            let mut gw = Gateway {
                settings: &settings,
                db: &db,
                account,
            };
            turn.run_all(&mut gw, &mut sink).await
        }
        Err(e) => Err(Stop::Error(e)),
    };
    if result.is_ok() {
        replay::store(&db, &turn, &before.key).await;
    }
    turn.finish(&db, sink, result).await;
}

async fn prepare(
    settings: &Settings,
    db: &Connection,
    caller: &Caller,
    turn: &mut Turn,
    user_message: &str,
    pinned: Option<String>,
    before: &replay::Before,
) -> Result<Account, ApiError> {
    // The question and, when it has several written-out parts, each part, in one request:
    // a part becomes a task of the local plan and is looked up in the cache by its own.
    let parts = tessera_progressive::plan::question_parts(&turn.question);
    let mut texts = vec![turn.question.clone()];
    if (2..=tessera_progressive::plan::MAX_LOCAL_PARTS).contains(&parts.len()) {
        texts.extend(parts.iter().cloned());
    }
    let mut vectors = kb::embed(&turn.forward, &texts).await?.into_iter();
    let embedding = vectors.next();
    turn.part_embeddings = texts.into_iter().skip(1).zip(vectors).collect();
    if let Some(e) = &embedding {
        db::execute(
            db,
            "store question embedding",
            "UPDATE messages SET embedding = $2::vector WHERE id = $1::uuid",
            vec![P::Str(user_message.into()), P::Str(db::vector_text(e))],
        )
        .await?;
    }
    turn.question_embedding = embedding;
    turn.history = before.history.clone();
    let account = account_of(db, settings, caller, pinned, &before.profile).await?;
    turn.skill = before.profile.persona();
    // The persona is recorded so feedback on this answer is credited to it.
    db::execute(
        db,
        "store persona",
        "UPDATE messages SET persona = $2 WHERE id = $1::uuid",
        vec![
            P::Str(turn.message_id.clone()),
            P::Str(turn.skill.as_str().into()),
        ],
    )
    .await?;
    turn.insert_rows(db, &[0, 1]).await?;
    Ok(account)
}
