//! Whole turns in the response cache (tessera_progressive::replay, docs/adr/0020): looked up
//! by the turn's key before analysis, written and streamed in one statement on a hit, stored
//! after a turn that completed on a miss.

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_gateway::CallStatus;
use tessera_progressive::HistoryMessage;
use tessera_progressive::replay::{self, CACHE_KIND, StoredTurn, TurnKey};
use tessera_spin_kit::ApiError;

use crate::config::Settings;
use crate::db::{self, P};
use crate::identity::Caller;
use crate::profile::{self, Profile};
use crate::sse::Sink;
use crate::turn::Turn;

/// What a turn reads before it is looked up, and keeps for its own run on a miss.
pub struct Before {
    pub profile: Profile,
    pub history: Vec<HistoryMessage>,
    /// The response cache's key for this turn.
    pub key: String,
}

/// A stored turn that answers this one.
pub struct Hit {
    id: i64,
    turn: StoredTurn,
}

/// The profile, the history and the kb's generation, read together (pipelined on the
/// turn's connection), then the stored turn for the key they make, if any.
pub async fn look_up(
    settings: &Settings,
    db: &Connection,
    caller: &Caller,
    turn: &Turn,
    pinned: Option<&str>,
) -> Result<(Before, Option<Hit>), ApiError> {
    let (profile, history, generation) = futures::join!(
        profile::load(db, caller),
        crate::conversations::history(db, &turn.conversation_id, &turn.message_id),
        kb_generation(db, &caller.tenant)
    );
    let (profile, history, generation) = (profile?, history?, generation?);
    let routing = routing(settings, &profile, pinned);
    let key = TurnKey {
        tenant: &caller.tenant,
        question: &turn.question,
        scopes: &turn.scopes,
        history: &history,
        persona: profile.persona(),
        routing: &routing,
        kb_generation: generation,
    }
    .digest();
    let row = db::one(
        db,
        "read turn cache",
        "SELECT id, value::text FROM response_cache
         WHERE tenant_id = $1 AND step_kind = $2 AND cache_key = $3 AND expires_at > now()
         ORDER BY id DESC LIMIT 1",
        vec![
            P::Str(caller.tenant.clone()),
            P::Str(CACHE_KIND.into()),
            P::Str(key.clone()),
        ],
    )
    .await?;
    // A row this version cannot read is a miss, not an error: the turn runs and stores anew.
    let hit = row.and_then(|r| {
        serde_json::from_value(db::json(&r, 1))
            .ok()
            .map(|turn| Hit {
                id: db::int(&r, 0),
                turn,
            })
    });
    Ok((
        Before {
            profile,
            history,
            key,
        },
        hit,
    ))
}

async fn kb_generation(db: &Connection, tenant: &str) -> Result<i64, ApiError> {
    let row = db::one(
        db,
        "read kb generation",
        "SELECT generation FROM kb_generations WHERE tenant_id = $1",
        vec![P::Str(tenant.into())],
    )
    .await?;
    Ok(row.map_or(0, |r| db::int(&r, 0)))
}

/// What picks the turn's models: the plan tier, a pinned or preferred model, the catalog and
/// routing policy, and which providers have a platform key or one of the user's own.
fn routing(settings: &Settings, profile: &Profile, pinned: Option<&str>) -> Value {
    let platform: Vec<&str> = settings.keys.iter().map(|(p, _)| p.as_str()).collect();
    let own: Vec<&String> = profile.provider_keys.keys().collect();
    json!({
        "tier": format!("{:?}", profile.tier),
        "pinned": pinned.map(str::to_string).or_else(|| profile.preferred_model()),
        "catalog": settings.catalog,
        "policy": settings.routing,
        "platform_keys": platform,
        "own_keys": own,
    })
}

