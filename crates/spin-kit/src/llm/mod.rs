//! The model gateway's I/O shared by the components that call model providers (chat, the
//! picker): provider settings from Spin variables, breaker rows, `llm_calls` rows,
//! and [`complete::complete`], one non-streamed completion through the routed fallback chain.
//! tessera-gateway decides (route, retry, breaker, cost); this module does what it says.

pub mod breakers;
pub mod calls;
pub mod complete;

use std::time::Duration;

use tessera_gateway::{
    BreakerConfig, Catalog, ModelConfig, ModelTier, Price, ProviderConfig, ProviderKind,
    RetryPolicy, RoutingPolicy,
};

use crate::ApiError;

/// A component variable, trimmed; empty when unset.
pub async fn var(name: &str) -> String {
    spin_sdk::variables::get(name)
        .await
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A numeric component variable; `default` when unset, a 502 `config_error` when unparsable.
pub async fn num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ApiError> {
    let v = var(name).await;
    if v.is_empty() {
        return Ok(default);
    }
    v.parse().map_err(|_| {
        ApiError::dependency(
            "config_error",
            format!("variable {name} = {v:?} is not a valid number"),
        )
    })
}

/// Providers, keys and the gateway's policies, from the component's variables (spin.toml's
/// `llm_catalog`, `*_api_key`, `*_base_url`, `openai_compatible_*`, `llm_*`, `breaker_*`).
///
/// `llm_catalog` (a tessera-gateway catalog as JSON) replaces the built-in one; otherwise the
/// built-in catalog (OpenAI, Anthropic, Gemini) is used with `*_base_url` overrides, plus an
/// OpenAI-compatible server (Ollama, vLLM, llama.cpp) when `openai_compatible_base_url` is
/// set. A provider is usable when its key variable is set.
pub struct ProviderSettings {
    pub catalog: Catalog,
    /// Platform keys by provider id (only non-empty ones).
    pub keys: Vec<(String, String)>,
    pub routing: RoutingPolicy,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
}

impl ProviderSettings {
    pub async fn load() -> Result<Self, ApiError> {
        let catalog = catalog().await?;
        let mut keys = Vec::new();
        for p in catalog.providers() {
            if let Some(name) = &p.api_key_variable {
                let key = var(name).await;
                if !key.is_empty() {
                    keys.push((p.id.clone(), key));
                }
            }
        }
        let routing = RoutingPolicy {
            allow_local_fallback: var("llm_local_fallback").await != "false",
            ..RoutingPolicy::default()
        };
        let retry = RetryPolicy {
            max_attempts: num("llm_max_attempts", 3).await?,
            base_delay: Duration::from_millis(num("llm_retry_base_ms", 250).await?),
            max_retry_after: Duration::from_millis(num("llm_max_retry_after_ms", 10_000).await?),
            // The local host gives a response stream 30 s after its head (request timeout);
            // a turn's calls stay inside that by default.
            deadline: Duration::from_millis(num("llm_step_deadline_ms", 25_000).await?),
            call_timeout: Duration::from_millis(num("llm_call_timeout_ms", 20_000).await?),
            ..RetryPolicy::default()
        };
        let breaker = BreakerConfig {
            failure_threshold: num("breaker_failure_threshold", 5).await?,
            cooldown_ms: num("breaker_cooldown_ms", 30_000).await?,
            ..BreakerConfig::default()
        };
        Ok(Self {
            catalog,
            keys,
            routing,
            retry,
            breaker,
        })
    }

    pub fn platform_key(&self, provider: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(p, _)| p == provider)
            .map(|(_, k)| k.as_str())
    }
}

async fn catalog() -> Result<Catalog, ApiError> {
    let custom = var("llm_catalog").await;
    if !custom.is_empty() {
        return Catalog::from_json(&custom).map_err(|e| {
            ApiError::dependency("config_error", format!("variable llm_catalog: {e}"))
        });
    }
    let mut providers: Vec<ProviderConfig> = Catalog::builtin().providers().to_vec();
    for p in &mut providers {
        let base = var(&format!("{}_base_url", p.id)).await;
        if !base.is_empty() {
            p.base_url = Some(base);
        }
    }
    let compatible = var("openai_compatible_base_url").await;
    if !compatible.is_empty() {
        let model = var("openai_compatible_model").await;
        providers.push(ProviderConfig {
            id: "openai-compatible".into(),
            kind: ProviderKind::OpenAiCompatible,
            base_url: Some(compatible),
            api_key_variable: Some("openai_compatible_api_key".into()),
            models: vec![ModelConfig {
                id: if model.is_empty() {
                    "llama3.2".into()
                } else {
                    model
                },
                tier: ModelTier::Cheap,
                input_usd_per_mtok: Price(0),
                output_usd_per_mtok: Price(0),
                context_window: 8_192,
                max_output_tokens: None,
            }],
        });
    }
    Catalog::new(providers).map_err(|e| ApiError::dependency("config_error", e.to_string()))
}
