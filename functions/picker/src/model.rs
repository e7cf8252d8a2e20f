//! The embedding model inside the component (as in functions/kb): loaded once per instance
//! from the directory spin.toml mounts, and kept.

use std::sync::OnceLock;
use tessera_embedder::Embedder;
use tessera_spin_kit::ApiError;

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

pub fn embed<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Vec<f32>>, ApiError> {
    embedder()?
        .embed(texts)
        .map_err(|e| ApiError::dependency("embedding_failed", e.to_string()))
}
