//! The SQL of the queue drain, on the tables of migrations/0002_kb.sql.
//!
//! Lock order is always documents, then jobs (ordered by id), in every transaction that
//! touches both, so two workers finishing chunks of one document serialise on the document
//! row instead of deadlocking, and the one that commits last sees every chunk embedded.

use anyhow::{Context, Result, anyhow};
use deadpool_postgres::Pool;
use std::time::Duration;

/// A job this worker holds, with the text to embed.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub chunk_id: i64,
    pub document_id: String,
    pub attempts: i32,
    pub heading: String,
    pub content: String,
}

/// Claims up to `limit` jobs: pending ones, and running ones whose lease ran out (their
/// worker died) while they have attempts left. Rows other workers are claiming right now are
/// skipped, not waited for.
pub async fn claim(
    pool: &Pool,
    worker: &str,
    limit: i64,
    lease: Duration,
    max_attempts: i32,
) -> Result<Vec<ClaimedJob>> {
    let db = pool
        .get()
        .await
        .map_err(|e| anyhow!(tessera_pg_tls::explain_pool(&e)))?;
    let rows = db
        .query(
            "WITH claimable AS (
                 SELECT id FROM embedding_jobs
                 WHERE status = 'pending'
                    OR (status = 'running' AND leased_until < now() AND attempts < $4)
                 ORDER BY id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE embedding_jobs j
             SET status = 'running', attempts = j.attempts + 1, worker = $2,
                 leased_until = now() + make_interval(secs => $3), updated_at = now()
             FROM claimable, kb_chunks c
             WHERE j.id = claimable.id AND c.id = j.chunk_id
             RETURNING j.id, j.chunk_id, j.document_id::text, j.attempts, c.heading, c.content",
            &[&limit, &worker, &lease.as_secs_f64(), &max_attempts],
        )
        .await
        .context("claiming embedding jobs")?;
    let mut jobs: Vec<ClaimedJob> = rows
        .iter()
        .map(|r| ClaimedJob {
            id: r.get(0),
            chunk_id: r.get(1),
            document_id: r.get(2),
            attempts: r.get(3),
            heading: r.get(4),
            content: r.get(5),
        })
        .collect();
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

/// Writes vectors for jobs this worker still holds, marks them done and their documents
/// ready when no chunk of theirs is left without an embedding. A job whose lease ran out and
/// that another worker claimed since is not written: that worker writes it. Returns the jobs
/// written and the documents that became ready.
pub async fn complete(
    pool: &Pool,
    worker: &str,
    done: &[(&ClaimedJob, String)],
) -> Result<(usize, Vec<String>)> {
    let mut db = pool
        .get()
        .await
        .map_err(|e| anyhow!(tessera_pg_tls::explain_pool(&e)))?;
    let tx = db.transaction().await?;
    let documents = distinct_documents(done.iter().map(|(j, _)| *j));
    lock_documents(&tx, &documents).await?;
    let job_ids: Vec<i64> = done.iter().map(|(j, _)| j.id).collect();
    let held = tx
        .query(
            "UPDATE embedding_jobs SET status = 'done', leased_until = NULL, error = NULL, updated_at = now()
             WHERE id = ANY($1) AND status = 'running' AND worker = $2
             RETURNING id",
            &[&job_ids, &worker],
        )
        .await
        .context("marking jobs done")?;
    let held: std::collections::HashSet<i64> = held.iter().map(|r| r.get(0)).collect();
    let (chunks, vectors): (Vec<i64>, Vec<&str>) = done
        .iter()
        .filter(|(j, _)| held.contains(&j.id))
        .map(|(j, v)| (j.chunk_id, v.as_str()))
        .unzip();
    tx.execute(
        "UPDATE kb_chunks c SET embedding = v.embedding::vector
         FROM unnest($1::int8[], $2::text[]) AS v(id, embedding)
         WHERE c.id = v.id",
        &[&chunks, &vectors],
    )
    .await
    .context("writing embeddings")?;
    let ready = tx
        .query(
            "UPDATE kb_documents d SET status = 'ready', updated_at = now()
             WHERE d.id = ANY($1::text[]::uuid[]) AND d.status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM kb_chunks c WHERE c.document_id = d.id AND c.embedding IS NULL)
             RETURNING d.id::text",
            &[&documents],
        )
        .await
        .context("marking documents ready")?;
    tx.commit().await.context("committing embeddings")?;
    Ok((held.len(), ready.iter().map(|r| r.get(0)).collect()))
}

