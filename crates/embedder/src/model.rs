//! The BERT encoder on tract: ONNX bytes in, pooled unit vectors out.
//!
//! The graph is the one [`convert`](crate::convert) writes: inputs `input_ids` (i64
//! `[batch, sequence]`) and `attention_bias` (f32 `[batch, 1, 1, sequence]`: 0 for tokens,
//! [`MASK_BIAS`] for padding), output `last_hidden_state` (f32 `[batch, sequence, hidden]`).
//! An additive mask of that shape keeps both dimensions symbolic through tract's shape
//! inference, so one optimised plan serves every batch size and length.
//!
//! Measured cost of that generality (per-op profile, one 128-token passage): with symbolic
//! shapes tract runs element-wise adds on its generic broadcasting path, so the mask and
//! residual adds take about 13% of the time; matrix products take about 70%. A 12-token
//! query is bound by streaming the 42 MB of encoder weights through the matrix products.

use crate::error::{EmbedError, Result};
use crate::pooling::{l2_normalize, mean_pool};
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

/// Added to the attention scores of padding positions: softmax gives them zero weight
/// (e^-10000 underflows), and a finite value keeps infinities out of the arithmetic.
pub const MASK_BIAS: f32 = -10_000.0;
/// Input and output names of the graph.
pub const INPUT_IDS: &str = "input_ids";
pub const ATTENTION_BIAS: &str = "attention_bias";
pub const LAST_HIDDEN_STATE: &str = "last_hidden_state";
/// `[PAD]` in the BERT vocabulary; its positions are masked, so the value only has to be a
/// valid row of the embedding table.
const PAD_ID: i64 = 0;

/// An optimised, runnable encoder. Cheap to share: runs keep their state per call.
#[derive(Debug, Clone)]
pub struct BertEncoder {
    plan: Arc<TypedRunnableModel>,
    hidden_size: usize,
}

fn load_error(e: impl std::fmt::Display) -> EmbedError {
    // `{:#}` keeps anyhow's chain of causes on one line.
    EmbedError::ModelLoad(format!("{e:#}"))
}

impl BertEncoder {
    /// Parses, types and optimises the ONNX graph for symbolic batch and sequence lengths.
    pub fn from_onnx(onnx: &[u8]) -> Result<Self> {
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &*onnx)
            .map_err(load_error)?;
        let names: Vec<&str> = model
            .input_outlets()
            .map_err(load_error)?
            .iter()
            .map(|o| model.node(o.node).name.as_str())
            .collect();
        if names != [INPUT_IDS, ATTENTION_BIAS] {
            return Err(EmbedError::ModelLoad(format!(
                "inputs are {names:?}, expected [{INPUT_IDS:?}, {ATTENTION_BIAS:?}]"
            )));
        }
        let batch = model.symbols.sym("batch").to_dim();
        let seq = model.symbols.sym("sequence").to_dim();
        model
            .set_input_fact(0, i64::fact([batch.clone(), seq.clone()]).into())
            .map_err(load_error)?;
        model
            .set_input_fact(1, f32::fact([batch, 1.to_dim(), 1.to_dim(), seq]).into())
            .map_err(load_error)?;
        let typed = model.into_optimized().map_err(load_error)?;
        let output = typed.output_fact(0).map_err(load_error)?;
        let hidden_size = (output.rank() == 3)
            .then(|| output.shape[2].to_usize().ok())
            .flatten()
            .ok_or_else(|| {
                EmbedError::ModelLoad(format!(
                    "output {:?} is not [batch, sequence, hidden]",
                    output.shape
                ))
            })?;
        let plan = typed.into_runnable().map_err(load_error)?;
        Ok(Self { plan, hidden_size })
    }

    /// Width of the hidden states, and so of the embeddings (384 for all-MiniLM-L6-v2).
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Runs one batch of token-id sequences (each with its `[CLS]`/`[SEP]`) padded to the
    /// longest, and returns one mean-pooled, L2-normalised vector per sequence.
    pub fn embed_batch(&self, batch: &[&[i64]]) -> Result<Vec<Vec<f32>>> {
        let batch_size = batch.len();
        let seq = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        if batch_size == 0 || seq == 0 {
            // Nothing to run; an empty sequence (never produced by the tokenizer) pools to 0.
            return Ok(vec![vec![0.0; self.hidden_size]; batch_size]);
        }
        let mut ids = vec![PAD_ID; batch_size * seq];
        let mut bias = vec![MASK_BIAS; batch_size * seq];
        for (row, sequence) in batch.iter().enumerate() {
            ids[row * seq..row * seq + sequence.len()].copy_from_slice(sequence);
            bias[row * seq..row * seq + sequence.len()].fill(0.0);
        }
        let inference = |e: TractError| EmbedError::Inference(format!("{e:#}"));
        let ids = Tensor::from_shape(&[batch_size, seq], &ids).map_err(inference)?;
        let bias = Tensor::from_shape(&[batch_size, 1, 1, seq], &bias).map_err(inference)?;
        let outputs = self
            .plan
            .run(tvec![ids.into_tvalue(), bias.into_tvalue()])
            .map_err(inference)?;
        let hidden = outputs
            .first()
            .ok_or_else(|| EmbedError::Inference("the model returned no output".into()))?;
        let shape = hidden.shape().to_vec();
        if shape != [batch_size, seq, self.hidden_size] {
            return Err(EmbedError::OutputShape {
                shape,
                batch: batch_size,
                seq,
            });
        }
        let view = hidden.to_plain_array_view::<f32>().map_err(inference)?;
        let values = view
            .as_slice()
            .ok_or_else(|| EmbedError::Inference("the output is not contiguous".into()))?;
        let per_sequence = seq * self.hidden_size;
        Ok(batch
            .iter()
            .zip(values.chunks_exact(per_sequence))
            .map(|(sequence, states)| {
                let mask: Vec<bool> = (0..seq).map(|i| i < sequence.len()).collect();
                let mut pooled = mean_pool(states, self.hidden_size, &mask);
                l2_normalize(&mut pooled);
                pooled
            })
            .collect())
    }
}
