//! `POST /v1/messages/{id}/feedback`: one current rating per user and message; a later one
//! replaces it in the same transaction and the replaced row stays as history.

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_feedback::Rating;
use tessera_spin_kit::{ApiError, StatusCode, connect, connect_across_tenants, read_json_body};

use crate::db::{self, P};
use crate::identity;
use crate::token::{self, Carrier};

const BODY_LIMIT: usize = 64 * 1024;
pub const MAX_COMMENT_CHARS: usize = 2_000;
pub const MAX_EDITED_CHARS: usize = 20_000;
const MAX_TAGS: usize = 10;
const MAX_TAG_CHARS: usize = 40;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFeedback {
    /// Thumbs up or down.
    #[schemars(extend("enum" = ["up", "down"]))]
    rating: String,
    /// How good the answer was, from 0 to 1.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1))]
    score: Option<f64>,
    /// The answer as it should have been (a correction), at most 20000 characters.
    #[serde(default)]
    #[schemars(length(max = 20_000))]
    edited_text: Option<String>,
    /// At most 2000 characters.
    #[serde(default)]
    #[schemars(length(max = 2_000))]
    comment: Option<String>,
    /// At most 10 tags, each 1-40 letters, digits, spaces or `-_:.` (lower-cased).
    #[serde(default)]
    #[schemars(length(max = 10))]
    tags: Option<Vec<String>>,
    /// A presigned feedback token, for clients that cannot set `authorization` (sendBeacon).
    #[serde(default)]
    token: Option<String>,
}

/// A validated rating, ready to store.
struct Valid {
    rating: Rating,
    score: Option<f64>,
    edited_text: Option<String>,
    comment: Option<String>,
    tags: Vec<String>,
}

fn validate(f: NewFeedback) -> Result<Valid, ApiError> {
    let rating = Rating::parse(f.rating.trim()).ok_or_else(|| {
        ApiError::invalid(
            "rating",
            format!(
                "expected \"up\" or \"down\", got {}",
                tessera_api::echo(&f.rating)
            ),
        )
    })?;
    if let Some(s) = f.score
        && !(s.is_finite() && (0.0..=1.0).contains(&s))
    {
        return Err(ApiError::invalid("score", "expected a number from 0 to 1"));
    }
    let text = |v: Option<String>, field: &str, max: usize| -> Result<Option<String>, ApiError> {
        let Some(t) = v.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if t.chars().count() > max {
            return Err(ApiError::too_large(
                Some(field),
                format!("`{field}` is longer than {max} characters"),
            ));
        }
        Ok(Some(t))
    };
    let edited_text = text(f.edited_text, "edited_text", MAX_EDITED_CHARS)?;
    let comment = text(f.comment, "comment", MAX_COMMENT_CHARS)?;
    let tags = f.tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut clean = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let t = t.trim().to_lowercase();
        let ok = !t.is_empty()
            && t.chars().count() <= MAX_TAG_CHARS
            && t.chars()
                .all(|c| c.is_alphanumeric() || "-_:. ".contains(c));
        if !ok {
            return Err(ApiError::invalid(
                &format!("tags[{i}]"),
                format!("a tag is 1-{MAX_TAG_CHARS} letters, digits, spaces or -_:."),
            ));
        }
        if !clean.contains(&t) {
            clean.push(t);
        }
    }
    Ok(Valid {
        rating,
        score: f.score,
        edited_text,
        comment,
        tags: clean,
    })
}

/// The answer for a message that is missing or not the caller's to see.
pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found("message_not_found", format!("no message with id {id:?}"))
        .with_field("message_id")
}

/// The rated message, as the rater may see it.
pub struct Target {
    pub id: String,
    pub tenant: String,
    pub conversation: String,
    pub owner: String,
}

/// The message `id` if it is an assistant message the caller may rate: within `tenant` (when
/// given; a token names the message itself), finished, and an answer.
pub async fn target(db: &Connection, id: &str, tenant: Option<&str>) -> Result<Target, ApiError> {
    let id = db::parse_uuid(id, "message_id")?;
    let row = db::one(
        db,
        "read message",
        "SELECT m.id::text, m.tenant_id, m.conversation_id::text, c.user_id, m.role, m.status
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.id = $1::uuid AND ($2::text IS NULL OR m.tenant_id = $2)",
        vec![P::Str(id.clone()), db::opt_str(tenant)],
    )
    .await?
    .ok_or_else(|| not_found(&id))?;
    if db::text(&row, 4) != "assistant" {
        return Err(ApiError::bad_request(
            "not_an_answer",
            "feedback is given on assistant messages (answers), and this is a user message",
            Some("message_id"),
        ));
    }
    if db::text(&row, 5) == "running" {
        return Err(ApiError::conflict(
            "answer_in_progress",
            "the answer is still being written; rate it after its finish event",
        )
        .with_field("message_id"));
    }
    Ok(Target {
        id: db::text(&row, 0),
        tenant: db::text(&row, 1),
        conversation: db::text(&row, 2),
        owner: db::text(&row, 3),
    })
}

