//! The knowledge base's operations, answered on `GET /internal/openapi` for the application's
//! one API description (tessera_api::openapi).
//!
//! Documents, searches and bulk deletes are validated by hand in tessera-retrieval
//! (`NewDocument::from_json`, `SearchRequest::from_json`, `DeleteFilter::from_json`: a JSON
//! value walked field by field, to name the bad field), so their schemas are written here
//! from those parsers; keep them in step. The embeddings body is the derived type itself.

use serde_json::{Value, json};
use tessera_api::openapi::{Fragment, Operation};
use tessera_retrieval::ingest::{MAX_CONTENT_BYTES, MAX_METADATA_BYTES, MAX_TITLE_CHARS};
use tessera_retrieval::listing::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};
use tessera_retrieval::query::{
    DEFAULT_K, EMBEDDING_DIMENSIONS, MAX_FILTER_KEY_CHARS, MAX_FILTER_KEYS, MAX_FILTER_TEXT_CHARS,
    MAX_K, MAX_QUERY_CHARS, MAX_SCOPE_ID_CHARS, MAX_SCOPES, MIN_K,
};
use tessera_retrieval::{MAX_BULK_BYTES, MAX_BULK_LINES};

use crate::embeddings::EmbeddingsRequest;

pub fn fragment() -> Value {
    let text = |description: &str| json!({"type": "string", "description": description});
    Fragment::new("kb")
        .op_with_body(
            Operation::post(
                "/v1/kb/documents",
                "Add a document (chunked, embedded; idempotent by content)",
            )
            .created_or_ok(201)
            .or_answers(
                200,
                "the same content was there: that document, `duplicate: true`",
            ),
            "application/json",
            new_document(),
        )
        .op(
            Operation::get("/v1/kb/documents", "List documents, newest first")
                .query("scope", scope(), "only documents of this scope")
                .query(
                    "filter",
                    text("a JSON object of metadata equalities, e.g. {\"sector\":\"energy\"}"),
                    "only documents whose metadata holds every equality",
                )
                .query("status", status(), "only documents in this embedding state")
                .query(
                    "created_after",
                    text("an RFC 3339 time or a UTC day YYYY-MM-DD"),
                    "created at or after",
                )
                .query(
                    "created_before",
                    text("an RFC 3339 time or a UTC day YYYY-MM-DD"),
                    "created before",
                )
                .query(
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT,
                       "default": DEFAULT_LIST_LIMIT}),
                    "documents per page",
                )
                .query(
                    "cursor",
                    text("opaque"),
                    "the page after the one that answered this `next_cursor`",
                ),
        )
        .op_with_body(
            Operation::post(
                "/v1/kb/documents/bulk",
                "Add documents from NDJSON, one per line",
            ),
            "application/x-ndjson",
            // Read as bytes and split into lines (tessera_retrieval::parse_ndjson); each
            // line is validated as the body of `POST /v1/kb/documents`.
            json!({
                "type": "string",
                "description": format!(
                    "one document per line, each a JSON object as the body of \
                     `POST /v1/kb/documents`; blank lines are skipped; at most \
                     {MAX_BULK_LINES} documents and {} MiB. Also accepted as \
                     application/ndjson, application/jsonl, application/x-jsonlines or \
                     application/json. Each line's outcome is answered in order; a bad line \
                     does not stop the others.",
                    MAX_BULK_BYTES >> 20
                ),
            }),
        )
        .op_with_body(
            Operation::post(
                "/v1/kb/documents/delete",
                "Delete every document matching a filter",
            ),
            "application/json",
            delete_filter(),
        )
        .op(
            Operation::get("/v1/kb/documents/{id}", "One document and its status").query(
                "chunks",
                json!({"type": "boolean", "default": false}),
                "`true`: include its chunks",
            ),
        )
        .op(Operation::delete(
            "/v1/kb/documents/{id}",
            "Delete a document and its chunks (a curated one needs an operator)",
        ))
        .op_with_body(
            Operation::post(
                "/v1/kb/search",
                "Search the knowledge base (hybrid, vector or text)",
            ),
            "application/json",
            search_request(),
        )
        .op_with::<EmbeddingsRequest>(Operation::post(
            "/v1/embeddings",
            "Embed texts (OpenAI-compatible, all-MiniLM-L6-v2)",
        ))
        .to_json()
}

