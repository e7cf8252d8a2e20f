//! onnxruntime through the `ort` crate, with the library loaded at run time from
//! `--ort-dylib` (`load-dynamic`): the build links nothing, and the library comes from the
//! PyPI wheel `onnxruntime` (CPU; `cargo xtask setup` fetches it) or `onnxruntime-gpu` (CUDA). It runs the same converted
//! graph as tract and pools the same way.

use super::{Backend, BackendConfig, BackendKind};
use anyhow::{Result, anyhow, bail};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use std::sync::{Mutex, OnceLock};
use tessera_embedder::model::{ATTENTION_BIAS, INPUT_IDS, LAST_HIDDEN_STATE, MASK_BIAS};
use tessera_embedder::pooling::{l2_normalize, mean_pool};

/// onnxruntime allows one environment per process.
static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();

pub struct OrtBackend {
    /// One session per runner: `Session::run` needs `&mut`.
    sessions: Vec<Mutex<Session>>,
    hidden: usize,
    kind: BackendKind,
}

impl OrtBackend {
    pub fn new(onnx: &[u8], config: &BackendConfig) -> Result<Self> {
        let dylib = &config.ort_dylib;
        let env = match ENVIRONMENT.get() {
            Some(env) => env,
            None => {
                let env = ort::init_from(dylib)
                    .map_err(|e| anyhow!("loading {}: {e}", dylib.display()))?
                    .with_name("tessera-worker")
                    .build()
                    .map_err(|e| anyhow!("creating the onnxruntime environment: {e}"))?;
                ENVIRONMENT.get_or_init(|| env)
            }
        };
        let sessions = config.ort_sessions.max(1);
        let intra = (config.threads / sessions).max(1);
        let mut built = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let e = |e: ort::Error<_>| anyhow!("configuring an onnxruntime session: {e}");
            let mut builder = Session::builder(env)
                .map_err(|e| anyhow!("{e}"))?
                .with_optimization_level(GraphOptimizationLevel::Level3)
                .map_err(e)?
                .with_intra_threads(intra)
                .map_err(e)?;
            if config.kind == BackendKind::Cuda {
                builder = with_cuda(builder)?;
            }
            let session = builder
                .commit_from_memory(onnx)
                .map_err(|e| anyhow!("loading the model into onnxruntime: {e}"))?;
            built.push(Mutex::new(session));
        }
        Ok(Self {
            sessions: built,
            hidden: tessera_embedder::DIM,
            kind: config.kind,
        })
    }

    fn run(&self, session: &mut Session, batch: &[&[i64]]) -> Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let seq = batch.iter().map(|s| s.len()).max().unwrap_or(0);
        if rows == 0 || seq == 0 {
            return Ok(vec![vec![0.0; self.hidden]; rows]);
        }
        let mut ids = vec![0i64; rows * seq];
        let mut bias = vec![MASK_BIAS; rows * seq];
        for (row, sequence) in batch.iter().enumerate() {
            ids[row * seq..row * seq + sequence.len()].copy_from_slice(sequence);
            bias[row * seq..row * seq + sequence.len()].fill(0.0);
        }
        let ids = Tensor::from_array(([rows, seq], ids))?;
        let bias = Tensor::from_array(([rows, 1, 1, seq], bias))?;
        let outputs = session.run(ort::inputs![INPUT_IDS => ids, ATTENTION_BIAS => bias])?;
        let (shape, hidden) = outputs[LAST_HIDDEN_STATE].try_extract_tensor::<f32>()?;
        if shape.len() != 3 || shape[0] as usize != rows || shape[1] as usize != seq {
            bail!("onnxruntime returned shape {shape:?} for a [{rows}, {seq}] batch");
        }
        let dim = shape[2] as usize;
        Ok(batch
            .iter()
            .zip(hidden.chunks_exact(seq * dim))
            .map(|(sequence, states)| {
                let mask: Vec<bool> = (0..seq).map(|i| i < sequence.len()).collect();
                let mut pooled = mean_pool(states, dim, &mask);
                l2_normalize(&mut pooled);
                pooled
            })
            .collect())
    }
}

#[cfg(feature = "cuda")]
fn with_cuda(
    builder: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder> {
    builder
        .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
        .map_err(|e| anyhow!("enabling onnxruntime's CUDA execution provider: {e}"))
}

#[cfg(not(feature = "cuda"))]
fn with_cuda(
    _: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder> {
    bail!("this tessera-worker was built without CUDA: rebuild it with `--features cuda`")
}

impl Backend for OrtBackend {
    fn name(&self) -> &'static str {
        match self.kind {
            BackendKind::Cuda => "ort-cuda",
            _ => "ort",
        }
    }

    fn embed_batch(&self, batch: &[&[i64]]) -> Result<Vec<Vec<f32>>> {
        // A free session if there is one; otherwise wait for the first.
        for session in &self.sessions {
            if let Ok(mut session) = session.try_lock() {
                return self.run(&mut session, batch);
            }
        }
        let mut session = self.sessions[0].lock().unwrap_or_else(|p| p.into_inner());
        self.run(&mut session, batch)
    }

    fn runners(&self) -> usize {
        self.sessions.len()
    }
}