pub async fn post(req: Request, id: &str) -> crate::Handled {
    let header_token = token::bearer(
        req.headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
    )?;
    let caller = identity::caller(&req);
    let body = read_json_body(req, BODY_LIMIT).await?;
    let mut f: NewFeedback = tessera_api::parse_json(&body)?;
    let presented = match (header_token, f.token.take()) {
        (Some(t), _) => Some((t, Carrier::Header)),
        (None, Some(t)) => Some((t, Carrier::Body)),
        (None, None) => None,
    };
    let valid = validate(f)?;
    // With a token the message names its tenant, and the rater is the conversation's owner
    // (the token was handed to them with the answer); otherwise the trusted headers decide.
    let (target, user, via) = match &presented {
        Some((t, carrier)) => {
            token::check(t, *carrier, id).await?;
            // The token names the message, and the message its tenant.
            let target = target(&connect_across_tenants().await?, id, None).await?;
            let owner = target.owner.clone();
            (target, owner, "token")
        }
        None => {
            let caller = caller?;
            let target = target(&connect(&caller.tenant).await?, id, Some(&caller.tenant)).await?;
            // Members rate the answers they were given, like a token's holder.
            if !caller.may_act_for(&target.owner) {
                return Err(not_found(id));
            }
            (target, caller.user.clone(), "api")
        }
    };
    let db = connect(&target.tenant).await?;
    db::begin(&db).await?;
    let stored = store(&db, &target, &user, via, &valid).await;
    match stored {
        Ok(v) => {
            db::commit(&db).await?;
            let status = if v["replaced"].is_null() {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, v))
        }
        Err(e) => {
            db::rollback(&db).await;
            Err(e)
        }
    }
}

async fn store(
    db: &Connection,
    t: &Target,
    user: &str,
    via: &str,
    v: &Valid,
) -> Result<Value, ApiError> {
    // Serialises raters of one message: the replace below then never races another insert,
    // and the unique index `feedback_current` guards the invariant regardless.
    db::execute(
        db,
        "lock message",
        "SELECT 1 FROM messages WHERE id = $1::uuid FOR UPDATE",
        vec![P::Str(t.id.clone())],
    )
    .await?;
    let replaced = db::one(
        db,
        "replace feedback",
        "UPDATE feedback SET current = false, superseded_at = now() WHERE message_id = $1::uuid AND user_id = $2 AND current RETURNING id::text",
        vec![P::Str(t.id.clone()), P::Str(user.into())],
    )
    .await?
    .map(|r| db::text(&r, 0));
    let row = db::one(
        db,
        "insert feedback",
        &format!(
            "INSERT INTO feedback (tenant_id, message_id, conversation_id, user_id, rating, score, edited_text, comment, tags, via)
             VALUES ($1, $2::uuid, $3::uuid, $4, $5, $6, $7, $8, $9, $10)
             RETURNING {}",
            crate::view::COLUMNS
        ),
        vec![
            P::Str(t.tenant.clone()),
            P::Str(t.id.clone()),
            P::Str(t.conversation.clone()),
            P::Str(user.into()),
            P::Str(v.rating.as_str().into()),
            v.score.map_or(P::DbNull, P::Floating64),
            db::opt_str(v.edited_text.as_deref()),
            db::opt_str(v.comment.as_deref()),
            P::ArrayStr(v.tags.iter().map(|t| Some(t.clone())).collect()),
            P::Str(via.into()),
        ],
    )
    .await
    .map_err(|e| {
        // The database's words are in the logged detail only.
        if e.detail.as_deref().is_some_and(|d| d.contains("feedback_current")) {
            ApiError::conflict("feedback_conflict", "another rating of this message by the same user was stored at the same moment; retry")
        } else {
            e
        }
    })?
    .ok_or_else(|| ApiError::internal("insert feedback: no row returned"))?;
    crate::stats::refresh(db, &t.tenant, user).await?;
    let mut out = crate::view::feedback_json(&row);
    out["replaced"] = json!(replaced);
    Ok(out)
}
