//! `GET /v1/messages/{id}/feedback`: the current feedback on a message (one per user) and
//! the replaced ratings (history), newest first.

use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Row;
use tessera_spin_kit::{StatusCode, connect, connect_across_tenants};

use crate::db::{self, P};
use crate::token::{self, Carrier};
use crate::{identity, submit};

/// The columns [`feedback_json`] reads, in order.
pub const COLUMNS: &str = "id::text, message_id::text, conversation_id::text, user_id, rating, score, edited_text, comment,
    array_to_json(tags)::text, via, current, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
    to_char(superseded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), promoted_document_id::text";

pub fn feedback_json(r: &Row) -> Value {
    json!({
        "id": db::text(r, 0),
        "message_id": db::text(r, 1),
        "conversation_id": db::text(r, 2),
        "user_id": db::text(r, 3),
        "rating": db::text(r, 4),
        "score": db::opt_float(r, 5),
        "edited_text": db::opt_text(r, 6),
        "comment": db::opt_text(r, 7),
        "tags": db::json(r, 8),
        "via": db::text(r, 9),
        "current": db::boolean(r, 10),
        "created_at": db::text(r, 11),
        "superseded_at": db::opt_text(r, 12),
        "promoted_document_id": db::opt_text(r, 13),
    })
}

pub async fn get(req: &Request, id: &str) -> crate::Handled {
    // A browser may read back the feedback its token allows it to give.
    let target = match token::bearer(
        req.headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
    )? {
        Some(t) => {
            token::check(&t, Carrier::Header, id).await?;
            // The token names the message, and the message its tenant.
            submit::target(&connect_across_tenants().await?, id, None).await?
        }
        None => {
            let caller = identity::caller(req)?;
            let target =
                submit::target(&connect(&caller.tenant).await?, id, Some(&caller.tenant)).await?;
            if !caller.may_act_for(&target.owner) {
                return Err(submit::not_found(id));
            }
            target
        }
    };
    let db = connect(&target.tenant).await?;
    let rows = db::rows(
        &db,
        "read feedback",
        &format!("SELECT {COLUMNS} FROM feedback WHERE message_id = $1::uuid ORDER BY current DESC, created_at DESC"),
        vec![P::Str(target.id.clone())],
    )
    .await?;
    let (current, history): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| db::boolean(r, 10));
    Ok((
        StatusCode::OK,
        json!({
            "message_id": target.id,
            "conversation_id": target.conversation,
            "feedback": current.into_iter().map(feedback_json).collect::<Vec<_>>(),
            "history": history.into_iter().map(feedback_json).collect::<Vec<_>>(),
        }),
    ))
}
