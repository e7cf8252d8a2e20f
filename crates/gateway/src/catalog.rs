//! Providers and models from configuration, with prices and the cost of a call.
//!
//! A catalog is JSON or TOML (any serde format); it is validated as it is deserialised:
//!
//! ```toml
//! [[providers]]
//! id = "openai"
//! kind = "openai"                      # openai | openai-responses | openai-compatible | anthropic | gemini | local
//! base_url = "https://api.openai.com"  # optional for hosted providers
//! api_key_variable = "openai_api_key"  # the Spin variable holding the key
//!
//! [[providers.models]]
//! id = "gpt-4o-mini"
//! tier = "cheap"                       # cheap | default | heavy
//! input_usd_per_mtok = 0.15            # USD per 1M input tokens
//! output_usd_per_mtok = 0.60
//! context_window = 128000
//! ```
//!
//! Money is integer micro-dollars (1 USD = 1,000,000), so sums never drift. A price per
//! million tokens in USD is numerically the price per token in micro-dollars.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::providers::{Endpoint, ProviderKind};
use crate::usage::Usage;

/// The model class a step asks for; ordered from cheapest to most capable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelTier {
    Cheap,
    Default,
    Heavy,
}

impl ModelTier {
    pub const ALL: [ModelTier; 3] = [ModelTier::Cheap, ModelTier::Default, ModelTier::Heavy];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cheap => "cheap",
            Self::Default => "default",
            Self::Heavy => "heavy",
        }
    }
}

impl fmt::Display for ModelTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A price in micro-dollars per million tokens; configured as USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub u64);

impl Price {
    /// From USD per million tokens, rounded to the micro-dollar; `None` if negative or not finite.
    pub fn from_usd_per_mtok(usd: f64) -> Option<Self> {
        // 1e6 USD per token bounds any real price and keeps the u64 product below overflow.
        (usd.is_finite() && (0.0..=1e6).contains(&usd)).then(|| Self((usd * 1e6).round() as u64))
    }

    pub fn usd_per_mtok(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.usd_per_mtok())
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let usd = f64::deserialize(d)?;
        Self::from_usd_per_mtok(usd).ok_or_else(|| {
            serde::de::Error::custom(format!("price {usd} must be a finite USD amount ≥ 0"))
        })
    }
}

/// One model of a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The id sent to the provider.
    pub id: String,
    pub tier: ModelTier,
    pub input_usd_per_mtok: Price,
    pub output_usd_per_mtok: Price,
    /// Input plus output tokens the model accepts.
    pub context_window: u64,
    /// The model's own output limit, if known: a call the output limit cut off may be asked
    /// again with a larger budget up to it ([`ModelConfig::larger_output_budget`]).
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
}

impl ModelConfig {
    /// The cost of `usage` in micro-dollars, rounded up so spend is never under-counted.
    pub fn cost(&self, usage: Usage) -> u64 {
        let micro_x_mtok = u128::from(usage.input_tokens) * u128::from(self.input_usd_per_mtok.0)
            + u128::from(usage.output_tokens) * u128::from(self.output_usd_per_mtok.0);
        u64::try_from(micro_x_mtok.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    /// A larger output budget to retry a call the output limit cut off, or `None` where the
    /// route does not allow one: only a model whose own output limit is known
    /// (`max_output_tokens`) and above what was `asked` gets one — at most
    /// [`LARGER_BUDGET_FACTOR`] times `asked`, and no more than the context window leaves
    /// after a prompt of `prompt_tokens`.
    pub fn larger_output_budget(&self, asked: u32, prompt_tokens: u64) -> Option<u32> {
        let ceiling = self.max_output_tokens?;
        let room =
            u32::try_from(self.context_window.saturating_sub(prompt_tokens)).unwrap_or(u32::MAX);
        let larger = ceiling
            .min(asked.saturating_mul(LARGER_BUDGET_FACTOR))
            .min(room);
        (larger > asked).then_some(larger)
    }
}

/// How many times the step's output budget a retry of a cut-off call may ask for.
pub const LARGER_BUDGET_FACTOR: u32 = 4;

/// One provider: its wire format, where it is, which variable holds its key, its models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// A name of our choosing (`openai`, `ollama`, `anthropic-eu`); routing and breaker key.
    pub id: String,
    pub kind: ProviderKind,
    /// Defaults to the provider's public endpoint; required for `openai-compatible`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The Spin variable with the platform's key (lower-case, as Spin requires).
    #[serde(default)]
    pub api_key_variable: Option<String>,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
}

impl ProviderConfig {
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref().or(self.kind.default_base_url())
    }

