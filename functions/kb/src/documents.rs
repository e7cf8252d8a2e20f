//! Documents: ingest (validate → chunk → embed when small → store in one transaction),
//! read, delete one, delete by filter.

use crate::sql::{self, begin, commit, rollback};
use crate::{Answer, model, refused};
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::{Connection, ParameterValue as P};
use tessera_retrieval::{
    ChunkConfig, DeleteFilter, NewDocument, Scope, chunk_document, content_hash, passage_text,
};
use tessera_spin_kit::{ApiError, StatusCode, connect, read_json_body};

/// Request bodies above this are refused before parsing; `content` itself is limited to
/// 5 MiB by `NewDocument` (JSON escaping can make the body larger than the text).
const BODY_LIMIT: usize = 8 << 20;

/// Documents with at most this many chunks are embedded during the request; larger ones
/// are queued for the embedding worker (in wasm a 200-token chunk takes roughly 0.1 s).
pub const INLINE_MAX_CHUNKS: usize = 8;

pub async fn create(req: Request, tenant: &str) -> Answer {
    let may_curate = crate::access::may_curate(&req);
    let body = read_json_body(req, BODY_LIMIT).await?;
    let doc = NewDocument::from_json_bytes(&body).map_err(refused)?;
    crate::access::check_scope(&doc.scope, may_curate)?;
    let db = connect(tenant).await?;
    store(&db, tenant, &doc, Embedding::InlineWhenSmall).await
}

/// When a new document's chunks are embedded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// During the request for at most [`INLINE_MAX_CHUNKS`] chunks, else by the worker.
    InlineWhenSmall,
    /// Always by the worker (bulk ingest: the request stays short whatever its size).
    Queued,
}

