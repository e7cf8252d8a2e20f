use crate::error::{EmbedError, Result};
use crate::model::BertEncoder;
use crate::tokenize::{TokenizedText, WordPieceTokenizer};
use crate::{DIM, ONNX_FILE, TOKENIZER_FILE};
use std::path::Path;

/// A unit vector of [`DIM`] values; cosine similarity is its dot product.
pub type Embedding = Vec<f32>;

/// Sequences per model call by default. Measured natively with tract on 32 passages of 128
/// tokens (`examples/embed_bench.rs`, on-CPU time): about 20 passages/s one at a time, 22–23
/// in batches of 2 to 4, 18–20 in one batch of 32 (its attention tensors outgrow the caches).
/// Small batches win; big ones do not pay on CPU.
pub const DEFAULT_BATCH_SIZE: usize = 4;

/// all-MiniLM-L6-v2: tokenizer + encoder + pooling. `Send + Sync`; share one per process.
#[derive(Debug, Clone)]
pub struct Embedder {
    tokenizer: WordPieceTokenizer,
    encoder: BertEncoder,
    batch_size: usize,
}

impl Embedder {
    /// Loads the model from the bytes of its ONNX graph (as [`convert`](crate::convert)
    /// writes it) and its `tokenizer.json`. Parsing and optimising take a while (about
    /// 0.25 s natively), so do it once.
    pub fn from_bytes(onnx: &[u8], tokenizer_json: &[u8]) -> Result<Self> {
        let tokenizer = WordPieceTokenizer::from_bytes(tokenizer_json)?;
        let encoder = BertEncoder::from_onnx(onnx)?;
        if encoder.hidden_size() != DIM {
            return Err(EmbedError::Dimension {
                expected: DIM,
                found: encoder.hidden_size(),
            });
        }
        Ok(Self {
            tokenizer,
            encoder,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Loads `model.onnx` and `tokenizer.json` from a model directory (what
    /// `setup::ensure_model` produces).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let read = |name: &str| {
            let path = dir.as_ref().join(name);
            std::fs::read(&path).map_err(|source| EmbedError::Io { path, source })
        };
        Self::from_bytes(&read(ONNX_FILE)?, &read(TOKENIZER_FILE)?)
    }

    /// Sequences per model call in [`embed`](Self::embed) (at least 1). Inputs are grouped
    /// by length, so a batch pads little.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// One embedding per text, in order. Any text is valid, the empty string included
    /// (the model then sees only `[CLS] [SEP]`); texts over [`MAX_TOKENS`](crate::MAX_TOKENS)
    /// word pieces are truncated, as sentence-transformers does.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Embedding>> {
        let tokenized = texts
            .iter()
            .enumerate()
            .map(|(index, text)| self.tokenizer.tokenize(text.as_ref(), index))
            .collect::<Result<Vec<TokenizedText>>>()?;
        // Longest first, so each batch holds sequences of similar length.
        let mut order: Vec<usize> = (0..tokenized.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokenized[i].ids.len()));
        let mut embeddings: Vec<Option<Embedding>> = vec![None; texts.len()];
        for group in order.chunks(self.batch_size) {
            let batch: Vec<&[i64]> = group.iter().map(|&i| tokenized[i].ids.as_slice()).collect();
            for (&i, vector) in group.iter().zip(self.encoder.embed_batch(&batch)?) {
                embeddings[i] = Some(vector);
            }
        }
        embeddings
            .into_iter()
            .map(|e| e.ok_or_else(|| EmbedError::Inference("an input got no embedding".into())))
            .collect()
    }

    /// The embedding of one text.
    pub fn embed_one(&self, text: &str) -> Result<Embedding> {
        let tokenized = self.tokenizer.tokenize(text, 0)?;
        self.encoder
            .embed_batch(&[&tokenized.ids])?
            .pop()
            .ok_or_else(|| EmbedError::Inference("the input got no embedding".into()))
    }

    /// Word pieces `text` needs, `[CLS]` and `[SEP]` included, before truncation.
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        self.tokenizer.count_tokens(text)
    }

    /// Token ids as the model sees them, with the truncation flag.
    pub fn tokenize(&self, text: &str) -> Result<TokenizedText> {
        self.tokenizer.tokenize(text, 0)
    }

    pub fn tokenizer(&self) -> &WordPieceTokenizer {
        &self.tokenizer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedder_can_be_shared_across_threads() {
        // A component caches one in a static; the worker shares one between tasks.
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Embedder>();
        assert_send_sync::<EmbedError>();
    }

    #[test]
    fn missing_directory_names_the_file() {
        let err = Embedder::from_dir("/nonexistent/model").unwrap_err();
        assert!(
            matches!(&err, EmbedError::Io { path, .. } if path.ends_with(ONNX_FILE)),
            "{err}"
        );
    }
}
