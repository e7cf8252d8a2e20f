//! The embedding model inside the component (as in functions/kb): loaded once per instance
//! from the directory spin.toml mounts, and kept.

use std::sync::OnceLock;
use tessera_embedder::Embedder;
use tessera_spin_kit::ApiError;

/// The model's name: part of the key of every embedding stored for reuse
/// (`setup_embeddings`), so vectors of another model are never mixed in.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";

/// Where spin.toml mounts the model directory (`files`).
pub const MODEL_DIR: &str = "/models/all-MiniLM-L6-v2";

static MODEL: OnceLock<Result<Embedder, String>> = OnceLock::new();

fn embedder() -> Result<&'static Embedder, ApiError> {
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

/// Loads the model if this instance has not yet: the milliseconds that took (0 when it was
/// loaded already), for run records that separate loading from embedding.
pub fn load() -> Result<u128, ApiError> {
    if MODEL.get().is_some() {
        return embedder().map(|_| 0);
    }
    let started = std::time::Instant::now();
    embedder()?;
    Ok(started.elapsed().as_millis())
}

pub fn embed<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Vec<f32>>, ApiError> {
    embedder()?
        .embed(texts)
        .map_err(|e| ApiError::dependency("embedding_failed", e.to_string()))
}

/// One embedding per text, each text run through the model alone: a batch pads its texts
/// to the longest one, which changes their vectors in the last bits, so only a vector
/// computed alone is the same whatever else is embedded with it — what a vector stored for
/// reuse must be (`setup_embeddings`).
pub fn embed_each<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Vec<f32>>, ApiError> {
    let embedder = embedder()?;
    texts
        .iter()
        .map(|t| {
            embedder
                .embed_one(t.as_ref())
                .map_err(|e| ApiError::dependency("embedding_failed", e.to_string()))
        })
        .collect()
}
