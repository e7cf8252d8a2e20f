//! `tessera-retrieval`: the knowledge base's domain logic, with no I/O, so it runs the
//! same natively and inside the kb component (`wasm32-wasip2`).
//!
//! - [`chunking`]: [`chunk_document`] splits markdown or plain text into [`Chunk`]s under
//!   a token budget, respecting headings, paragraphs, lists, tables, code fences and
//!   sentences, with a small overlap; token counts come from a [`TokenCounter`].
//! - [`front_matter`]: the `---` metadata block that opens a document ([`front_matter::parse`]).
//! - [`bm25`]: Okapi BM25's parameters and formula (the text side's ranking).
//! - [`fusion`]: [`reciprocal_rank_fusion`] of ranked lists, keeping each hit's source ranks.
//! - [`metrics`]: recall@k and MRR for the labelled evaluation set.
//! - [`content_hash`]: [`content_hash()`] of normalised text, for idempotent re-ingest.
//! - [`ingest`]: [`NewDocument`] validation for `POST /v1/kb/documents`.
//! - [`query`]: [`SearchRequest`] validation; a [`QueryError`] names its field and code.
//! - [`title`]: a title derived from the content when a document is posted without one.
//! - [`listing`]: `GET /v1/kb/documents` filters and cursors; bulk-delete filters.
//! - [`bulk`]: NDJSON bulk ingest, validated line by line.
//! - [`grouping`]: one search result per document.
//! - [`search_sql`]: the SQL of the vector and text sides (the kb runs it; the bench explains it).
//! - [`stopwords`]: Postgres's English stop words, to tell a stop-word-only query apart.

pub mod bm25;
pub mod bulk;
pub mod chunking;
pub mod content_hash;
pub mod front_matter;
pub mod fusion;
pub mod grouping;
pub mod ingest;
pub mod listing;
pub mod metrics;
pub mod query;
pub mod search_sql;
pub mod stopwords;
pub mod title;

pub use bulk::{BulkLine, MAX_BULK_BYTES, MAX_BULK_LINES, parse_ndjson};
pub use chunking::{
    Chunk, ChunkConfig, TokenCounter, WordSegmentCounter, chunk_document, passage_text,
};
pub use content_hash::{ContentHash, content_hash};
pub use fusion::{DEFAULT_RRF_K, FusedHit, RankedList, SourceRank, reciprocal_rank_fusion};
pub use grouping::{DocumentGroup, group_by_document};
pub use ingest::{DocumentFormat, NewDocument};
pub use listing::{Cursor, DeleteFilter, DocumentStatus, ListQuery};
pub use metrics::{LabelledQuestion, QueryScore, QuestionKind, Summary, evaluate, summarise};
pub use query::{
    GroupBy, MetadataFilter, QueryError, Scope, SearchMode, SearchRequest, tsquery_terms,
};
pub use stopwords::only_stop_words;