    /// The endpoint to build requests against, with the key the caller resolved.
    pub fn endpoint(&self, api_key: Option<String>) -> Endpoint {
        Endpoint::new(self.kind, self.base_url().unwrap_or_default(), api_key)
    }

    pub fn model(&self, id: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.id == id)
    }
}

/// A validated set of providers and models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCatalog")]
pub struct Catalog {
    providers: Vec<ProviderConfig>,
}

#[derive(Deserialize)]
struct RawCatalog {
    providers: Vec<ProviderConfig>,
}

impl TryFrom<RawCatalog> for Catalog {
    type Error = CatalogError;

    fn try_from(raw: RawCatalog) -> Result<Self, CatalogError> {
        Self::new(raw.providers)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogError {
    #[error("catalog: {0}")]
    Parse(String),
    #[error("catalog: provider id {0:?} appears twice")]
    DuplicateProvider(String),
    #[error("catalog: provider {provider:?} lists model {model:?} twice")]
    DuplicateModel { provider: String, model: String },
    #[error("catalog: provider {0:?} needs a base_url")]
    MissingBaseUrl(String),
    #[error("catalog: provider {provider:?} has an invalid base_url {url:?}")]
    InvalidBaseUrl { provider: String, url: String },
    #[error("catalog: provider {0:?} has an empty id or no models")]
    Empty(String),
    #[error("catalog: model {provider}/{model} has context_window 0")]
    ZeroContext { provider: String, model: String },
    #[error(
        "catalog: provider {provider:?} has an invalid api_key_variable {name:?} (Spin variables are [a-z0-9_], starting with a letter)"
    )]
    InvalidVariable { provider: String, name: String },
}

impl Catalog {
    pub fn new(providers: Vec<ProviderConfig>) -> Result<Self, CatalogError> {
        for (i, p) in providers.iter().enumerate() {
            if p.id.trim().is_empty() || p.models.is_empty() {
                return Err(CatalogError::Empty(p.id.clone()));
            }
            if providers[..i].iter().any(|q| q.id == p.id) {
                return Err(CatalogError::DuplicateProvider(p.id.clone()));
            }
            if p.kind != ProviderKind::Local {
                let url = p
                    .base_url()
                    .ok_or_else(|| CatalogError::MissingBaseUrl(p.id.clone()))?;
                if crate::providers::join_url(url, "", "").is_err() {
                    return Err(CatalogError::InvalidBaseUrl {
                        provider: p.id.clone(),
                        url: url.to_owned(),
                    });
                }
            }
            if let Some(v) = &p.api_key_variable {
                let ok = v.starts_with(|c: char| c.is_ascii_lowercase())
                    && v.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !ok {
                    return Err(CatalogError::InvalidVariable {
                        provider: p.id.clone(),
                        name: v.clone(),
                    });
                }
            }
            for (j, m) in p.models.iter().enumerate() {
                if p.models[..j].iter().any(|n| n.id == m.id) {
                    return Err(CatalogError::DuplicateModel {
                        provider: p.id.clone(),
                        model: m.id.clone(),
                    });
                }
                if m.context_window == 0 {
                    return Err(CatalogError::ZeroContext {
                        provider: p.id.clone(),
                        model: m.id.clone(),
                    });
                }
            }
        }
        Ok(Self { providers })
    }

    pub fn from_json(json: &str) -> Result<Self, CatalogError> {
        serde_json::from_str(json).map_err(|e| CatalogError::Parse(e.to_string()))
    }

    pub fn providers(&self) -> &[ProviderConfig] {
        &self.providers
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }

    pub fn model(&self, provider: &str, model: &str) -> Option<&ModelConfig> {
        self.provider(provider)?.model(model)
    }

    /// Every (provider, model) pair in catalog order.
    pub fn models(&self) -> impl Iterator<Item = (&ProviderConfig, &ModelConfig)> {
        self.providers
            .iter()
            .flat_map(|p| p.models.iter().map(move |m| (p, m)))
    }

