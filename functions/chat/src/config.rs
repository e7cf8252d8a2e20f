//! Settings from Spin variables (spin.toml `[component.chat.variables]`; every one has a
//! default, so an unconfigured deployment answers locally).
//!
//! Providers: `llm_catalog` (a tessera-gateway catalog as JSON) replaces the built-in one;
//! otherwise the built-in catalog (OpenAI, Anthropic, Gemini) is used with `*_base_url`
//! overrides, plus an OpenAI-compatible server (Ollama, vLLM, llama.cpp) when
//! `openai_compatible_base_url` is set. A provider is usable when its key variable is set.

use std::time::Duration;

use tessera_gateway::{BreakerConfig, Catalog, RetryPolicy, RoutingPolicy};
use tessera_spin_kit::ApiError;
use tessera_spin_kit::llm::{ProviderSettings, num, var};

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

impl Settings {
    pub async fn load() -> Result<Self, ApiError> {
        // Providers, keys, routing, retries and breakers: the variables chat shares with the
        // picker.
        let ProviderSettings {
            catalog,
            keys,
            routing,
            retry,
            breaker,
        } = ProviderSettings::load().await?;
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
