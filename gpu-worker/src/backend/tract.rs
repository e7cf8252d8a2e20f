//! The CPU backend: `tessera-embedder`'s tract encoder, the code the kb component runs in
//! wasm, so both embed a text to the same vector. tract runs one batch on one thread, so the
//! worker runs one batch per CPU thread.

use super::Backend;
use anyhow::Result;
use tessera_embedder::model::BertEncoder;

pub struct TractBackend {
    encoder: BertEncoder,
    runners: usize,
}

impl TractBackend {
    pub fn new(onnx: &[u8], threads: usize) -> Result<Self> {
        Ok(Self {
            encoder: BertEncoder::from_onnx(onnx)?,
            runners: threads.max(1),
        })
    }
}

impl Backend for TractBackend {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn embed_batch(&self, batch: &[&[i64]]) -> Result<Vec<Vec<f32>>> {
        Ok(self.encoder.embed_batch(batch)?)
    }

    fn runners(&self) -> usize {
        self.runners
    }
}