/// Gives jobs this worker holds back after `error`: pending again while attempts are left,
/// otherwise failed along with their documents. Returns (retried, failed).
pub async fn release_failed(
    pool: &Pool,
    worker: &str,
    jobs: &[&ClaimedJob],
    error: &str,
    max_attempts: i32,
) -> Result<(usize, usize)> {
    let mut db = pool
        .get()
        .await
        .map_err(|e| anyhow!(tessera_pg_tls::explain_pool(&e)))?;
    let tx = db.transaction().await?;
    lock_documents(&tx, &distinct_documents(jobs.iter().copied())).await?;
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let rows = tx
        .query(
            "UPDATE embedding_jobs
             SET status = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'pending' END,
                 leased_until = NULL, error = $4, updated_at = now()
             WHERE id = ANY($1) AND status = 'running' AND worker = $2
             RETURNING status, document_id::text",
            &[&ids, &worker, &max_attempts, &error],
        )
        .await
        .context("releasing failed jobs")?;
    let failed_docs: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, &str>(0) == "failed")
        .map(|r| r.get(1))
        .collect();
    fail_documents(&tx, &failed_docs).await?;
    tx.commit().await?;
    Ok((rows.len() - failed_docs.len(), failed_docs.len()))
}

/// Jobs whose lease ran out on their last attempt (each claim killed its worker, say): marks
/// them and their documents failed, so a poison chunk cannot keep taking workers down.
pub async fn fail_exhausted(pool: &Pool, max_attempts: i32) -> Result<usize> {
    let mut db = pool
        .get()
        .await
        .map_err(|e| anyhow!(tessera_pg_tls::explain_pool(&e)))?;
    let tx = db.transaction().await?;
    let candidates = tx
        .query(
            "SELECT DISTINCT document_id::text FROM embedding_jobs
             WHERE status = 'running' AND leased_until < now() AND attempts >= $1",
            &[&max_attempts],
        )
        .await?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let documents: Vec<String> = candidates.iter().map(|r| r.get(0)).collect();
    lock_documents(&tx, &documents).await?;
    let rows = tx
        .query(
            "UPDATE embedding_jobs j
             SET status = 'failed', leased_until = NULL, updated_at = now(),
                 error = format('gave up after %s attempts: the lease ran out each time (last worker %s)', j.attempts, j.worker)
             WHERE j.id IN (SELECT id FROM embedding_jobs
                            WHERE status = 'running' AND leased_until < now() AND attempts >= $1
                            ORDER BY id FOR UPDATE SKIP LOCKED)
             RETURNING j.document_id::text",
            &[&max_attempts],
        )
        .await?;
    let failed: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    fail_documents(&tx, &failed).await?;
    tx.commit().await?;
    Ok(failed.len())
}

fn distinct_documents<'a>(jobs: impl Iterator<Item = &'a ClaimedJob>) -> Vec<String> {
    let mut ids: Vec<String> = jobs.map(|j| j.document_id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

async fn lock_documents(
    tx: &deadpool_postgres::Transaction<'_>,
    documents: &[String],
) -> Result<()> {
    tx.query(
        "SELECT 1 FROM kb_documents WHERE id = ANY($1::text[]::uuid[]) ORDER BY id FOR UPDATE",
        &[&documents],
    )
    .await
    .context("locking documents")?;
    Ok(())
}

async fn fail_documents(
    tx: &deadpool_postgres::Transaction<'_>,
    documents: &[String],
) -> Result<()> {
    if !documents.is_empty() {
        tx.execute(
            "UPDATE kb_documents SET status = 'failed', updated_at = now()
             WHERE id = ANY($1::text[]::uuid[]) AND status = 'pending'",
            &[&documents],
        )
        .await
        .context("marking documents failed")?;
    }
    Ok(())
}

/// pgvector's text form, `[0.1,0.2,…]`: Rust prints the shortest decimal that reads back as
/// the same f32, so nothing is lost on the way.
pub fn vector_text(v: &[f32]) -> String {
    let mut out = String::with_capacity(v.len() * 12 + 2);
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&x.to_string());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_text_round_trips_f32() {
        let v = [0.1f32, -1.5e-7, 0.0, 1.0, 0.33333334];
        let text = vector_text(&v);
        assert_eq!(text, "[0.1,-0.00000015,0,1,0.33333334]");
        let back: Vec<f32> = text
            .trim_matches(['[', ']'])
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(back, v);
    }
}
