//! The embedding worker, in Spin's remote-LLM protocol (`POST {url}/embed`, bearer token):
//! the endpoint real Spin's `[llm_compute] type = "remote_http"` calls.

use crate::bindings::fermyon::spin::llm::{EmbeddingsResult, EmbeddingsUsage, Error};
use crate::trace::TraceParent;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::time::Duration;

/// Where generate-embeddings goes for models the host does not run itself.
#[derive(Clone, Debug)]
pub struct LlmWorker {
    pub url: String,
    pub token: Option<String>,
}

pub struct RemoteModels {
    worker: LlmWorker,
    client: Client<HttpConnector, Full<Bytes>>,
}

#[derive(Deserialize)]
struct EmbedResponse {
    embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    usage: Option<EmbedUsage>,
}

#[derive(Deserialize)]
struct EmbedUsage {
    #[serde(alias = "promptTokenCount", alias = "prompt_token_count")]
    prompt_token_count: u32,
}

const EMBED_TIMEOUT: Duration = Duration::from_secs(60);

impl RemoteModels {
    pub fn new(worker: LlmWorker) -> Self {
        // Nagle off, as on every connection the host opens (docs/adr/0016).
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            worker,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Embeds `input` on the worker; with `trace`, the call is a child span of it (sent as
    /// `traceparent`, exported when spans are).
    pub async fn embed(
        &self,
        model: &str,
        input: Vec<String>,
        trace: Option<TraceParent>,
    ) -> Result<EmbeddingsResult, Error> {
        let call = trace.map(|parent| (parent, parent.child()));
        let start = std::time::SystemTime::now();
        let started = std::time::Instant::now();
        let result = self.send(model, input, call.map(|(_, own)| own)).await;
        if let Some((parent, own)) = call
            && tessera_otlp::exporting(&own)
        {
            tessera_otlp::export(
                tessera_otlp::SpanRecord::new(
                    &own,
                    Some(parent.parent_id),
                    "POST /embed",
                    tessera_otlp::Kind::Client,
                    start,
                    started.elapsed(),
                )
                .attribute("http.request.method", "POST")
                .attribute("server.address", "embedding-worker")
                .failed(result.as_ref().err().map(|e| format!("{e:?}"))),
            );
        }
        result
    }

    async fn send(
        &self,
        model: &str,
        input: Vec<String>,
        trace: Option<TraceParent>,
    ) -> Result<EmbeddingsResult, Error> {
        let body = serde_json::json!({ "model": model, "input": input });
        let mut request =
            http::Request::post(format!("{}/embed", self.worker.url.trim_end_matches('/')))
                .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(trace) = trace {
            request = request.header(crate::trace::TRACEPARENT, trace.to_string());
        }
        if let Some(token) = &self.worker.token {
            request = request.header(http::header::AUTHORIZATION, format!("bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Error::RuntimeError(e.to_string()))?;
        let call = async {
            let response =
                self.client.request(request).await.map_err(|e| {
                    Error::RuntimeError(format!("embedding worker unreachable: {e}"))
                })?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::RuntimeError(e.to_string()))?
                .to_bytes();
            if status == http::StatusCode::NOT_FOUND
                || status == http::StatusCode::UNPROCESSABLE_ENTITY
            {
                return Err(Error::ModelNotSupported);
            }
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes);
                return Err(if status.is_client_error() {
                    Error::InvalidInput(text.into_owned())
                } else {
                    Error::RuntimeError(format!("embedding worker answered {status}: {text}"))
                });
            }
            let parsed: EmbedResponse = serde_json::from_slice(&bytes)
                .map_err(|e| Error::RuntimeError(format!("bad embedding worker answer: {e}")))?;
            Ok(EmbeddingsResult {
                embeddings: parsed.embeddings,
                usage: EmbeddingsUsage {
                    prompt_token_count: parsed.usage.map_or(0, |u| u.prompt_token_count),
                },
            })
        };
        tokio::time::timeout(EMBED_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err(Error::RuntimeError("embedding worker timed out".into())))
    }
}