/// Validates the scope against the caller, chunks, embeds (when inline) and stores one
/// document in its own transaction; idempotent by content hash. 201 for a new document,
/// 200 with `duplicate: true` for content already there.
pub async fn store(
    db: &Connection,
    tenant: &str,
    doc: &NewDocument,
    embedding: Embedding,
) -> Answer {
    doc.scope.check_for(tenant).map_err(refused)?;
    let hash = content_hash(&doc.content).to_hex();
    let scope = doc.scope.to_string();

    if let Some(existing) = find_by_hash(db, tenant, &scope, &hash).await? {
        return Ok((StatusCode::OK, with_duplicate(existing, true)));
    }

    let embedder = model::embedder()?;
    let counter = |t: &str| embedder.count_tokens(t).unwrap_or(t.len());
    let chunks = chunk_document(&doc.content, &ChunkConfig::default(), &counter);
    if chunks.is_empty() {
        return Err(ApiError::invalid(
            "content",
            "`content` has no text to index",
        ));
    }
    let headings: Vec<String> = chunks
        .iter()
        .map(|c| c.context_prefix(Some(&doc.title)))
        .collect();
    let inline = embedding == Embedding::InlineWhenSmall && chunks.len() <= INLINE_MAX_CHUNKS;
    // Embedded before the transaction opens, so no lock is held while the model runs.
    let vectors: Vec<Option<String>> = if inline {
        let passages: Vec<String> = chunks
            .iter()
            .zip(&headings)
            .map(|(c, h)| passage_text(h, &c.text))
            .collect();
        model::embed(&passages)?
            .iter()
            .map(|v| Some(sql::vector_text(v)))
            .collect()
    } else {
        vec![None; chunks.len()]
    };

    let metadata = doc.metadata.to_string().into_bytes();
    begin(db).await?;
    let inserted = sql::rows(
        db,
        "insert document",
        "INSERT INTO kb_documents (tenant_id, title, scope, format, metadata, content, content_hash, status, chunk_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, scope, content_hash) DO NOTHING
         RETURNING id::text, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        vec![
            P::Str(tenant.into()),
            P::Str(doc.title.clone()),
            P::Str(scope.clone()),
            P::Str(doc.format.as_str().into()),
            P::Jsonb(metadata.clone()),
            P::Str(doc.content.clone()),
            P::Str(hash.clone()),
            P::Str(if inline { "ready" } else { "pending" }.into()),
            P::Int32(chunks.len() as i32),
        ],
    )
    .await;
    let (id, created_at) = match inserted {
        Ok(rows) if !rows.is_empty() => (sql::text(&rows[0], 0), sql::text(&rows[0], 1)),
        Ok(_) => {
            // A concurrent request stored the same content first: answer with that one.
            rollback(db).await;
            let existing = find_by_hash(db, tenant, &scope, &hash)
                .await?
                .ok_or_else(|| {
                    ApiError::conflict(
                        "conflict",
                        "the same content was being ingested concurrently; retry",
                    )
                })?;
            return Ok((StatusCode::OK, with_duplicate(existing, true)));
        }
        Err(e) => {
            rollback(db).await;
            return Err(e);
        }
    };
    let stored = store_chunks(
        db, &id, tenant, &scope, &metadata, &chunks, &headings, vectors, inline,
    )
    .await;
    if let Err(e) = stored {
        rollback(db).await;
        return Err(e);
    }
    commit(db).await?;

    Ok((
        StatusCode::CREATED,
        json!({
            "id": id,
            "title": doc.title,
            "scope": scope,
            "format": doc.format.as_str(),
            "metadata": doc.metadata,
            "status": if inline { "ready" } else { "pending" },
            "chunks": chunks.len(),
            "embedded": if inline { "inline" } else { "queued" },
            "content_hash": hash,
            "created_at": created_at,
            "duplicate": false,
        }),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn store_chunks(
    db: &Connection,
    id: &str,
    tenant: &str,
    scope: &str,
    metadata: &[u8],
    chunks: &[tessera_retrieval::Chunk],
    headings: &[String],
    vectors: Vec<Option<String>>,
    inline: bool,
) -> Result<(), ApiError> {
    // One statement for all chunks: arrays unnested in order.
    sql::execute(
        db,
        "insert chunks",
        "INSERT INTO kb_chunks (document_id, tenant_id, scope, metadata, ordinal, heading, content, token_count, embedding)
         SELECT $1::uuid, $2, $3, $4, c.ordinal, c.heading, c.content, c.tokens, c.embedding::vector
         FROM unnest($5::int4[], $6::text[], $7::text[], $8::int4[], $9::text[])
              AS c(ordinal, heading, content, tokens, embedding)",
        vec![
            P::Str(id.into()),
            P::Str(tenant.into()),
            P::Str(scope.into()),
            P::Jsonb(metadata.to_vec()),
            P::ArrayInt32(chunks.iter().map(|c| Some(c.ordinal as i32)).collect()),
            P::ArrayStr(headings.iter().map(|h| Some(h.clone())).collect()),
            P::ArrayStr(chunks.iter().map(|c| Some(c.text.clone())).collect()),
            P::ArrayInt32(chunks.iter().map(|c| Some(c.token_count as i32)).collect()),
            P::ArrayStr(vectors),
        ],
    )
    .await?;
    if !inline {
        sql::execute(
            db,
            "queue embedding jobs",
            "INSERT INTO embedding_jobs (chunk_id, document_id)
             SELECT id, document_id FROM kb_chunks WHERE document_id = $1::uuid ORDER BY ordinal",
            vec![P::Str(id.into())],
        )
        .await?;
        // Wakes workers blocked in LISTEN; delivered only if the transaction commits.
        sql::execute(db, "notify workers", "NOTIFY embedding_jobs", vec![]).await?;
    }
    Ok(())
}

async fn find_by_hash(
    db: &Connection,
    tenant: &str,
    scope: &str,
    hash: &str,
) -> Result<Option<Value>, ApiError> {
    let rows = sql::rows(
        db,
        "find document",
        &format!("{SELECT_DOCUMENT} WHERE tenant_id = $1 AND scope = $2 AND content_hash = $3"),
        vec![
            P::Str(tenant.into()),
            P::Str(scope.into()),
            P::Str(hash.into()),
        ],
    )
    .await?;
    Ok(rows.first().map(document_json))
}

/// The columns [`document_json`] reads, in its order.
macro_rules! document_columns {
    () => {
        "id::text, title, scope, format, metadata, status, chunk_count,
    content_hash, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
    (SELECT count(*) FROM kb_chunks c WHERE c.document_id = d.id AND c.embedding IS NOT NULL)"
    };
}

/// [`document_columns`] as a constant, for statements that add columns after them.
pub const DOCUMENT_COLUMNS: &str = document_columns!();

const SELECT_DOCUMENT: &str = concat!("SELECT ", document_columns!(), " FROM kb_documents d");

pub fn document_json(row: &spin_sdk::pg::Row) -> Value {
    json!({
        "id": sql::text(row, 0),
        "title": sql::text(row, 1),
        "scope": sql::text(row, 2),
        "format": sql::text(row, 3),
        "metadata": sql::json(row, 4),
        "status": sql::text(row, 5),
        "chunks": sql::int(row, 6),
        "content_hash": sql::text(row, 7),
        "created_at": sql::text(row, 8),
        "embedded_chunks": sql::int(row, 9),
    })
}

fn with_duplicate(mut doc: Value, duplicate: bool) -> Value {
    doc["duplicate"] = json!(duplicate);
    doc
}

/// A document id from the path: a UUID, or a 400 `invalid_id` naming `id`.
fn parse_id(id: &str) -> Result<String, ApiError> {
    tessera_api::parse_uuid(id, "id")
}

pub async fn get(id: &str, tenant: &str, with_chunks: bool) -> Answer {
    let id = parse_id(id)?;
    let db = connect(tenant).await?;
    let rows = sql::rows(
        &db,
        "read document",
        &format!("{SELECT_DOCUMENT} WHERE id = $1::uuid AND tenant_id = $2"),
        vec![P::Str(id.clone()), P::Str(tenant.into())],
    )
    .await?;
    let mut doc = rows
        .first()
        .map(document_json)
        .ok_or_else(|| not_found(&id))?;
    if with_chunks {
        let chunks = sql::rows(
            &db,
            "read chunks",
            "SELECT ordinal, heading, content, token_count, embedding IS NOT NULL
             FROM kb_chunks WHERE document_id = $1::uuid ORDER BY ordinal",
            vec![P::Str(id)],
        )
        .await?;
        doc["chunk_list"] = chunks
            .iter()
            .map(|r| {
                json!({
                    "ordinal": sql::int(r, 0),
                    "heading": sql::text(r, 1),
                    "content": sql::text(r, 2),
                    "tokens": sql::int(r, 3),
                    "embedded": matches!(r[4], spin_sdk::pg::DbValue::Boolean(true)),
                })
            })
            .collect();
    }
    Ok((StatusCode::OK, doc))
}

pub async fn delete(id: &str, tenant: &str, may_curate: bool) -> Answer {
    let id = parse_id(id)?;
    let db = connect(tenant).await?;
    // Chunks and queued jobs go with it (ON DELETE CASCADE), in the same statement. A curated
    // document is left alone (404) unless the caller may curate.
    let deleted = sql::execute(
        &db,
        "delete document",
        "DELETE FROM kb_documents WHERE id = $1::uuid AND tenant_id = $2 \
         AND (scope <> 'curated' OR $3)",
        vec![
            P::Str(id.clone()),
            P::Str(tenant.into()),
            P::Boolean(may_curate),
        ],
    )
    .await?;
    if deleted == 0 {
        return Err(not_found(&id));
    }
    Ok((StatusCode::OK, json!({ "id": id, "deleted": true })))
}

/// `POST /v1/kb/documents/delete`: every document of the caller matching the filter, with
/// its chunks and queued jobs (ON DELETE CASCADE), in one statement and so one transaction.
pub async fn delete_by_filter(req: Request, tenant: &str) -> Answer {
    let may_curate = crate::access::may_curate(&req);
    let body = read_json_body(req, BODY_LIMIT).await?;
    let filter = DeleteFilter::from_json_bytes(&body).map_err(refused)?;
    Scope::check_all_for(&filter.scopes, tenant).map_err(refused)?;
    for scope in &filter.scopes {
        crate::access::check_scope(scope, may_curate)?;
    }
    let mut conditions = vec!["tenant_id = $1".to_string()];
    if !may_curate {
        // "all" or a metadata filter never reaches curated documents for such a caller.
        conditions.push("scope <> 'curated'".to_string());
    }
    let mut params = vec![P::Str(tenant.into())];
    if !filter.scopes.is_empty() {
        params.push(P::ArrayStr(
            filter.scopes.iter().map(|s| Some(s.to_string())).collect(),
        ));
        conditions.push(format!("scope = ANY(${}::text[])", params.len()));
    }
    if !filter.filter.is_empty() {
        params.push(sql::jsonb(&filter.filter.to_json()));
        conditions.push(format!("metadata @> ${}::jsonb", params.len()));
    }
    if let Some(status) = filter.status {
        params.push(P::Str(status.as_str().into()));
        conditions.push(format!("status = ${}", params.len()));
    }
    let db = connect(tenant).await?;
    let deleted = sql::execute(
        &db,
        "delete documents",
        &format!(
            "DELETE FROM kb_documents WHERE {}",
            conditions.join(" AND ")
        ),
        params,
    )
    .await?;
    Ok((StatusCode::OK, json!({ "deleted": deleted })))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("document_not_found", format!("no document {id}"))
}
