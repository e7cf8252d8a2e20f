//! `fermyon:spin/llm@2.0.0`. Embeddings are forwarded to the embedding worker in Spin's
//! remote-LLM protocol (`POST {url}/embed`, bearer token), the same endpoint real Spin's
//! `[llm_compute] type = "remote_http"` calls; generative inference is the chat gateway's
//! job, so `infer` answers model-not-supported.

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::fermyon::spin::llm::{self, EmbeddingsResult, EmbeddingsUsage, Error};
use crate::state::HostState;
use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasData, Linker};

/// Where generate-embeddings goes; `None` when no worker is configured.
#[derive(Clone, Debug)]
pub struct LlmWorker {
    pub url: String,
    pub token: Option<String>,
}

pub struct LlmFactor {
    worker: Option<LlmWorker>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl LlmFactor {
    pub fn new(worker: Option<LlmWorker>) -> Self {
        Self {
            worker,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

pub struct LlmState {
    factor: Arc<LlmFactor>,
}

impl Factor for Arc<LlmFactor> {
    type InstanceState = LlmState;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        llm::add_to_linker::<HostState, Llm>(linker, |s| &mut s.llm)?;
        Ok(())
    }

    fn instance_state(&self, _: &ComponentConfig) -> LlmState {
        LlmState {
            factor: self.clone(),
        }
    }
}

pub struct Llm;

impl HasData for Llm {
    type Data<'a> = &'a mut LlmState;
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

impl LlmFactor {
    async fn embed(&self, model: String, input: Vec<String>) -> Result<EmbeddingsResult, Error> {
        let Some(worker) = &self.worker else {
            return Err(Error::RuntimeError(
                "no embedding worker configured (start the host with --llm-url)".into(),
            ));
        };
        let body = serde_json::json!({ "model": model, "input": input });
        let mut request =
            http::Request::post(format!("{}/embed", worker.url.trim_end_matches('/')))
                .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &worker.token {
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

impl llm::Host for LlmState {
    async fn infer(
        &mut self,
        _model: llm::InferencingModel,
        _prompt: String,
        _params: Option<llm::InferencingParams>,
    ) -> wasmtime::Result<Result<llm::InferencingResult, Error>> {
        Ok(Err(Error::ModelNotSupported))
    }

    async fn generate_embeddings(
        &mut self,
        model: llm::EmbeddingModel,
        text: Vec<String>,
    ) -> wasmtime::Result<Result<EmbeddingsResult, Error>> {
        Ok(self.factor.embed(model, text).await)
    }
}
