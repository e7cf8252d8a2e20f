//! Sentence embeddings (all-MiniLM-L6-v2) for the components that need them (kb, picker).
//!
//! Through the host's `llm.generate-embeddings` when the host runs the model itself
//! (Tessera's host does, natively; so does Spin with its local LLM support): native speed and
//! no network hop. Otherwise with the copy of the model that spin.toml mounts into the
//! component (`files`), run in Wasm — hosts without the model, manifests without
//! `ai_models = ["all-minilm-l6-v2"]`, or a host error.
//!
//! The two paths compute the same vectors to about 1e-6 (cosine ≥ 0.9999), not bit for bit,
//! so callers that store vectors for reuse key them by [`Source`] too.

use crate::ApiError;
use spin_sdk::llm::{EmbeddingModel, Error as LlmError, generate_embeddings};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use tessera_embedder::Embedder;

/// Where spin.toml mounts the model directory for the in-component path.
pub const MODEL_DIR: &str = "/models/all-MiniLM-L6-v2";

/// Which path computed a set of vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The host's `llm.generate-embeddings`.
    Host,
    /// The model inside this component.
    Component,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Host => "host",
            Source::Component => "component",
        }
    }
}

/// One vector per input text, in order, and the path that computed them.
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub source: Source,
}

static MODEL: OnceLock<Result<Embedder, String>> = OnceLock::new();

/// Set once the host has said it will not run the model for this component (it does not
/// have it, or the manifest does not grant it): later calls go straight to the component.
static HOST_DECLINED: AtomicBool = AtomicBool::new(false);

/// The model inside the component, loaded on first use and kept for the instance's life
/// (Spin reuses a WASIp3 instance for many requests; the model is immutable).
pub fn in_component() -> Result<&'static Embedder, ApiError> {
    MODEL
        .get_or_init(|| Embedder::from_dir(MODEL_DIR).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| {
            ApiError::dependency(
                "model_unavailable",
                format!(
                    "the embedding model could not be loaded from {MODEL_DIR} ({e}); mount \
                     .tessera/models/all-MiniLM-L6-v2 there (spin.toml `files`, made by \
                     `cargo xtask setup`)"
                ),
            )
        })
}

/// Whether this instance has the in-component model loaded already.
pub fn in_component_loaded() -> bool {
    MODEL.get().is_some()
}

/// The path the next call will try first: the host, unless it has declined for this
/// instance.
pub fn likely_source() -> Source {
    if HOST_DECLINED.load(Ordering::Relaxed) {
        Source::Component
    } else {
        Source::Host
    }
}

/// Asks the host; `None` when the component should compute the vectors itself.
fn from_host<S: AsRef<str>>(texts: &[S]) -> Option<Vec<Vec<f32>>> {
    if HOST_DECLINED.load(Ordering::Relaxed) {
        return None;
    }
    let input: Vec<String> = texts.iter().map(|t| t.as_ref().to_string()).collect();
    match generate_embeddings(EmbeddingModel::AllMiniLmL6V2, &input) {
        Ok(result) if result.embeddings.len() == input.len() => Some(result.embeddings),
        Ok(_) => None,
        Err(LlmError::ModelNotSupported) => {
            HOST_DECLINED.store(true, Ordering::Relaxed);
            None
        }
        Err(LlmError::InvalidInput(message)) if message.contains("does not have access") => {
            HOST_DECLINED.store(true, Ordering::Relaxed);
            None
        }
        // A runtime error (an unreachable worker, a failed load) may pass: next call asks
        // again.
        Err(_) => None,
    }
}

fn model_error(e: tessera_embedder::EmbedError) -> ApiError {
    ApiError::dependency("embedding_failed", e.to_string())
}

/// Embeds texts, in batches when the component computes them (inputs were validated
/// before: no empty text).
pub fn embed<S: AsRef<str>>(texts: &[S]) -> Result<Embedded, ApiError> {
    if let Some(vectors) = from_host(texts) {
        return Ok(Embedded {
            vectors,
            source: Source::Host,
        });
    }
    let vectors = in_component()?.embed(texts).map_err(model_error)?;
    Ok(Embedded {
        vectors,
        source: Source::Component,
    })
}

/// One embedding per text, each text run through the model alone: a batch pads its texts
/// to the longest one, which changes their vectors in the last bits, so only a vector
/// computed alone is the same whatever else is embedded with it — what a vector stored for
/// reuse must be. The host embeds every text alone.
pub fn embed_each<S: AsRef<str>>(texts: &[S]) -> Result<Embedded, ApiError> {
    if let Some(vectors) = from_host(texts) {
        return Ok(Embedded {
            vectors,
            source: Source::Host,
        });
    }
    Ok(Embedded {
        vectors: embed_each_in_component(texts)?,
        source: Source::Component,
    })
}

/// [`embed_each`] with the model inside the component only.
pub fn embed_each_in_component<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Vec<f32>>, ApiError> {
    let embedder = in_component()?;
    texts
        .iter()
        .map(|t| embedder.embed_one(t.as_ref()).map_err(model_error))
        .collect()
}
