//! `POST /v1/kb/search`: the vector side (pgvector HNSW, cosine) and the text side
//! (Postgres full text ranked by Okapi BM25), each filtered by tenant, scope and metadata
//! inside its index scan, fused by reciprocal rank fusion (k = 60) in `tessera-retrieval`.
//! Options: `group_by: "document"` (see `grouping`); a query of stop words only is
//! answered with a `notice`.

use crate::sql::{self, begin, commit};
use crate::{Answer, grouping, model, refused};
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::{Connection, ParameterValue as P};
use std::time::Instant;
use tessera_retrieval::{
    DEFAULT_RRF_K, FusedHit, GroupBy, RankedList, SearchMode, SearchRequest, only_stop_words,
    reciprocal_rank_fusion, search_sql, tsquery_terms,
};
use tessera_spin_kit::{ApiError, StatusCode, connect, read_json_body};

const BODY_LIMIT: usize = 64 * 1024;

/// How many candidates each side contributes before fusion: deep enough that a chunk ranked
/// moderately by both sides can win, bounded so the index scans stay short.
/// Grouped by document, several chunks of one document compete for a place: deeper still.
fn candidates(k: usize, mode: SearchMode, grouped: bool) -> usize {
    match (mode, grouped) {
        (_, true) => (k * 8).clamp(40, 400),
        (SearchMode::Hybrid, false) => (k * 4).clamp(20, 200),
        _ => k,
    }
}

/// Filters shared by both sides: `$1` is the tenant; scope and metadata clauses are added
/// only when the request has them, so the planner sees the simplest predicate.
struct Filters {
    sql: String,
    params: Vec<P>,
    /// The scope and metadata filters as SQL arguments (`$n::type` or `NULL`), for
    /// `kb_text_matches`.
    scopes_arg: String,
    metadata_arg: String,
}

impl Filters {
    fn new(tenant: &str, q: &SearchRequest, first_param: usize) -> Filters {
        let mut sql = format!("tenant_id = ${first_param}");
        let mut params = vec![P::Str(tenant.into())];
        let mut scopes_arg = "NULL".to_string();
        let mut metadata_arg = "NULL".to_string();
        if !q.scopes.is_empty() {
            scopes_arg = format!("${}::text[]", first_param + params.len());
            sql.push_str(&format!(" AND scope = ANY({scopes_arg})"));
            params.push(P::ArrayStr(
                q.scopes.iter().map(|s| Some(s.to_string())).collect(),
            ));
        }
        if !q.filter.is_empty() {
            metadata_arg = format!("${}::jsonb", first_param + params.len());
            sql.push_str(&format!(" AND metadata @> {metadata_arg}"));
            params.push(P::Jsonb(q.filter.to_json().to_string().into_bytes()));
        }
        Filters {
            sql,
            params,
            scopes_arg,
            metadata_arg,
        }
    }

    fn for_text(&self) -> search_sql::TextFilters<'_> {
        search_sql::TextFilters {
            predicate: &self.sql,
            scopes: &self.scopes_arg,
            metadata: &self.metadata_arg,
        }
    }
}

pub async fn search(req: Request, tenant: &str) -> Answer {
    let body = read_json_body(req, BODY_LIMIT).await?;
    let q = SearchRequest::from_json_bytes(&body).map_err(refused)?;
    q.check_tenant(tenant).map_err(refused)?;
    let grouped = q.group_by == Some(GroupBy::Document);
    let depth = candidates(q.k, q.mode, grouped);
    // Postgres drops English stop words: such a query has no text side at all.
    let stop_words_only = q.mode.uses_text() && only_stop_words(&q.query);
    let db = connect(tenant).await?;
    let mut timing = serde_json::Map::new();

    // A hybrid search sends its text SQL first and embeds the query while Postgres ranks
    // it: the embedding call blocks this instance but not the server, so the two run on the
    // two cores. The vector side's statements follow on the same connection, so a search
    // never holds one connection while it waits for another (docs/adr/0011).
    let run_text = q.mode.uses_text() && !stop_words_only;
    let run_vector = q.mode.uses_vector();
    let text = async {
        if !run_text {
            return Ok(None);
        }
        let t = Instant::now();
        let list = text_side(&db, tenant, &q, depth).await?;
        Ok::<_, ApiError>(Some((list, ms(t))))
    };
    let vector = async {
        if !run_vector {
            return Ok(None);
        }
        let mut timing = Vec::new();
        let query_vector = match &q.embedding {
            // The caller embedded the query already (the chat step does, once per turn).
            Some(given) => given.clone(),
            None => {
                let t = Instant::now();
                let v = model::embed(&[q.query.as_str()])?.remove(0);
                timing.push(("embed_ms", ms(t)));
                v
            }
        };
        let t = Instant::now();
        let list = vector_side(&db, tenant, &q, &query_vector, depth).await?;
        timing.push(("vector_ms", ms(t)));
        Ok::<_, ApiError>(Some((list, timing)))
    };
    let (text, vector) = futures::join!(text, vector);
    let mut lists: Vec<RankedList<i64>> = Vec::new();
    if let Some((list, times)) = vector? {
        lists.push(list);
        for (name, value) in times {
            timing.insert(name.into(), value);
        }
    }
    if let Some((list, time)) = text? {
        lists.push(list);
        timing.insert("text_ms".into(), time);
    }

    let fused = reciprocal_rank_fusion(&lists, DEFAULT_RRF_K);
    let results = if grouped {
        grouping::by_document(&db, &fused, q.k).await?
    } else {
        let top: Vec<_> = fused.into_iter().take(q.k).collect();
        let ids: Vec<Option<i64>> = top.iter().map(|h| Some(h.id)).collect();
        let details = chunk_details(&db, ids).await?;
        top.iter()
            .filter_map(|hit| {
                let chunk = details.iter().find(|(id, _)| *id == hit.id)?.1.clone();
                Some(with_match(chunk, hit))
            })
            .collect()
    };
    let mut answer = json!({
        "query": q.query,
        "mode": q.mode.as_str(),
        "k": q.k,
        "results": results,
        "timing": timing,
    });
    if grouped {
        answer["group_by"] = json!("document");
    }
    if stop_words_only {
        answer["notice"] = json!("query_has_only_stop_words");
        answer["notice_message"] = json!(
            "every word of the query is an English stop word, which full-text search ignores: \
             the text side found nothing; add a content word, or use mode \"vector\""
        );
    }
    Ok((StatusCode::OK, answer))
}

