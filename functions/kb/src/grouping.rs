//! `group_by: "document"`: one result per document, its best chunk with the chunks just
//! before and after it as context (what a RAG prompt wants instead of an isolated chunk).

use crate::search::{chunk_details, with_match};
use crate::sql::{self, P};
use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_retrieval::{FusedHit, group_by_document};
use tessera_spin_kit::ApiError;

pub async fn by_document(
    db: &Connection,
    fused: &[FusedHit<i64>],
    k: usize,
) -> Result<Vec<Value>, ApiError> {
    if fused.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sql::rows(
        db,
        "read chunk documents",
        "SELECT id, document_id::text, ordinal FROM kb_chunks WHERE id = ANY($1::int8[])",
        vec![P::ArrayInt64(fused.iter().map(|h| Some(h.id)).collect())],
    )
    .await?;
    let place: Vec<(i64, String, i64)> = rows
        .iter()
        .map(|r| (sql::int(r, 0), sql::text(r, 1), sql::int(r, 2)))
        .collect();
    let document_of = |id: &i64| {
        place
            .iter()
            .find(|(c, _, _)| c == id)
            .map(|(_, d, _)| d.clone())
    };
    let groups = group_by_document(fused, document_of, k);
    let best: Vec<(String, i64)> = groups
        .iter()
        .filter_map(|g| {
            place
                .iter()
                .find(|(c, _, _)| *c == g.best.id)
                .map(|(_, d, o)| (d.clone(), *o))
        })
        .collect();
    let details = chunk_details(db, groups.iter().map(|g| Some(g.best.id)).collect()).await?;
    let neighbours = sql::rows(
        db,
        "read neighbouring chunks",
        "SELECT c.document_id::text, c.ordinal, c.heading, c.content, c.id
         FROM unnest($1::text[], $2::int4[]) AS b(document_id, ordinal)
         JOIN kb_chunks c ON c.document_id = b.document_id::uuid
          AND c.ordinal IN (b.ordinal - 1, b.ordinal + 1)",
        vec![
            P::ArrayStr(best.iter().map(|(d, _)| Some(d.clone())).collect()),
            P::ArrayInt32(best.iter().map(|(_, o)| Some(*o as i32)).collect()),
        ],
    )
    .await?;
    let neighbour = |doc: &str, ordinal: i64| {
        neighbours
            .iter()
            .find(|r| sql::text(r, 0) == doc && sql::int(r, 1) == ordinal)
            .map_or(Value::Null, |r| {
                json!({
                    "chunk_id": sql::int(r, 4),
                    "ordinal": ordinal,
                    "heading": sql::text(r, 2),
                    "content": sql::text(r, 3),
                })
            })
    };
    Ok(groups
        .iter()
        .filter_map(|g| {
            let chunk = details.iter().find(|(id, _)| *id == g.best.id)?.1.clone();
            let ordinal = chunk["ordinal"].as_i64()?;
            let mut result = with_match(chunk, &g.best);
            result["matched_chunks"] = json!(g.matched_chunks);
            result["context"] = json!({
                "before": neighbour(&g.document, ordinal - 1),
                "after": neighbour(&g.document, ordinal + 1),
            });
            Some(result)
        })
        .collect())
}
