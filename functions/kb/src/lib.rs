//! The knowledge base component.
//!
//! - `POST   /v1/kb/documents`       ingest a document (chunked, embedded inline when small,
//!   queued for the embedding worker when large); idempotent by content hash
//! - `GET    /v1/kb/documents`       list documents: filters, cursor pagination
//! - `POST   /v1/kb/documents/bulk`  NDJSON bulk ingest, per-line results
//! - `POST   /v1/kb/documents/delete` delete every document matching a filter
//! - `GET    /v1/kb/documents/{id}`  a document, its status and (`?chunks=true`) chunks
//! - `DELETE /v1/kb/documents/{id}`  a document and its chunks
//! - `POST   /v1/kb/search`          hybrid | vector | text search with scopes and filters
//! - `POST   /v1/embeddings`         OpenAI-compatible embeddings (all-MiniLM-L6-v2)
//! - `GET    /internal/openapi`      these operations as an OpenAPI fragment (see `openapi`)
//!
//! The tenant comes from the `x-tenant-id` header (default `default`). Domain rules
//! (validation, chunking, fusion) live in `tessera-retrieval`; this crate is the adapter
//! from HTTP to them, to the model and to Postgres.

mod access;
mod bulk;
mod documents;
mod embeddings;
mod grouping;
mod listing;
mod model;
mod openapi;
mod search;
mod sql;

// The `wizer-initialize` export (see wit/tessera.wit): loads the model so the host can
// snapshot an instance that already holds it.
wit_bindgen::generate!({
    path: "../../wit",
    world: "tessera:platform/preinit",
});

struct Preinit;

impl Guest for Preinit {
    fn wizer_initialize() {
        // An error is kept in the OnceLock and reported by the first request that needs
        // the model; initialisation itself must not trap.
        let _ = model::embedder();
        tessera_embedder::snapshot::scrub_free_memory();
    }
}

export!(Preinit);

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;
use tessera_retrieval::QueryError;
use tessera_spin_kit::auth;
use tessera_spin_kit::{ApiError, StatusCode, json_response};

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    // This component's part of the API description, asked for by service chaining (admin's
    // `/openapi.json`); it names no tenant's data.
    if req.method() == Method::GET && req.uri().path() == tessera_api::openapi::FRAGMENT_PATH {
        return json_response(StatusCode::OK, &openapi::fragment());
    }
    auth::serve_json(req, |req, _caller| route(req)).await
}

type Answer = Result<(StatusCode, serde_json::Value), ApiError>;

async fn route(req: Request) -> Answer {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    let tenant = tenant(&req)?;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (segments.as_slice(), method) {
        (["v1", "kb", "documents"], Method::POST) => documents::create(req, &tenant).await,
        (["v1", "kb", "documents"], Method::GET) => {
            listing::list(req.uri().query().unwrap_or(""), &tenant).await
        }
        (["v1", "kb", "documents", "bulk"], Method::POST) => bulk::ingest(req, &tenant).await,
        (["v1", "kb", "documents", "delete"], Method::POST) => {
            documents::delete_by_filter(req, &tenant).await
        }
        (["v1", "kb", "documents", "bulk" | "delete"], _) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        (["v1", "kb", "documents", id], Method::GET) => {
            let query = tessera_api::Query::parse(req.uri().query().unwrap_or(""))?;
            let chunks = query.get("chunks") == Some("true");
            documents::get(id, &tenant, chunks).await
        }
        (["v1", "kb", "documents", id], Method::DELETE) => {
            documents::delete(id, &tenant, access::may_curate(&req)).await
        }
        (["v1", "kb", "search"], Method::POST) => search::search(req, &tenant).await,
        (["v1", "embeddings"], Method::POST) => embeddings::create(req).await,
        (["v1", "kb", "documents"], _) => Err(ApiError::method_not_allowed("GET, POST")),
        (["v1", "kb", "search"] | ["v1", "embeddings"], _) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        (["v1", "kb", "documents", _], _) => Err(ApiError::method_not_allowed("GET, DELETE")),
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no knowledge-base endpoint at {path}"),
        )),
    }
}

/// The caller's tenant. Until API keys exist, a trusted gateway in front sets the header.
fn tenant(req: &Request) -> Result<String, ApiError> {
    let Some(value) = req.headers().get("x-tenant-id") else {
        return Ok("default".into());
    };
    let text = value.to_str().unwrap_or("");
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid {
        return Err(ApiError::bad_request(
            "invalid_header",
            "x-tenant-id must be 1-64 letters, digits, '-', '_' or '.'",
            Some("x-tenant-id"),
        ));
    }
    Ok(text.to_string())
}

/// A refused request in the API's error shape.
fn refused(err: QueryError) -> ApiError {
    let mut e = ApiError::bad_request(err.code(), err.to_string(), err.field());
    e.status = err.http_status();
    e
}
