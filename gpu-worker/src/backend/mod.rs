//! Backends run the model on a batch of token-id sequences. `tract` (pure Rust, the same
//! code as the kb component) is the default and needs no system library; `ort` loads
//! onnxruntime at run time from a path (feature `ort`), and `cuda` runs onnxruntime's CUDA
//! execution provider (feature `cuda`). docs/adr/0005-embedding-worker-backend.md has the
//! measurements behind the default.

#[cfg(feature = "ort")]
mod ort;
mod tract;

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One model call: sequences of token ids (each with `[CLS]`/`[SEP]`, at most
/// [`tessera_embedder::MAX_TOKENS`] long) in, one mean-pooled unit vector per sequence out,
/// in order. Sequences differ in length; the backend pads.
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    fn embed_batch(&self, batch: &[&[i64]]) -> Result<Vec<Vec<f32>>>;
    /// Batches that may run at once (one inference thread each).
    fn runners(&self) -> usize;
}

/// Which backend to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// tract-onnx on the CPU: one batch per thread.
    Tract,
    /// onnxruntime on the CPU (build with `--features ort`, pass `--ort-dylib`).
    Ort,
    /// onnxruntime with its CUDA execution provider (build with `--features cuda`, pass the
    /// `onnxruntime-gpu` wheel's library as `--ort-dylib`).
    Cuda,
}

/// What a backend needs to load.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub kind: BackendKind,
    pub model_dir: PathBuf,
    /// CPU threads for inference in all.
    pub threads: usize,
    /// libonnxruntime.so for `ort` and `cuda`.
    pub ort_dylib: Option<PathBuf>,
    /// Concurrent sessions for `ort`/`cuda` (each gets `threads / sessions` intra-op threads).
    pub ort_sessions: usize,
}

pub fn load(config: &BackendConfig) -> Result<Arc<dyn Backend>> {
    let onnx = read(&config.model_dir, tessera_embedder::ONNX_FILE)?;
    match config.kind {
        BackendKind::Tract => Ok(Arc::new(tract::TractBackend::new(&onnx, config.threads)?)),
        #[cfg(feature = "ort")]
        BackendKind::Ort | BackendKind::Cuda => Ok(Arc::new(ort::OrtBackend::new(&onnx, config)?)),
        #[cfg(not(feature = "ort"))]
        kind => {
            let feature = if kind == BackendKind::Cuda {
                "cuda"
            } else {
                "ort"
            };
            bail!(
                "this tessera-worker was built without the {feature} backend: rebuild it with \
                 `cargo build --release -p tessera-worker --features {feature}`"
            )
        }
    }
}

pub(crate) fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(bytes),
        Err(e) => bail!(
            "reading {}: {e} (prepare the model with `cargo xtask setup` or \
             `tessera-model ensure --state-dir .tessera`)",
            path.display()
        ),
    }
}
