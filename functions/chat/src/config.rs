//! Settings from Spin variables (spin.toml `[component.chat.variables]`; every one has a
//! default, so an unconfigured deployment answers locally).
//!
//! Providers: `llm_catalog` (a tessera-gateway catalog as JSON) replaces the built-in one;
//! otherwise the built-in catalog (OpenAI, Anthropic, Gemini) is used with `*_base_url`
//! overrides, plus an OpenAI-compatible server (Ollama, vLLM, llama.cpp) when
//! `openai_compatible_base_url` is set. A provider is usable when its key variable is set.

use std::time::Duration;

use tessera_gateway::{
    BreakerConfig, Catalog, ModelConfig, ModelTier, Price, ProviderConfig, ProviderKind,
    RetryPolicy, RoutingPolicy,
};
use tessera_spin_kit::ApiError;

pub struct Settings {
    pub catalog: Catalog,
    /// Platform keys by provider id (only non-empty ones).
    pub keys: Vec<(String, String)>,
    pub routing: RoutingPolicy,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
    pub heartbeat: Duration,
    pub semantic_threshold: f32,
    /// 32-byte key for bring-your-own-key storage; `None` disables it.
    pub key_encryption_key: Option<[u8; 32]>,
    /// A running turn untouched this long is closed as failed (`stale_turn_s`; see
    /// tessera_progressive::stale).
    pub stale_after_s: u32,
}

async fn var(name: &str) -> String {
    spin_sdk::variables::get(name)
        .await
        .unwrap_or_default()
        .trim()
        .to_string()
}

async fn num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ApiError> {
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

impl Settings {
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
        let mut routing = RoutingPolicy::default();
        routing.allow_local_fallback = var("llm_local_fallback").await != "false";
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
        let kek = var("key_encryption_key").await;
        let key_encryption_key = if kek.is_empty() {
            None
        } else {
            Some(crate::crypto::parse_key(&kek).ok_or_else(|| {
                ApiError::dependency(
                    "config_error",
                    "variable key_encryption_key must be 64 hex digits (32 bytes)",
                )
            })?)
        };
        Ok(Self {
            catalog,
            keys,
            routing,
            retry,
            breaker,
            heartbeat: Duration::from_millis(num("chat_heartbeat_ms", 5_000).await?.max(50)),
            semantic_threshold: num(
                "cache_semantic_threshold",
                tessera_gateway::cache::DEFAULT_SEMANTIC_THRESHOLD,
            )
            .await?,
            key_encryption_key,
            stale_after_s: tessera_progressive::stale::stale_after(&var("stale_turn_s").await)
                .map_err(|e| {
                    ApiError::dependency("config_error", format!("variable stale_turn_s: {e}"))
                })?,
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