/// A chunk as a result: its fused score and where each side ranked it.
pub fn with_match(mut chunk: Value, hit: &FusedHit<i64>) -> Value {
    chunk["score"] = json!(hit.score);
    let mut why = serde_json::Map::new();
    for s in &hit.sources {
        why.insert(
            s.source.clone(),
            json!({ "rank": s.rank, "score": s.score }),
        );
    }
    chunk["matched"] = Value::Object(why);
    chunk
}

fn ms(t: Instant) -> Value {
    json!((t.elapsed().as_secs_f64() * 1e4).round() / 10.0)
}

/// HNSW candidate list size (pgvector's default is 40).
const EF_SEARCH: usize = 100;

/// Nearest chunks by cosine distance. pgvector 0.8's iterative scan keeps walking the HNSW
/// graph until enough rows pass the filters, instead of returning fewer than asked.
async fn vector_side(
    db: &Connection,
    tenant: &str,
    q: &SearchRequest,
    query_vector: &[f32],
    depth: usize,
) -> Result<RankedList<i64>, ApiError> {
    let filters = Filters::new(tenant, q, 2);
    let sql = search_sql::vector_side(&filters.sql, depth);
    let mut params = vec![P::Str(sql::vector_text(query_vector))];
    params.extend(filters.params);
    begin(db).await?;
    // Transaction-local settings (set_config(..., true)), so a pooled connection is left as
    // found; one statement for both. ef_search 100: over 100k chunks recall@10 against an
    // exact scan measured 0.949 at pgvector's default 40 and 0.972 at 100 for the same SQL
    // time (benches/README.md).
    sql::execute(
        db,
        "configure scan",
        &format!(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', '{}', true)",
            depth.max(EF_SEARCH)
        ),
        vec![],
    )
    .await?;
    let rows = sql::rows(db, "vector search", &sql, params).await?;
    commit(db).await?;
    // relaxed_order may return neighbours slightly out of order; sort by the distance.
    let mut hits: Vec<(i64, f64)> = rows
        .iter()
        .map(|r| (sql::int(r, 0), 1.0 - sql::float(r, 1)))
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(RankedList::new("vector", hits))
}

/// Full text ranked by Okapi BM25 over bounded candidates ([`search_sql::text_side`]).
async fn text_side(
    db: &Connection,
    tenant: &str,
    q: &SearchRequest,
    depth: usize,
) -> Result<RankedList<i64>, ApiError> {
    if tsquery_terms(&q.query).is_none() {
        return Ok(RankedList::new("text", Vec::new()));
    }
    // $1 the query, $2 the tenant (first of the filters).
    let filters = Filters::new(tenant, q, 2);
    let sql = search_sql::text_side(&filters.for_text(), depth, search_sql::MAX_TEXT_CANDIDATES);
    let mut params = vec![P::Str(q.query.clone())];
    params.extend(filters.params);
    let rows = sql::rows(db, "text search", &sql, params).await?;
    Ok(RankedList::new(
        "text",
        rows.iter()
            .map(|r| (sql::int(r, 0), sql::float(r, 1)))
            .collect(),
    ))
}

pub async fn chunk_details(
    db: &Connection,
    ids: Vec<Option<i64>>,
) -> Result<Vec<(i64, Value)>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sql::rows(
        db,
        "read chunks",
        "SELECT c.id, c.document_id::text, d.title, c.heading, c.content, c.ordinal, c.scope, c.metadata
         FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id
         WHERE c.id = ANY($1::int8[])",
        vec![P::ArrayInt64(ids)],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let id = sql::int(r, 0);
            (
                id,
                json!({
                    "chunk_id": id,
                    "document_id": sql::text(r, 1),
                    "title": sql::text(r, 2),
                    "heading": sql::text(r, 3),
                    "content": sql::text(r, 4),
                    "ordinal": sql::int(r, 5),
                    "scope": sql::text(r, 6),
                    "metadata": sql::json(r, 7),
                }),
            )
        })
        .collect())
}