    /// The cost of `usage` on `provider`/`model` in micro-dollars; `None` if not in the catalog.
    pub fn cost(&self, provider: &str, model: &str, usage: Usage) -> Option<u64> {
        Some(self.model(provider, model)?.cost(usage))
    }

    /// The built-in catalog: OpenAI, Anthropic and Gemini with two models each.
    ///
    /// **The prices are examples** (list prices in USD per 1M tokens as published in 2025);
    /// providers change them, so deployments should configure their own catalog.
    pub fn builtin() -> Self {
        fn m(
            id: &str,
            tier: ModelTier,
            input: f64,
            output: f64,
            context_window: u64,
        ) -> ModelConfig {
            ModelConfig {
                id: id.into(),
                tier,
                input_usd_per_mtok: Price::from_usd_per_mtok(input).expect("valid example price"),
                output_usd_per_mtok: Price::from_usd_per_mtok(output).expect("valid example price"),
                context_window,
                max_output_tokens: None,
            }
        }
        fn p(id: &str, kind: ProviderKind, var: &str, models: Vec<ModelConfig>) -> ProviderConfig {
            ProviderConfig {
                id: id.into(),
                kind,
                base_url: None,
                api_key_variable: Some(var.into()),
                models,
            }
        }
        use ModelTier::*;
        Self::new(vec![
            p(
                "openai",
                ProviderKind::OpenAi,
                "openai_api_key",
                vec![
                    m("gpt-4o-mini", Cheap, 0.15, 0.60, 128_000),
                    m("gpt-4o", Default, 2.50, 10.00, 128_000),
                ],
            ),
            p(
                "anthropic",
                ProviderKind::Anthropic,
                "anthropic_api_key",
                vec![
                    m("claude-3-5-haiku-latest", Cheap, 0.80, 4.00, 200_000),
                    m("claude-sonnet-4-0", Heavy, 3.00, 15.00, 200_000),
                ],
            ),
            p(
                "gemini",
                ProviderKind::Gemini,
                "gemini_api_key",
                vec![
                    m("gemini-2.0-flash", Cheap, 0.10, 0.40, 1_048_576),
                    m("gemini-2.5-pro", Heavy, 1.25, 10.00, 1_048_576),
                ],
            ),
        ])
        .expect("the built-in catalog is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_output_budget_only_where_the_model_allows_it() {
        let mut m = Catalog::builtin()
            .model("openai", "gpt-4o-mini")
            .unwrap()
            .clone();
        m.context_window = 128_000;
        m.max_output_tokens = None;
        assert_eq!(
            m.larger_output_budget(1024, 100),
            None,
            "unknown ceiling: no retry"
        );
        m.max_output_tokens = Some(1024);
        assert_eq!(
            m.larger_output_budget(1024, 100),
            None,
            "already at the ceiling"
        );
        m.max_output_tokens = Some(16_384);
        assert_eq!(m.larger_output_budget(1024, 100), Some(4096), "at most 4x");
        assert_eq!(
            m.larger_output_budget(8000, 100),
            Some(16_384),
            "at most the ceiling"
        );
        assert_eq!(
            m.larger_output_budget(1024, 125_000),
            Some(3000),
            "no more than the context window leaves"
        );
        assert_eq!(m.larger_output_budget(1024, 127_500), None);
    }

    #[test]
    fn cost_is_integer_micro_dollars_rounded_up() {
        let c = Catalog::builtin();
        // 1M input at $0.15 + 1M output at $0.60 = $0.75.
        assert_eq!(
            c.cost("openai", "gpt-4o-mini", Usage::new(1_000_000, 1_000_000)),
            Some(750_000)
        );
        // 1,000 in + 500 out on gpt-4o: 2.5 * 1000 + 10 * 500 = 7,500 µ$.
        assert_eq!(
            c.cost("openai", "gpt-4o", Usage::new(1_000, 500)),
            Some(7_500)
        );
        // One token at $0.10/M is 0.1 µ$: rounded up, never free.
        assert_eq!(
            c.cost("gemini", "gemini-2.0-flash", Usage::new(1, 0)),
            Some(1)
        );
        assert_eq!(
            c.cost("gemini", "gemini-2.0-flash", Usage::new(0, 0)),
            Some(0)
        );
        assert_eq!(c.cost("openai", "nope", Usage::new(1, 1)), None);
        // No overflow at absurd counts.
        let m = c.model("anthropic", "claude-sonnet-4-0").unwrap();
        assert_eq!(m.cost(Usage::new(u64::MAX, u64::MAX)), u64::MAX);
    }

    #[test]
    fn loads_from_json_and_toml() {
        let json = r#"{"providers":[
            {"id":"ollama","kind":"openai-compatible","base_url":"http://127.0.0.1:11434/v1",
             "models":[{"id":"llama3.2","tier":"cheap","input_usd_per_mtok":0,"output_usd_per_mtok":0,"context_window":8192}]},
            {"id":"openai","kind":"openai-responses","api_key_variable":"openai_api_key",
             "models":[{"id":"gpt-4o","tier":"heavy","input_usd_per_mtok":2.5,"output_usd_per_mtok":10,"context_window":128000,"max_output_tokens":4096}]}
        ]}"#;
        let c = Catalog::from_json(json).unwrap();
        assert_eq!(c.providers().len(), 2);
        assert_eq!(
            c.provider("openai").unwrap().base_url(),
            Some("https://api.openai.com")
        );
        assert_eq!(
            c.model("openai", "gpt-4o").unwrap().input_usd_per_mtok,
            Price(2_500_000)
        );
        let ep = c.provider("ollama").unwrap().endpoint(None);
        assert_eq!(ep.base_url, "http://127.0.0.1:11434/v1");

