//! `tessera-retrieval`: the knowledge base's domain logic, with no I/O, so it runs the
//! same natively and inside the kb component (`wasm32-wasip2`).
//!
//! - [`chunking`]: [`chunk_document`] splits markdown or plain text into [`Chunk`]s under
//!   a token budget, respecting headings, paragraphs, lists, tables, code fences and
//!   sentences, with a small overlap; token counts come from a [`TokenCounter`].
//! - [`front_matter`]: the `---` metadata block that opens a document ([`front_matter::parse`]).
//! - [`fusion`]: [`reciprocal_rank_fusion`] of ranked lists, keeping each hit's source ranks.
//! - [`metrics`]: recall@k and MRR for the labelled evaluation set.
//! - [`content_hash`]: [`content_hash()`] of normalised text, for idempotent re-ingest.
//! - [`ingest`]: [`NewDocument`] validation for `POST /v1/kb/documents`.
//! - [`query`]: [`SearchRequest`] validation; a [`QueryError`] names its field and code.

pub mod chunking;
pub mod content_hash;
pub mod front_matter;
pub mod fusion;
pub mod ingest;
pub mod metrics;
pub mod query;

pub use chunking::{
    Chunk, ChunkConfig, TokenCounter, WordSegmentCounter, chunk_document, passage_text,
};
pub use content_hash::{ContentHash, content_hash};
pub use fusion::{DEFAULT_RRF_K, FusedHit, RankedList, SourceRank, reciprocal_rank_fusion};
pub use ingest::{DocumentFormat, NewDocument};
pub use metrics::{LabelledQuestion, QueryScore, QuestionKind, Summary, evaluate, summarise};
pub use query::{MetadataFilter, QueryError, Scope, SearchMode, SearchRequest, tsquery_terms};
