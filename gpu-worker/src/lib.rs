//! Tessera's embedding worker: the native service for heavy embedding batches (bulk
//! ingestion, re-embedding a corpus). One model (all-MiniLM-L6-v2, the same graph and
//! tokenizer as the kb component), one queue with token-budget dynamic batching, shared by the
//! HTTP endpoints and the drain of `embedding_jobs`.
//!
//! - [`config`]: command line;
//! - [`backend`]: the model on onnxruntime where its library loads, else tract;
//! - [`batcher`]: the queue and how batches are cut;
//! - [`service`]: tokenize → queue → inference threads → each caller's vectors;
//! - [`http`]: `/embed`, `/v1/embeddings`, `/health`, `/metrics`;
//! - [`drain`]: claims, embeds and completes queued jobs;
//! - [`metrics`]: Prometheus text.

pub mod backend;
pub mod batcher;
pub mod config;
pub mod drain;
pub mod http;
pub mod metrics;
pub mod service;

use anyhow::{Context, Result};
use std::sync::Arc;

/// Loads the model, starts the inference threads, serves HTTP and (with a database) drains
/// the queue until SIGINT or SIGTERM.
pub async fn run(config: config::Config) -> Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let started = std::time::Instant::now();
    if let Some(endpoint) = tessera_otlp::install("tessera-worker")? {
        tracing::info!(%endpoint, "exporting spans over OTLP");
    }
    let tokenizer_json = backend::read(&config.model_dir, tessera_embedder::TOKENIZER_FILE)?;
    let tokenizer = tessera_embedder::tokenize::WordPieceTokenizer::from_bytes(&tokenizer_json)?;
    let backend_config = config.backend();
    let model = tokio::task::spawn_blocking(move || backend::load(&backend_config)).await??;
    let metrics = Arc::new(metrics::Metrics::default());
    let service = service::EmbedService::start(
        tokenizer,
        model.clone(),
        config.policy(),
        config.max_queue,
        metrics,
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        backend = model.name(),
        runners = model.runners(),
        threads = config.threads(),
        load_seconds = started.elapsed().as_secs_f64(),
        "tessera-worker serving"
    );

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let drain = config.drain().map(|drain_config| {
        let (service, stop) = (service.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = drain::run(drain_config, service, stop).await {
                tracing::error!(error = format!("{e:#}"), "the queue drain stopped");
            }
        })
    });
    let api = Arc::new(http::Api {
        service: service.clone(),
        token: config.token.clone(),
        max_inputs: config.max_inputs,
        max_body_bytes: config.max_body_bytes,
    });
    http::serve(listener, api, shutdown_signal()).await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if let Some(drain) = drain {
        // A batch in flight finishes and is written; otherwise its lease hands it on.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), drain).await;
    }
    service.close();
    // The SDK waits for its export task, which runs on this runtime's other workers.
    tokio::task::block_in_place(tessera_otlp::shutdown);
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
