//! The queue drain: the kb component queues one `embedding_jobs` row per chunk of a large
//! document and NOTIFYs `embedding_jobs`; each drain task claims a batch of rows with a
//! lease, embeds `passage_text(heading, content)` (exactly what the component embeds inline),
//! writes the vectors and marks the rows done and the document ready. A worker that dies
//! leaves its rows leased; they are claimed again when the lease runs out, and written only
//! by the worker that holds them, so nothing is lost and nothing is written twice.

mod listen;
pub mod store;

use crate::metrics::JobOutcome;
use crate::service::{EmbedFailure, EmbedService};
use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use std::time::Duration;
use store::ClaimedJob;
use tokio::sync::{Notify, watch};

#[derive(Debug, Clone)]
pub struct DrainConfig {
    pub database_url: String,
    pub worker_id: String,
    pub claim_size: i64,
    pub tasks: usize,
    pub lease: Duration,
    pub max_attempts: i32,
    pub poll: Duration,
}

/// The drain embeds every tenant's chunks: as the application role, its sessions name the
/// scope across tenants of row-level security (migrations/0018); as the tables' owner the
/// setting is simply unused.
fn across_tenants(config: &mut tokio_postgres::Config) {
    let scope = format!("-c tessera.tenant={}", tessera_api::tenancy::ACROSS_TENANTS);
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {scope}"),
        _ => scope,
    };
    config.options(options);
}

/// Runs the drain until `stop` turns true; errors (Postgres away, schema not migrated yet)
/// are logged and retried with back-off.
pub async fn run(
    config: DrainConfig,
    service: Arc<EmbedService>,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    // sslmode/sslrootcert as libpq reads them, so a managed Postgres is reached over TLS.
    let mut target = tessera_pg_tls::parse(&config.database_url)
        .map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
    across_tenants(&mut target.config);
    let manager = Manager::from_config(
        target.config.clone(),
        target.tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(config.tasks + 2)
        .build()
        .context("creating the Postgres pool")?;
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listen::run(
        target.config,
        target.tls,
        wake.clone(),
        stop.clone(),
    ));
    tracing::info!(
        worker = %config.worker_id,
        tasks = config.tasks,
        sslmode = target.mode.as_str(),
        "draining embedding_jobs"
    );
    let tasks: Vec<_> = (0..config.tasks)
        .map(|_| {
            let (config, service, pool, wake, stop) = (
                config.clone(),
                service.clone(),
                pool.clone(),
                wake.clone(),
                stop.clone(),
            );
            tokio::spawn(async move { drain_task(&config, &service, &pool, &wake, stop).await })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    listener.abort();
    Ok(())
}

async fn drain_task(
    config: &DrainConfig,
    service: &EmbedService,
    pool: &Pool,
    wake: &Notify,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    while !*stop.borrow() {
        match drain_once(config, service, pool).await {
            Ok(0) => {
                backoff = Duration::from_millis(100);
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(config.poll) => {}
                    _ = stop.changed() => {}
                }
            }
            Ok(_) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), retry_in = ?backoff, "draining embedding_jobs failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One claim: returns how many jobs it claimed.
async fn drain_once(config: &DrainConfig, service: &EmbedService, pool: &Pool) -> Result<usize> {
    let exhausted = store::fail_exhausted(pool, config.max_attempts).await?;
    if exhausted > 0 {
        tracing::warn!(
            jobs = exhausted,
            "jobs failed after their last lease ran out"
        );
        service.metrics().record_jobs(JobOutcome::Failed, exhausted);
    }
    let jobs = store::claim(
        pool,
        &config.worker_id,
        config.claim_size,
        config.lease,
        config.max_attempts,
    )
    .await?;
    if jobs.is_empty() {
        return Ok(0);
    }
    let texts: Vec<String> = jobs
        .iter()
        .map(|j| tessera_retrieval::passage_text(&j.heading, &j.content))
        .collect();
    match embed_all(service, texts).await {
        Ok(vectors) => {
            let done: Vec<(&ClaimedJob, String)> = jobs
                .iter()
                .zip(&vectors)
                .map(|(j, v)| (j, store::vector_text(v)))
                .collect();
            let (written, ready) = store::complete(pool, &config.worker_id, &done).await?;
            service.metrics().record_jobs(JobOutcome::Done, written);
            if written < jobs.len() {
                tracing::warn!(
                    claimed = jobs.len(),
                    written,
                    "some leases ran out before the vectors were written; their new holders write them"
                );
            }
            for document in ready {
                tracing::info!(%document, "document ready");
            }
        }
        Err(e) => {
            let message = format!("{e:#}");
            tracing::warn!(error = %message, jobs = jobs.len(), "embedding claimed jobs failed");
            let refs: Vec<&ClaimedJob> = jobs.iter().collect();
            let (retried, failed) = store::release_failed(
                pool,
                &config.worker_id,
                &refs,
                &message,
                config.max_attempts,
            )
            .await?;
            service.metrics().record_jobs(JobOutcome::Retried, retried);
            service.metrics().record_jobs(JobOutcome::Failed, failed);
        }
    }
    Ok(jobs.len())
}

/// Embeds through the shared queue, waiting while HTTP traffic fills it.
async fn embed_all(service: &EmbedService, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
    let tokenized = service.tokenize(texts).await?;
    loop {
        match service.embed_tokenized(&tokenized).await {
            Err(EmbedFailure::QueueFull(_, seconds)) => {
                tokio::time::sleep(
                    Duration::from_millis(100).max(Duration::from_secs(seconds) / 10),
                )
                .await;
            }
            other => return Ok(other?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_names_the_scope_across_tenants_after_given_options() {
        let mut config: tokio_postgres::Config =
            "postgres://u@h/db?options=-c%20statement_timeout%3D5s"
                .parse()
                .unwrap();
        across_tenants(&mut config);
        assert_eq!(
            config.get_options(),
            Some("-c statement_timeout=5s -c tessera.tenant=*")
        );
        let mut bare: tokio_postgres::Config = "postgres://u@h/db".parse().unwrap();
        across_tenants(&mut bare);
        assert_eq!(bare.get_options(), Some("-c tessera.tenant=*"));
    }
}
