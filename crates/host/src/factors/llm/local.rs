//! Embedding models run inside the host process, natively: what Spin's local LLM support
//! (`[llm_compute] type = "spin"`, models under the state directory) does for
//! `all-minilm-l6-v2`, so a component's query embedding costs native time with no network
//! hop. The model files are the ones `cargo xtask setup` prepares for the components
//! (`<models dir>/all-MiniLM-L6-v2/{model.onnx,tokenizer.json}`).
//!
//! Each text is embedded alone, never padded into a batch with others: its vector then
//! depends on the text only, which is what a caller that stores vectors for reuse needs
//! (the picker's setup cache). A call's texts are spread over the blocking threads, at most
//! one inference per core at a time across all calls.

use crate::bindings::fermyon::spin::llm::{EmbeddingsResult, EmbeddingsUsage, Error};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_embedder::Embedder;
use tokio::sync::{OnceCell, Semaphore};

/// The one model this host runs itself, by the name Spin's `EmbeddingModel` gives it.
pub const MINILM: &str = "all-minilm-l6-v2";

pub struct LocalModels {
    /// `<models dir>/all-MiniLM-L6-v2`.
    minilm_dir: PathBuf,
    minilm: OnceCell<Result<Arc<Embedder>, String>>,
    /// One permit per core: inference is CPU-bound and must not starve the runtime.
    cores: Arc<Semaphore>,
}

impl LocalModels {
    /// The models under `dir`; `None` when it holds none this host can run.
    pub fn discover(dir: &Path) -> Option<Self> {
        let minilm_dir = dir.join(tessera_embedder::MODEL_ID);
        let present = [
            tessera_embedder::ONNX_FILE,
            tessera_embedder::TOKENIZER_FILE,
        ]
        .iter()
        .all(|f| minilm_dir.join(f).is_file());
        present.then(|| Self {
            minilm_dir,
            minilm: OnceCell::new(),
            cores: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
        })
    }

    pub fn offers(&self, model: &str) -> bool {
        model == MINILM
    }

    pub fn model_dir(&self) -> &Path {
        &self.minilm_dir
    }

    /// Loads the model (about 0.25 s natively) once; concurrent callers wait for the one
    /// load.
    async fn embedder(&self) -> Result<Arc<Embedder>, Error> {
        let loaded = self
            .minilm
            .get_or_init(|| async {
                let dir = self.minilm_dir.clone();
                let started = std::time::Instant::now();
                let result = tokio::task::spawn_blocking(move || Embedder::from_dir(&dir))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map(Arc::new).map_err(|e| e.to_string()));
                match &result {
                    Ok(_) => tracing::info!(model = MINILM, dir = %self.minilm_dir.display(),
                        load_ms = started.elapsed().as_millis() as u64, "local embedding model loaded"),
                    Err(e) => tracing::error!(model = MINILM, dir = %self.minilm_dir.display(),
                        error = %e, "local embedding model failed to load"),
                }
                result
            })
            .await;
        loaded.clone().map_err(|e| {
            Error::RuntimeError(format!(
                "the embedding model in {} could not be loaded: {e}",
                self.minilm_dir.display()
            ))
        })
    }

    /// Loads the model in the background, so the first request does not wait for it.
    pub fn preload(self: &Arc<Self>) {
        let models = self.clone();
        tokio::spawn(async move {
            let _ = models.embedder().await;
        });
    }

    pub async fn embed(&self, input: Vec<String>) -> Result<EmbeddingsResult, Error> {
        if let Some(i) = input.iter().position(|t| t.trim().is_empty()) {
            return Err(Error::InvalidInput(format!(
                "empty_input: input[{i}] is empty or blank"
            )));
        }
        if input.is_empty() {
            return Ok(EmbeddingsResult {
                embeddings: Vec::new(),
                usage: EmbeddingsUsage {
                    prompt_token_count: 0,
                },
            });
        }
        let embedder = self.embedder().await?;
        let input = Arc::new(input);
        let lanes = self.cores.available_permits().clamp(1, input.len());
        let mut tasks = Vec::with_capacity(lanes);
        for lane in 0..lanes {
            let permit = self
                .cores
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| Error::RuntimeError(e.to_string()))?;
            let (embedder, input) = (embedder.clone(), input.clone());
            tasks.push(tokio::task::spawn_blocking(move || {
                let _permit = permit;
                // Lane `lane` takes texts lane, lane + lanes, …: similar work per lane.
                (lane..input.len())
                    .step_by(lanes)
                    .map(|i| {
                        let tokens = embedder.count_tokens(&input[i])?;
                        let vector = embedder.embed_one(&input[i])?;
                        Ok((i, vector, tokens.min(tessera_embedder::MAX_TOKENS)))
                    })
                    .collect::<Result<Vec<_>, tessera_embedder::EmbedError>>()
            }));
        }
        let mut embeddings = vec![Vec::new(); input.len()];
        let mut prompt_token_count = 0u32;
        for task in tasks {
            let lane = task
                .await
                .map_err(|e| Error::RuntimeError(format!("embedding task failed: {e}")))?
                .map_err(|e| Error::RuntimeError(e.to_string()))?;
            for (i, vector, tokens) in lane {
                embeddings[i] = vector;
                prompt_token_count = prompt_token_count.saturating_add(tokens as u32);
            }
        }
        Ok(EmbeddingsResult {
            embeddings,
            usage: EmbeddingsUsage { prompt_token_count },
        })
    }
}
