//! The embedding model: tessera-spin-kit's embeddings (the host's `llm.generate-embeddings`
//! when it runs the model, else the copy mounted into the component, as in functions/kb).

use tessera_spin_kit::ApiError;
use tessera_spin_kit::embeddings::{self, Source};

/// The model's name: part of the key of every embedding stored for reuse
/// (`setup_embeddings`), so vectors of another model are never mixed in.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";

/// The model's name in the key of a stored vector computed by `source`: the host's native
/// vectors and the component's Wasm ones differ in their last bits, and a run must rank
/// the same whichever of its setups were stored, so the two are never mixed. (Vectors the
/// component computed keep the bare name they were stored under before the host path.)
pub fn model_key(source: Source) -> String {
    match source {
        Source::Component => MODEL_ID.to_string(),
        Source::Host => format!("{MODEL_ID} (host)"),
    }
}

/// Loads the in-component model if this instance has not yet: the milliseconds that took
/// (0 when it was loaded already), for run records that separate loading from embedding.
pub fn load() -> Result<u128, ApiError> {
    if embeddings::in_component_loaded() {
        return embeddings::in_component().map(|_| 0);
    }
    let started = std::time::Instant::now();
    embeddings::in_component()?;
    Ok(started.elapsed().as_millis())
}

pub fn embed<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Vec<f32>>, ApiError> {
    Ok(embeddings::embed(texts)?.vectors)
}