/// Writes the stored turn as this turn's steps and answer in one statement (nothing half
/// written), then streams its events and `finish`.
pub async fn serve(
    db: &Connection,
    caller: &Caller,
    mut turn: Turn,
    user_message: &str,
    hit: Hit,
    mut sink: Sink,
) {
    let stored = hit.turn;
    turn.sources = stored.sources.clone();
    turn.layout = stored.layout();
    turn.outputs = stored.outputs();
    let (answer, _) = turn.answer();
    let written = db::one(
        db,
        "replay turn",
        "WITH numbered AS (
             UPDATE conversations SET next_step = next_step + $2, updated_at = now()
             WHERE id = $1::uuid RETURNING next_step - $2 AS first
         ), replayed AS (
             INSERT INTO steps (conversation_id, message_id, tenant_id, n, version, ordinal, kind, title, status,
                                inputs, output, output_text, provider, model, cache_hit, depends_on, finish_reason,
                                started_at, finished_at, duration_ms)
             SELECT $1::uuid, $3::uuid, $4, numbered.first + s.ordinal, 1, s.ordinal, s.kind, s.title, 'completed',
                    coalesce(s.inputs, '{}'), s.output, s.text, s.provider, s.model, s.cache,
                    ARRAY(SELECT numbered.first + d::int4 FROM jsonb_array_elements_text(s.depends_on) AS d)::int4[],
                    s.finish_reason, now(), now(), 0
             FROM numbered, jsonb_to_recordset($5::jsonb) AS s(ordinal int4, kind text, title text, inputs jsonb,
                  output jsonb, text text, provider text, model text, cache text, depends_on jsonb,
                  finish_reason text, paid boolean)
             RETURNING id, kind, provider, model, cache_hit, finish_reason
         ), calls AS (
             INSERT INTO llm_calls (tenant_id, user_id, conversation_id, message_id, step_id, step_kind, provider,
                                    model, cache_hit, status, http_status, finish_reason)
             SELECT $4, $13, $1::uuid, $3::uuid, id, kind, provider, model, cache_hit, $14, 200, finish_reason
             FROM replayed WHERE cache_hit = 'exact'
         ), answered AS (
             UPDATE messages SET status = 'completed', content = $6, analysis = $7, sources = $8, persona = $9,
                 finish_reason = 'complete', updated_at = now()
             WHERE id = $3::uuid
         ), asked AS (
             UPDATE messages SET embedding = coalesce($10::vector, embedding) WHERE id = $11::uuid
         ), counted AS (
             UPDATE response_cache SET hits = hits + 1 WHERE id = $12
         )
         SELECT first FROM numbered",
        vec![
            P::Str(turn.conversation_id.clone()),
            P::Int32(stored.steps.len() as i32),
            P::Str(turn.message_id.clone()),
            P::Str(caller.tenant.clone()),
            db::jsonb(&replay::step_rows(&stored)),
            P::Str(answer),
            db::jsonb(&stored.analysis),
            db::jsonb(&serde_json::to_value(&stored.sources).unwrap_or_default()),
            P::Str(stored.persona.clone()),
            stored
                .question_embedding
                .as_deref()
                .map_or(P::DbNull, |e| P::Str(db::vector_text(e))),
            P::Str(user_message.into()),
            P::Int64(hit.id),
            P::Str(caller.user.clone()),
            P::Str(CallStatus::Ok.as_str().into()),
        ],
    )
    .await;
    let first = match written {
        Ok(Some(row)) => db::int(&row, 0),
        Ok(None) => {
            let e = ApiError::not_found("conversation_not_found", "the conversation was deleted");
            return turn
                .finish(db, sink, Err(crate::turn::Stop::Error(e)))
                .await;
        }
        Err(e) => {
            return turn
                .finish(db, sink, Err(crate::turn::Stop::Error(e)))
                .await;
        }
    };
    for event in replay::step_events(&stored, first) {
        sink.send(&event).await;
    }
    turn.send_finish(sink, "completed", Some("complete".into()))
        .await;
}

/// Stores a turn that completed, when it may be stored (`Turn::stored`). A failure is
/// logged, never the turn's: the answer is already complete.
pub async fn store(db: &Connection, turn: &Turn, key: &str) {
    let stored = match turn.stored(turn.question_embedding.clone()) {
        Ok(s) => s,
        Err(_why) => return,
    };
    let Some(first_paid) = stored.steps.iter().find(|s| s.paid()) else {
        return;
    };
    let result = db::execute(
        db,
        "store turn",
        "INSERT INTO response_cache (tenant_id, step_kind, cache_key, provider, model, value, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
        vec![
            P::Str(turn.tenant.clone()),
            P::Str(CACHE_KIND.into()),
            P::Str(key.into()),
            P::Str(first_paid.provider.clone()),
            P::Str(first_paid.model.clone()),
            db::jsonb(&serde_json::to_value(&stored).unwrap_or_default()),
            P::Int64(replay::lifetime(&stored.steps).as_secs() as i64),
        ],
    )
    .await;
    if let Err(e) = result
        && let Some(line) = e.log_line(turn.request_id.as_deref())
    {
        eprintln!("chat: the turn was answered but not cached: {line}");
    }
}