/// A scope string (tessera_retrieval::Scope::parse).
fn scope() -> Value {
    json!({
        "type": "string",
        "pattern": format!(
            "^(global|curated|tenant:[A-Za-z0-9._-]{{1,{MAX_SCOPE_ID_CHARS}}}|page:\\S{{1,{MAX_SCOPE_ID_CHARS}}})$"
        ),
        "description": "`global` (shared), `curated` (promoted answers), `tenant:<id>` (the \
                        caller's tenant only) or `page:<id>` (one page of a client app)",
    })
}

/// One scope or a list of them (tessera_retrieval::query::parse_scopes); `null` = not given.
fn scopes(description: &str) -> Value {
    json!({
        "description": description,
        "anyOf": [
            scope(),
            {"type": "array", "items": scope(), "maxItems": MAX_SCOPES},
            {"type": "null"},
        ],
    })
}

/// A flat object of equalities (tessera_retrieval::MetadataFilter::from_json).
fn metadata_filter() -> Value {
    json!({
        "type": ["object", "null"],
        "description": "metadata equalities, all of which must hold",
        "maxProperties": MAX_FILTER_KEYS,
        "propertyNames": {"minLength": 1, "maxLength": MAX_FILTER_KEY_CHARS},
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": MAX_FILTER_TEXT_CHARS},
                {"type": "number"},
                {"type": "boolean"},
            ],
        },
    })
}

fn status() -> Value {
    json!({"type": "string", "enum": ["pending", "ready", "failed"]})
}

/// The body of `POST /v1/kb/documents` (tessera_retrieval::NewDocument::from_json).
fn new_document() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["content"],
        "properties": {
            "content": {
                "type": "string",
                "minLength": 1,
                "description": format!(
                    "the text: not only whitespace, no NUL, at most {} MiB of UTF-8",
                    MAX_CONTENT_BYTES >> 20
                ),
            },
            "title": {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": MAX_TITLE_CHARS,
                "description": "trimmed; default: from front matter, the first heading or the \
                                first line",
            },
            "scope": {
                "anyOf": [scope(), {"type": "null"}],
                "default": "global",
                "description": "where the document belongs; `curated` needs an operator",
            },
            "metadata": {
                "type": ["object", "null"],
                "default": {},
                "description": format!(
                    "copied onto every chunk for filtering; at most {MAX_METADATA_BYTES} bytes \
                     as JSON"
                ),
            },
            "format": {
                "type": ["string", "null"],
                "enum": ["markdown", "md", "text", "plain", null],
                "default": "markdown",
                "description": "how the content is chunked (case-insensitive)",
            },
        },
    })
}

/// The body of `POST /v1/kb/search` (tessera_retrieval::SearchRequest::from_json).
fn search_request() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["query"],
        "properties": {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_QUERY_CHARS,
                "description": "the question (trimmed; not empty)",
            },
            "k": {
                "type": ["integer", "null"],
                "minimum": MIN_K,
                "maximum": MAX_K,
                "default": DEFAULT_K,
                "description": "how many results",
            },
            "mode": {
                "type": ["string", "null"],
                "enum": ["hybrid", "vector", "text", null],
                "default": "hybrid",
                "description": "which retrievers answer (case-insensitive); hybrid fuses vector \
                                and full text by reciprocal rank",
            },
            "scope": scopes("the scopes searched; default: every scope of the caller's tenant"),
            "filter": metadata_filter(),
            "embedding": {
                "type": ["array", "null"],
                "items": {"type": "number"},
                "minItems": EMBEDDING_DIMENSIONS,
                "maxItems": EMBEDDING_DIMENSIONS,
                "description": "the query's all-MiniLM-L6-v2 embedding, when the caller has it",
            },
            "group_by": {
                "type": ["string", "null"],
                "enum": ["document", null],
                "description": "`document`: one result per document, its best chunk with its \
                                neighbours as context",
            },
        },
    })
}

/// The body of `POST /v1/kb/documents/delete` (tessera_retrieval::DeleteFilter::from_json).
fn delete_filter() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "which documents to delete: all conditions given must hold; at least \
                        one of scope, filter or status, or `\"all\": true`",
        "properties": {
            "scope": scopes("only documents of these scopes (`curated` needs an operator)"),
            "filter": metadata_filter(),
            "status": {"anyOf": [status(), {"type": "null"}]},
            "all": {
                "type": ["boolean", "null"],
                "default": false,
                "description": "`true` with no other condition: every document of the tenant \
                                (curated ones only for an operator)",
            },
        },
    })
}
