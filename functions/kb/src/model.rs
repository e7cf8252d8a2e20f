//! The embedding model: tessera-spin-kit's embeddings — the host's `llm.generate-embeddings`
//! when it runs the model (natively, no network hop), else the copy spin.toml mounts into
//! the component, loaded once per instance (Spin reuses a WASIp3 instance for many
//! requests) and pre-initialised into the snapshot. Token counting always uses the
//! component's tokenizer.

use tessera_spin_kit::ApiError;
use tessera_spin_kit::embeddings;

/// The in-component model (its tokenizer counts tokens; it embeds when the host does not).
pub fn embedder() -> Result<&'static tessera_embedder::Embedder, ApiError> {
    embeddings::in_component()
}

/// Embeds texts, mapping model errors to a 500 (inputs were validated before).
pub fn embed<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Vec<f32>>, ApiError> {
    Ok(embeddings::embed(texts)?.vectors)
}
