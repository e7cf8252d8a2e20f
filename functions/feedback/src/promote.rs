//! `POST /v1/feedback/{id}/promote`: an operator approves a feedback's corrected answer; it
//! becomes a knowledge-base document in the `curated` scope (through the kb component, a
//! Spin self request), which the chat step ranks ahead of other sources. Promoting again
//! answers the same document.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{FullBody, Request};
use tessera_feedback::curated;
use tessera_spin_kit::outbound::send;
use tessera_spin_kit::{ApiError, StatusCode, connect, read_json_body};

use crate::db::{self, P};
use crate::identity::Caller;
use tessera_spin_kit::auth::Forward;

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FeedbackPromotion")]
pub struct Promotion {
    /// The document's title, 1-200 characters; default: the question.
    #[serde(default)]
    #[schemars(length(min = 1, max = 200))]
    title: Option<String>,
}

pub async fn post(req: Request, caller: &Caller, id: &str) -> crate::Handled {
    let body = read_json_body(req, 16 * 1024).await?;
    let promotion: Promotion = if body.iter().all(u8::is_ascii_whitespace) {
        Promotion::default()
    } else {
        tessera_api::parse_json(&body)?
    };
    if let Some(t) = &promotion.title
        && (t.trim().is_empty() || t.chars().count() > 200)
    {
        return Err(ApiError::invalid("title", "a title is 1-200 characters"));
    }
    let id = db::parse_uuid(id, "feedback_id")?;
    let db = connect(&caller.tenant).await?;
    let row = db::one(
        &db,
        "read feedback",
        "SELECT f.current, f.edited_text, f.promoted_document_id::text, f.message_id::text, coalesce(u.content, '')
         FROM feedback f JOIN messages a ON a.id = f.message_id LEFT JOIN messages u ON u.id = a.reply_to
         WHERE f.id = $1::uuid AND f.tenant_id = $2",
        vec![P::Str(id.clone()), P::Str(caller.tenant.clone())],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("feedback_not_found", format!("no feedback with id {id:?}")))?;
    if let Some(doc) = db::opt_text(&row, 2) {
        return Ok((
            StatusCode::OK,
            json!({ "feedback_id": id, "document_id": doc, "scope": curated::SCOPE, "already_promoted": true }),
        ));
    }
    if !db::boolean(&row, 0) {
        return Err(ApiError::conflict(
            "feedback_superseded",
            "this feedback was replaced by a later one from the same user; promote the current one",
        ));
    }
    let edited = db::opt_text(&row, 1).ok_or_else(|| {
        ApiError::bad_request(
            "nothing_to_promote",
            "this feedback has no edited answer to promote",
            Some("edited_text"),
        )
    })?;
    let (message_id, question) = (db::text(&row, 3), db::text(&row, 4));
    let title = promotion
        .title
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| question.chars().take(200).collect());
    // The question as the heading: chunks embed their heading, so the same question finds it.
    let document = json!({
        "title": title,
        "scope": curated::SCOPE,
        "content": format!("# {}\n\n{}", question.lines().next().unwrap_or_default(), edited),
        "metadata": { "source": "feedback", "feedback_id": id, "message_id": message_id },
    });
    let created = kb_ingest(&caller.forward, &document).await?;
    let doc = created["id"].as_str().unwrap_or_default().to_string();
    db::execute(
        &db,
        "mark promoted",
        "UPDATE feedback SET promoted_document_id = $2::uuid, promoted_by = $3, promoted_at = now() WHERE id = $1::uuid AND promoted_document_id IS NULL",
        vec![P::Str(id.clone()), P::Str(doc.clone()), P::Str(caller.user.clone())],
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        json!({ "feedback_id": id, "document_id": doc, "scope": curated::SCOPE, "chunks": created["chunks"], "already_promoted": false }),
    ))
}

async fn kb_ingest(who: &Forward, document: &Value) -> Result<Value, ApiError> {
    let unavailable = |e: String| ApiError::dependency("kb_unavailable", e);
    let mut req = http::Request::post("http://self/v1/kb/documents")
        .header("content-type", "application/json");
    // The operator's own key: the kb checks it again (ingest into `curated` needs an operator).
    for (name, value) in who.headers() {
        req = req.header(name, value);
    }
    let req = req
        .body(FullBody::new(Bytes::from(document.to_string())))
        .map_err(|e| unavailable(e.to_string()))?;
    let resp = send(req)
        .await
        .map_err(|e| unavailable(format!("POST /v1/kb/documents: {e:?}")))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .bytes()
        .await
        .map_err(|e| unavailable(format!("POST /v1/kb/documents: {e:?}")))?;
    if !status.is_success() {
        return Err(unavailable(format!(
            "POST /v1/kb/documents answered {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        )));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| unavailable(e.to_string()))?;
    if v["id"].as_str().is_none_or(str::is_empty) {
        return Err(unavailable("the kb answered no document id".into()));
    }
    Ok(v)
}
