use std::path::PathBuf;

/// What can go wrong loading the model or embedding text.
///
/// tract and tokenizers report errors as boxed or `anyhow` values; they are kept as their
/// full message (cause chain included) so this type stays `Send + Sync + 'static` and
/// comparable in tests.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid tokenizer.json: {0}")]
    TokenizerConfig(String),
    #[error("tokenizing input {index}: {message}")]
    Tokenize { index: usize, message: String },
    #[error("invalid ONNX model: {0}")]
    ModelLoad(String),
    #[error("model produces {found}-dimensional embeddings, expected {expected}")]
    Dimension { expected: usize, found: usize },
    #[error("running the model: {0}")]
    Inference(String),
    #[error("the model returned an output of shape {shape:?}, expected [{batch}, {seq}, hidden]")]
    OutputShape {
        shape: Vec<usize>,
        batch: usize,
        seq: usize,
    },
}

pub type Result<T, E = EmbedError> = std::result::Result<T, E>;
