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
    DEFAULT_RRF_K, FusedHit, GroupBy, RankedList, SearchMode, SearchRequest, bm25, only_stop_words,
    reciprocal_rank_fusion, tsquery_terms,
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
}

impl Filters {
    fn new(tenant: &str, q: &SearchRequest, first_param: usize) -> Filters {
        let mut sql = format!("tenant_id = ${first_param}");
        let mut params = vec![P::Str(tenant.into())];
        if !q.scopes.is_empty() {
            sql.push_str(&format!(
                " AND scope = ANY(${}::text[])",
                first_param + params.len()
            ));
            params.push(P::ArrayStr(
                q.scopes.iter().map(|s| Some(s.to_string())).collect(),
            ));
        }
        if !q.filter.is_empty() {
            sql.push_str(&format!(
                " AND metadata @> ${}::jsonb",
                first_param + params.len()
            ));
            params.push(P::Jsonb(q.filter.to_json().to_string().into_bytes()));
        }
        Filters { sql, params }
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

    let mut lists: Vec<RankedList<i64>> = Vec::new();
    if q.mode.uses_vector() {
        let query_vector = match &q.embedding {
            // The caller embedded the query already (the chat step does, once per turn).
            Some(given) => given.clone(),
            None => {
                let t = Instant::now();
                let v = model::embed(&[q.query.as_str()])?.remove(0);
                timing.insert("embed_ms".into(), ms(t));
                v
            }
        };
        let t = Instant::now();
        lists.push(vector_side(&db, tenant, &q, &query_vector, depth).await?);
        timing.insert("vector_ms".into(), ms(t));
    }
    if q.mode.uses_text() && !stop_words_only {
        let t = Instant::now();
        lists.push(text_side(&db, tenant, &q, depth).await?);
        timing.insert("text_ms".into(), ms(t));
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
    let sql = format!(
        "SELECT id, embedding <=> $1::vector AS distance FROM kb_chunks
         WHERE {} AND embedding IS NOT NULL
         ORDER BY embedding <=> $1::vector LIMIT {depth}",
        filters.sql
    );
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

/// At most this many chunks matching a query word are scored: enough to hold every match
/// of a specific query in a large corpus, a bound on the work for very common words.
const MAX_TEXT_CANDIDATES: usize = 5000;

/// Full text ranked by Okapi BM25 ([`tessera_retrieval::bm25`]): candidates are chunks the
/// GIN index finds containing a query word (stemmed, stop words dropped, as the stored
/// tsvector), within the filters; each is scored with the tenant's document frequencies and
/// average chunk length (kb_text_stats, kb_term_stats), which triggers keep in step with the
/// chunks.
///
/// Which words fetch candidates: the rarest first, adding the next while the chunks the
/// words already chosen occur in stay under [`MAX_TEXT_CANDIDATES`] (the rarest always). A
/// chunk holding only words more common than that has the lowest BM25 weights of all and
/// ranks below those found; every candidate is still scored on all the query's words. A
/// specific query in a large corpus thus reads the few chunks of its rare words instead of
/// every chunk holding a common one.
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
    let sql = format!(
        "WITH q AS (
            SELECT array_agg(DISTINCT lexeme) AS lexemes
            FROM unnest(to_tsvector('english', $1))),
         stats AS (
            SELECT chunks::float8 AS n,
                   greatest(total_length::float8 / greatest(chunks, 1), 1.0) AS avg_length
            FROM kb_text_stats WHERE tenant_id = $2),
         known AS (
            SELECT t.lexeme, t.chunks,
                   sum(t.chunks) OVER (ORDER BY t.chunks, t.lexeme) AS running
            FROM q, kb_term_stats t
            WHERE t.tenant_id = $2 AND t.lexeme = ANY(q.lexemes)),
         terms AS (
            SELECT k.lexeme,
                   ln(1.0 + (s.n - k.chunks + 0.5) / (k.chunks + 0.5)) AS weight
            FROM known k, stats s),
         -- The rarest words whose chunks stay under the bound, as a tsquery of lexemes
         -- (quoted; one with a backslash, which that syntax escapes differently, is left
         -- to scoring).
         seeds AS (
            SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS query
            FROM known
            WHERE running - chunks < {MAX_TEXT_CANDIDATES} AND strpos(lexeme, chr(92)) = 0),
         cand AS MATERIALIZED (
            -- Each candidate's tsvector cut down to the query's lexemes (marked with weight
            -- A, then filtered), so scoring reads a few entries, not the whole chunk.
            SELECT c.id, c.text_length::float8 AS length,
                   ts_filter(setweight(setweight(c.tsv, 'D'), 'A', q.lexemes), '{{a}}') AS matched
            -- kb_text_matches: the GIN index lookup, which row-level security would
            -- otherwise turn into a scan of the tenant's chunks (migrations/0018).
            FROM seeds CROSS JOIN q
            CROSS JOIN LATERAL kb_text_matches(seeds.query) AS c
            WHERE {filters}
            LIMIT {MAX_TEXT_CANDIDATES})
         SELECT c.id, sum({score}) AS score
         FROM cand c CROSS JOIN stats s
         CROSS JOIN LATERAL (
            SELECT x.lexeme, coalesce(array_length(x.positions, 1), 1)::float8 AS freq
            FROM unnest(c.matched) AS x) AS u
         JOIN terms ON terms.lexeme = u.lexeme
         CROSS JOIN LATERAL (SELECT terms.weight, u.freq, c.length, s.avg_length)
            AS v(idf, tf, len, avgdl)
         GROUP BY c.id ORDER BY score DESC, c.id LIMIT {depth}",
        filters = filters.sql,
        score = bm25::sql_term_score(),
    );
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
