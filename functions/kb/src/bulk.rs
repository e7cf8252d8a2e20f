//! `POST /v1/kb/documents/bulk`: NDJSON, one document per line. Each line is stored in its
//! own transaction exactly as a single ingest would be (idempotent by content hash), with
//! its chunks queued for the embedding worker so the request stays short; the answer lists
//! every line's outcome in order. A bad line is reported and the others still land.

use crate::documents::{Embedding, store};
use crate::{Answer, refused};
use serde_json::{Value, json};
use spin_sdk::http::Request;
use tessera_retrieval::bulk::TooManyLines;
use tessera_retrieval::{MAX_BULK_BYTES, parse_ndjson};
use tessera_spin_kit::{ApiError, StatusCode, connect, read_body};

/// NDJSON's media types, JSON's (a client that labels every body JSON), or none.
fn check_content_type(req: &Request) -> Result<(), ApiError> {
    let Some(given) = req.headers().get("content-type") else {
        return Ok(());
    };
    let given = given.to_str().unwrap_or("(not text)");
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        ""
        | "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/json" => Ok(()),
        _ => Err(ApiError {
            message: format!(
                "send NDJSON (one JSON document per line) with content-type: \
                 application/x-ndjson, not {}",
                tessera_api::echo(given)
            ),
            ..ApiError::unsupported_media_type(given)
        }),
    }
}

pub async fn ingest(req: Request, tenant: &str) -> Answer {
    check_content_type(&req)?;
    let may_curate = crate::access::may_curate(&req);
    let body = read_body(req, MAX_BULK_BYTES).await?;
    let lines = parse_ndjson(&body)
        .map_err(|e: TooManyLines| ApiError::too_large(Some("body"), e.to_string()))?;
    if lines.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "no documents: send one JSON document per line",
        ));
    }
    let db = connect(tenant).await?;
    let mut results: Vec<Value> = Vec::with_capacity(lines.len());
    let (mut created, mut duplicates, mut failed) = (0, 0, 0);
    for line in lines {
        let outcome = match line.document {
            Ok(doc) => match crate::access::check_scope(&doc.scope, may_curate) {
                Ok(()) => store(&db, tenant, &doc, Embedding::Queued).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(refused(e)),
        };
        results.push(match outcome {
            Ok((status, mut doc)) => {
                if status == StatusCode::CREATED {
                    created += 1;
                } else {
                    duplicates += 1;
                }
                doc["line"] = json!(line.line);
                doc["status_code"] = json!(status.as_u16());
                doc
            }
            Err(e) => {
                // A database that went away fails every later line too: stop and say so.
                if e.status == 503 {
                    return Err(e);
                }
                if let Some(log) = e.log_line(None) {
                    eprintln!("bulk line {}: {log}", line.line);
                }
                failed += 1;
                json!({
                    "line": line.line,
                    "status_code": e.status,
                    "error": e.to_json()["error"],
                })
            }
        });
    }
    Ok((
        StatusCode::OK,
        json!({
            "created": created,
            "duplicates": duplicates,
            "failed": failed,
            "results": results,
        }),
    ))
}