        let toml_text = r#"
            [[providers]]
            id = "anthropic"
            kind = "anthropic"
            api_key_variable = "anthropic_api_key"
            [[providers.models]]
            id = "claude-3-5-haiku-latest"
            tier = "default"
            input_usd_per_mtok = 0.8
            output_usd_per_mtok = 4.0
            context_window = 200000
        "#;
        let c: Catalog = toml::from_str(toml_text).unwrap();
        assert_eq!(
            c.model("anthropic", "claude-3-5-haiku-latest")
                .unwrap()
                .tier,
            ModelTier::Default
        );

        // Round trip through JSON keeps prices exact.
        let back =
            Catalog::from_json(&serde_json::to_string(&Catalog::builtin()).unwrap()).unwrap();
        assert_eq!(back, Catalog::builtin());
    }

    #[test]
    fn rejects_invalid_catalogs() {
        let model = r#"{"id":"m","tier":"cheap","input_usd_per_mtok":1,"output_usd_per_mtok":1,"context_window":10}"#;
        let cases = [
            (format!(r#"{{"providers":[{{"id":"a","kind":"openai-compatible","models":[{model}]}}]}}"#), "base_url"),
            (
                format!(r#"{{"providers":[{{"id":"a","kind":"openai","models":[{model}]}},{{"id":"a","kind":"gemini","models":[{model}]}}]}}"#),
                "twice",
            ),
            (format!(r#"{{"providers":[{{"id":"a","kind":"openai","models":[{model},{model}]}}]}}"#), "twice"),
            (r#"{"providers":[{"id":"a","kind":"openai","models":[]}]}"#.to_string(), "no models"),
            (
                r#"{"providers":[{"id":"a","kind":"openai","models":[{"id":"m","tier":"cheap","input_usd_per_mtok":-1,"output_usd_per_mtok":1,"context_window":10}]}]}"#
                    .to_string(),
                "price",
            ),
            (
                format!(r#"{{"providers":[{{"id":"a","kind":"openai","api_key_variable":"OPENAI_KEY","models":[{model}]}}]}}"#),
                "api_key_variable",
            ),
            (
                format!(r#"{{"providers":[{{"id":"a","kind":"openai","base_url":"api.openai.com","models":[{model}]}}]}}"#),
                "base_url",
            ),
            (format!(r#"{{"providers":[{{"id":"a","kind":"mistral","models":[{model}]}}]}}"#), "unknown variant"),
        ];
        for (json, expect) in cases {
            let err = Catalog::from_json(&json).unwrap_err().to_string();
            assert!(err.contains(expect), "{json}: {err}");
        }
    }
}
