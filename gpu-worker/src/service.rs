//! The embedding pipeline shared by the HTTP endpoints and the queue drain: tokenize on the
//! blocking pool (never on an inference thread), queue the token ids in the [`Batcher`], and
//! let one inference thread per backend runner turn batches into vectors. Every input carries
//! its own reply channel, so each caller gets its own vectors in its own order whatever
//! batches they travelled in.

use crate::backend::Backend;
use crate::batcher::{BatchPolicy, Batcher, QueueFull, padded_tokens};
use crate::metrics::Metrics;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Instant;
use tessera_embedder::tokenize::{TokenizedText, WordPieceTokenizer};
use tokio::sync::oneshot;

/// One input on its way through the queue.
pub struct Pending {
    ids: Vec<i64>,
    reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

/// Why inputs were not embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedFailure {
    #[error("the queue is full ({} of {} inputs waiting)", .0.depth, .0.capacity)]
    QueueFull(QueueFull, /** seconds to wait before retrying */ u64),
    #[error("embedding failed: {0}")]
    Model(String),
    #[error("tokenizing failed: {0}")]
    Tokenize(String),
    #[error("the worker is shutting down")]
    ShuttingDown,
}

pub struct EmbedService {
    tokenizer: Arc<WordPieceTokenizer>,
    batcher: Arc<Batcher<Pending>>,
    metrics: Arc<Metrics>,
    backend_name: &'static str,
}

impl EmbedService {
    /// Starts one inference thread per backend runner.
    pub fn start(
        tokenizer: WordPieceTokenizer,
        backend: Arc<dyn Backend>,
        policy: BatchPolicy,
        queue_capacity: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>> {
        let batcher = Arc::new(Batcher::new(policy, queue_capacity));
        for i in 0..backend.runners() {
            let (batcher, backend, metrics) = (batcher.clone(), backend.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("inference-{i}"))
                .spawn(move || run_batches(&batcher, backend.as_ref(), &metrics))
                .context("starting an inference thread")?;
        }
        Ok(Arc::new(Self {
            tokenizer: Arc::new(tokenizer),
            batcher,
            metrics,
            backend_name: backend.name(),
        }))
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend_name
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Inputs and tokens waiting now.
    pub fn queue_depth(&self) -> (usize, usize) {
        self.batcher.depth()
    }

    /// Tokenizes on the blocking pool: a request of many long inputs must not hold up a
    /// runtime thread, and inference threads only run the model.
    pub async fn tokenize(&self, texts: Vec<String>) -> Result<Vec<TokenizedText>, EmbedFailure> {
        let tokenizer = self.tokenizer.clone();
        tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| tokenizer.tokenize(t, i))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| EmbedFailure::Tokenize(e.to_string()))?
        .map_err(|e| EmbedFailure::Tokenize(e.to_string()))
    }

    /// Queues tokenized inputs (all or none) and waits for their vectors, in order.
    pub async fn embed_tokenized(
        &self,
        inputs: &[TokenizedText],
    ) -> Result<Vec<Vec<f32>>, EmbedFailure> {
        let mut replies = Vec::with_capacity(inputs.len());
        let mut items = Vec::with_capacity(inputs.len());
        for input in inputs {
            let (reply, receive) = oneshot::channel();
            replies.push(receive);
            items.push((
                input.ids.len(),
                Pending {
                    ids: input.ids.clone(),
                    reply,
                },
            ));
        }
        // Shortest first within one request: its inputs then share batches with inputs of
        // similar length and pad little. Each keeps its own reply, so the answer's order holds.
        items.sort_by_key(|(tokens, _)| *tokens);
        match self.batcher.submit(items) {
            Ok((depth, tokens)) => self.metrics.set_queue(depth, tokens),
            Err(full) => {
                self.metrics.record_rejection();
                return Err(EmbedFailure::QueueFull(full, self.retry_after_seconds()));
            }
        }
        let mut vectors = Vec::with_capacity(replies.len());
        for receive in replies {
            match receive.await {
                Ok(Ok(v)) => vectors.push(v),
                Ok(Err(message)) => return Err(EmbedFailure::Model(message)),
                Err(_) => return Err(EmbedFailure::ShuttingDown),
            }
        }
        Ok(vectors)
    }

    /// How long the queued work should take at the recent rate, at least 1 s and at most 60.
    fn retry_after_seconds(&self) -> u64 {
        let (_, tokens) = self.batcher.depth();
        let rate = self.metrics.tokens_per_second();
        if rate <= 0.0 {
            return 1;
        }
        ((tokens as f64 / rate).ceil() as u64).clamp(1, 60)
    }

    /// Stops the inference threads once the queue is empty.
    pub fn close(&self) {
        self.batcher.close();
    }
}

fn run_batches(batcher: &Batcher<Pending>, backend: &dyn Backend, metrics: &Metrics) {
    while let Some(batch) = batcher.next_batch() {
        let (depth, tokens) = batcher.depth();
        metrics.set_queue(depth, tokens);
        let sequences: Vec<&[i64]> = batch.iter().map(|e| e.item.ids.as_slice()).collect();
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let real: usize = sequences.iter().map(|s| s.len()).sum();
        let started = Instant::now();
        let result = backend.embed_batch(&sequences);
        metrics.record_batch(
            batch.len(),
            real,
            padded_tokens(longest, batch.len()),
            started.elapsed(),
        );
        match result {
            Ok(vectors) if vectors.len() == batch.len() => {
                for (entry, vector) in batch.into_iter().zip(vectors) {
                    // A caller that went away (client disconnected) no longer wants it.
                    let _ = entry.item.reply.send(Ok(vector));
                }
            }
            Ok(vectors) => {
                let message = format!(
                    "the backend returned {} vectors for {} inputs",
                    vectors.len(),
                    batch.len()
                );
                tracing::error!("{message}");
                for entry in batch {
                    let _ = entry.item.reply.send(Err(message.clone()));
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                tracing::error!(error = %message, inputs = batch.len(), "a model call failed");
                for entry in batch {
                    let _ = entry.item.reply.send(Err(message.clone()));
                }
            }
        }
    }
}
