//! Backends run the model on a batch of token-id sequences. The default, `auto`, runs
//! onnxruntime (feature `ort`, library loaded at run time from a path) when that library
//! loads, and tract (pure Rust, the same code as the kb component, no system library)
//! otherwise, logging which and why; `tract`, `ort` and `cuda` (onnxruntime's CUDA execution
//! provider, feature `cuda`) pick one. docs/adr/0005-embedding-worker-backend.md has the
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
    /// onnxruntime on the CPU if its library loads (`--ort-dylib`), else tract.
    Auto,
    /// tract-onnx on the CPU: one batch per thread.
    Tract,
    /// onnxruntime on the CPU (feature `ort`, on by default), from `--ort-dylib`.
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
    /// libonnxruntime.so for `auto`, `ort` and `cuda`.
    pub ort_dylib: PathBuf,
    /// Concurrent sessions for onnxruntime (each gets `threads / sessions` intra-op threads).
    pub ort_sessions: usize,
}

pub fn load(config: &BackendConfig) -> Result<Arc<dyn Backend>> {
    let onnx = read(&config.model_dir, tessera_embedder::ONNX_FILE)?;
    match config.kind {
        BackendKind::Tract => tract(&onnx, config),
        BackendKind::Auto => match onnxruntime(&onnx, config) {
            Ok(backend) => {
                tracing::info!(
                    backend = backend.name(),
                    library = %std::fs::canonicalize(&config.ort_dylib)
                        .unwrap_or_else(|_| config.ort_dylib.clone())
                        .display(),
                    "backend auto: onnxruntime loaded"
                );
                Ok(backend)
            }
            Err(why) => {
                tracing::warn!(
                    backend = "tract",
                    reason = format!("{why:#}"),
                    "backend auto: onnxruntime not used, running tract (pure Rust) instead"
                );
                tract(&onnx, config)
            }
        },
        BackendKind::Ort | BackendKind::Cuda => onnxruntime(&onnx, config),
    }
}

fn tract(onnx: &[u8], config: &BackendConfig) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(tract::TractBackend::new(onnx, config.threads)?))
}

/// onnxruntime on the CPU (`auto`, `ort`) or with CUDA (`cuda`), or why not.
fn onnxruntime(onnx: &[u8], config: &BackendConfig) -> Result<Arc<dyn Backend>> {
    if !config.ort_dylib.is_file() {
        bail!(
            "no onnxruntime library at {} (`cargo xtask setup` fetches it from the PyPI wheel \
             `onnxruntime`; or pass --ort-dylib / ORT_DYLIB_PATH)",
            config.ort_dylib.display()
        );
    }
    #[cfg(feature = "ort")]
    {
        Ok(Arc::new(ort::OrtBackend::new(onnx, config)?))
    }
    #[cfg(not(feature = "ort"))]
    {
        let _ = onnx;
        let feature = if config.kind == BackendKind::Cuda {
            "cuda"
        } else {
            "ort"
        };
        bail!(
            "this tessera-worker was built without the {feature} feature: rebuild it with \
             `cargo build --release -p tessera-worker --features {feature}`"
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_named_before_anything_is_loaded() {
        let config = BackendConfig {
            kind: BackendKind::Auto,
            model_dir: PathBuf::from("unused"),
            threads: 1,
            ort_dylib: PathBuf::from("/nonexistent/libonnxruntime.so"),
            ort_sessions: 1,
        };
        let why = onnxruntime(&[], &config)
            .err()
            .expect("no library, no backend");
        let why = format!("{why:#}");
        assert!(
            why.contains("no onnxruntime library at /nonexistent/libonnxruntime.so")
                && why.contains("cargo xtask setup"),
            "{why}"
        );
    }
}
