//! `fermyon:spin/llm@2.0.0`. `generate-embeddings` runs `all-minilm-l6-v2` in the host
//! process when its files are in the models directory ([`local`], as Spin's local LLM
//! support does) and forwards other models — or every model, when the host has no local
//! files — to the embedding worker ([`remote`]). A component may use only the models its
//! `ai_models` lists, as on Spin. Generative inference is the chat gateway's job, so `infer`
//! answers model-not-supported.

pub mod local;
pub mod remote;

use super::Factor;
use crate::app::ComponentConfig;
use crate::bindings::fermyon::spin::llm::{self, EmbeddingsResult, Error};
use crate::metrics::LlmMetrics;
use crate::state::HostState;
use crate::trace::TraceParent;
use anyhow::Result;
use local::LocalModels;
pub use remote::LlmWorker;
use remote::RemoteModels;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

pub struct LlmFactor {
    local: Option<Arc<LocalModels>>,
    remote: Option<RemoteModels>,
    pub metrics: LlmMetrics,
}

impl LlmFactor {
    pub fn new(local: Option<LocalModels>, worker: Option<LlmWorker>) -> Self {
        Self {
            local: local.map(Arc::new),
            remote: worker.map(RemoteModels::new),
            metrics: LlmMetrics::default(),
        }
    }

    /// Where the host's own models come from, for the start-up log.
    pub fn local_model_dir(&self) -> Option<&std::path::Path> {
        self.local.as_deref().map(LocalModels::model_dir)
    }

    /// Loads the local model in the background when a component may use it.
    pub fn preload_for(&self, components: &[&ComponentConfig]) {
        if let Some(local) = &self.local
            && components
                .iter()
                .any(|c| c.ai_models.iter().any(|m| local.offers(m)))
        {
            local.preload();
        }
    }

    /// Runs the call where the model is, and counts it.
    async fn embed(
        &self,
        component: &Arc<str>,
        model: String,
        input: Vec<String>,
        trace: Option<TraceParent>,
    ) -> Result<EmbeddingsResult, Error> {
        let texts = input.len();
        let (backend, result) = match (&self.local, &self.remote) {
            (Some(local), _) if local.offers(&model) => ("host", local.embed(input).await),
            (_, Some(remote)) => ("worker", remote.embed(&model, input, trace).await),
            (local, None) => ("none", Err(no_model(local.is_some()))),
        };
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics.record(component, backend, outcome, texts);
        result
    }
}

/// The answer when nothing here can run the model.
fn no_model(host_has_models: bool) -> Error {
    if host_has_models {
        Error::ModelNotSupported
    } else {
        Error::RuntimeError(format!(
            "no embedding model available: {} has no model files (run `cargo xtask setup`) \
                 and no embedding worker is configured (--llm-url)",
            local::MINILM
        ))
    }
}

pub struct LlmState {
    factor: Arc<LlmFactor>,
    component: Arc<str>,
    /// The component's `ai_models`.
    allowed: Arc<[String]>,
    /// The trace of the request the instance is serving: calls to the worker are its
    /// children.
    trace: Option<TraceParent>,
}

impl LlmState {
    pub fn set_trace(&mut self, trace: Option<TraceParent>) {
        self.trace = trace;
    }
}

impl Factor for Arc<LlmFactor> {
    type InstanceState = LlmState;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        llm::add_to_linker::<HostState, Llm>(linker, |s| &mut s.llm)?;
        Ok(())
    }

    fn instance_state(&self, component: &ComponentConfig) -> LlmState {
        LlmState {
            factor: self.clone(),
            component: component.id.clone(),
            allowed: component.ai_models.clone(),
            trace: None,
        }
    }
}

pub struct Llm;

impl HasData for Llm {
    type Data<'a> = &'a mut LlmState;
}

/// Spin's answer to a model the component's manifest does not list.
fn access_denied(model: &str) -> Error {
    Error::InvalidInput(format!(
        "The component does not have access to use '{model}'. To give the component access, \
         add '{model}' to the 'ai_models' key for the component in your spin.toml manifest"
    ))
}

impl llm::Host for LlmState {
    async fn infer(
        &mut self,
        model: llm::InferencingModel,
        _prompt: String,
        _params: Option<llm::InferencingParams>,
    ) -> wasmtime::Result<Result<llm::InferencingResult, Error>> {
        if !self.allowed.iter().any(|m| *m == model) {
            return Ok(Err(access_denied(&model)));
        }
        Ok(Err(Error::ModelNotSupported))
    }

    async fn generate_embeddings(
        &mut self,
        model: llm::EmbeddingModel,
        text: Vec<String>,
    ) -> wasmtime::Result<Result<EmbeddingsResult, Error>> {
        if !self.allowed.iter().any(|m| *m == model) {
            self.factor
                .metrics
                .record(&self.component, "none", "denied", text.len());
            return Ok(Err(access_denied(&model)));
        }
        Ok(self
            .factor
            .embed(&self.component, model, text, self.trace)
            .await)
    }
}
