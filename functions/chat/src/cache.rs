//! The response cache (`response_cache`): exact keys and prompt embeddings, judged by
//! tessera-gateway's `cache::lookup` (tenant and step kind scoped, TTL per step kind).
//!
//! Answers are stored with their citations as chunk ids, so a semantic hit from another turn
//! is renumbered for this turn's sources — or refused when it cites a chunk this turn did not
//! retrieve.

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_gateway::cache::{CacheEntry, CacheKey, CacheQuery, exact_key, lookup as judge};
use tessera_gateway::{CacheHit, Candidate, Catalog, ChatRequest, FinishReason};
use tessera_progressive::sources::{citations, renumber};
use tessera_spin_kit::ApiError;

use crate::clock::now_ms;
use crate::db::{self, P};
use crate::gateway::{CallSpec, Completion};

pub struct Hit {
    pub text: String,
    pub provider: String,
    pub model: String,
    pub kind: CacheHit,
    pub similarity: f32,
}

pub struct Stored {
    id: i64,
    provider: String,
    model: String,
    value: Value,
}

fn key_for(tenant: &str, spec: &CallSpec<'_>, model: &str) -> CacheKey {
    let mut req = spec.request.clone();
    req.model = model.to_string();
    exact_key(tenant, spec.kind, &req)
}

/// Rows that may answer the step: exact keys for each of `models` (every model routing could
/// pick, so this can run before routing, alongside the breaker read) and the nearest
/// embeddings in the step's semantic scope. [`find`] judges them once the chain is known.
pub async fn fetch(
    db: &Connection,
    tenant: &str,
    spec: &CallSpec<'_>,
    models: &[String],
) -> Result<Vec<CacheEntry<Stored>>, ApiError> {
    let keys: Vec<CacheKey> = models.iter().map(|m| key_for(tenant, spec, m)).collect();
    let columns = "id, cache_key, provider, model, embedding::text, value::text, (extract(epoch FROM created_at) * 1000)::int8";
    let mut sql = format!(
        "SELECT {columns} FROM response_cache
         WHERE tenant_id = $1 AND step_kind = $2 AND expires_at > now() AND cache_key = ANY($3::text[])"
    );
    let mut params = vec![
        P::Str(tenant.into()),
        P::Str(spec.kind.as_str().into()),
        P::ArrayStr(keys.iter().map(|k| Some(k.0.clone())).collect()),
    ];
    if let Some(e) = spec.semantic {
        sql.push_str(&format!(
            " UNION ALL (SELECT {columns} FROM response_cache
               WHERE tenant_id = $1 AND step_kind = $2 AND expires_at > now() AND embedding IS NOT NULL AND scope = $5
               ORDER BY embedding <=> $4::vector LIMIT 4)"
        ));
        params.push(P::Str(db::vector_text(e)));
        params.push(P::Str(spec.semantic_scope.clone()));
    }
    let rows = db::rows(db, "read cache", &sql, params).await?;
    let entries: Vec<CacheEntry<Stored>> = rows
        .iter()
        .map(|r| CacheEntry {
            tenant_id: tenant.to_string(),
            step: spec.kind,
            key: CacheKey(db::text(r, 1)),
            embedding: db::opt_text(r, 4).and_then(|t| db::parse_vector(&t)),
            created_at: db::int(r, 6) as u64,
            value: Stored {
                id: db::int(r, 0),
                provider: db::text(r, 2),
                model: db::text(r, 3),
                value: db::json(r, 5),
            },
        })
        .collect();
    Ok(entries)
}

/// The hit for `candidates` (the routed chain, paid models only) among `entries`: an exact
/// hit for the first candidate that has one, in the chain's order, else a semantic one.
pub async fn find(
    db: &Connection,
    tenant: &str,
    spec: &CallSpec<'_>,
    entries: &[CacheEntry<Stored>],
    candidates: &[&Candidate],
    threshold: f32,
) -> Result<Option<Hit>, ApiError> {
    let keys: Vec<CacheKey> = candidates
        .iter()
        .map(|c| key_for(tenant, spec, &c.model))
        .collect();
    let now = now_ms();
    // An exact hit for the first candidate that has one (the chain's order), then semantic.
    let mut hit = None;
    for key in &keys {
        let q = CacheQuery {
            tenant_id: tenant,
            step: spec.kind,
            key,
            embedding: None,
            threshold,
        };
        if let Some(h) = judge(entries, &q, now) {
            hit = Some(h);
            break;
        }
    }
    if hit.is_none()
        && let Some(e) = spec.semantic
    {
        let none = CacheKey(String::new());
        hit = judge(
            entries,
            &CacheQuery {
                tenant_id: tenant,
                step: spec.kind,
                key: &none,
                embedding: Some(e),
                threshold,
            },
            now,
        );
    }
    let Some(hit) = hit else { return Ok(None) };
    let stored = &hit.entry.value;
    let text = stored.value["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let text = if hit.kind == CacheHit::Semantic {
        let from: Vec<(usize, i64)> = stored.value["citations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p[0].as_u64()? as usize, p[1].as_i64()?)))
                    .collect()
            })
            .unwrap_or_default();
        match renumber(&text, &from, spec.sources) {
            Some(t) => t,
            None => return Ok(None),
        }
    } else {
        text
    };
    db::execute(
        db,
        "count cache hit",
        "UPDATE response_cache SET hits = hits + 1 WHERE id = $1",
        vec![P::Int64(stored.id)],
    )
    .await?;
    Ok(Some(Hit {
        text,
        provider: stored.provider.clone(),
        model: stored.model.clone(),
        kind: hit.kind,
        similarity: hit.similarity,
    }))
}

pub async fn store(
    db: &Connection,
    tenant: &str,
    spec: &CallSpec<'_>,
    req: &ChatRequest,
    c: &Completion,
    _catalog: &Catalog,
) -> Result<(), ApiError> {
    // Only complete answers are stored: a cut-off answer shown as truncated never is.
    // Nor is an answer built on one (`CallSpec::cacheable`).
    if c.text.trim().is_empty() || c.finish != FinishReason::Complete || !spec.cacheable {
        return Ok(());
    }
    let key = exact_key(tenant, spec.kind, req);
    let mut cited: Vec<usize> = citations(&c.text);
    cited.sort_unstable();
    cited.dedup();
    let pairs: Vec<Value> = cited
        .iter()
        .filter_map(|n| {
            spec.sources
                .iter()
                .find(|s| s.n == *n)
                .map(|s| json!([n, s.chunk_id]))
        })
        .collect();
    let value = json!({
        "text": c.text,
        "citations": pairs,
        "input_tokens": c.usage.input_tokens,
        "output_tokens": c.usage.output_tokens,
    });
    let ttl = spec.kind.cache_ttl().as_secs() as i64;
    db::execute(
        db,
        "store cache",
        "INSERT INTO response_cache (tenant_id, step_kind, cache_key, provider, model, embedding, value, expires_at, scope)
         VALUES ($1, $2, $3, $4, $5, $6::vector, $7, now() + make_interval(secs => $8), $9)",
        vec![
            P::Str(tenant.into()),
            P::Str(spec.kind.as_str().into()),
            P::Str(key.0),
            P::Str(c.provider.clone()),
            P::Str(c.model.clone()),
            spec.semantic.map_or(P::DbNull, |e| P::Str(db::vector_text(e))),
            db::jsonb(&value),
            P::Int64(ttl),
            P::Str(spec.semantic_scope.clone()),
        ],
    )
    .await
    .map(|_| ())
}
