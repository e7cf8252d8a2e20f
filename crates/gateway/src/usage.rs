//! Token accounting and the `llm_calls` record.
//!
//! Providers report usage at the end of a stream; when one does not (an OpenAI-compatible
//! server without `stream_options`, a stream cut short), [`estimate_tokens`] gives an
//! approximation so that spend is never recorded as zero.

use serde::{Deserialize, Serialize};

/// Tokens consumed by one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub const fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
        }
    }

    pub const fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Characters per token used by [`estimate_tokens`]. An *estimate*: about right for English
/// prose with BPE tokenizers (OpenAI's own rule of thumb), low for code and most other scripts.
pub const CHARS_PER_TOKEN: u64 = 4;

/// Approximate token count of `text`: Unicode scalar values / 4, rounded up, so any non-empty
/// text counts at least one token. Use only when the provider did not report usage.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(CHARS_PER_TOKEN)
}

/// The provider's usage when reported, else an estimate from the prompt and the output text.
/// The flag says whether the result is estimated (store it, so reports can tell them apart).
pub fn usage_or_estimate(reported: Option<Usage>, prompt: &str, output: &str) -> (Usage, bool) {
    match reported {
        Some(u) => (u, false),
        None => (
            Usage::new(estimate_tokens(prompt), estimate_tokens(output)),
            true,
        ),
    }
}

/// How a call was answered from the response cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheHit {
    Miss,
    Exact,
    Semantic,
}

impl CacheHit {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Miss => "miss",
            Self::Exact => "exact",
            Self::Semantic => "semantic",
        }
    }
}

/// How a call ended; stored as text in `llm_calls.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Ok,
    /// The provider answered with an error status or an in-stream error.
    ProviderError,
    Timeout,
    ConnectionError,
    /// The stream could not be parsed or ended early.
    MalformedStream,
    /// Not sent: the budget or quota would have been exceeded.
    BudgetExhausted,
    /// Not sent: the provider's circuit breaker was open.
    CircuitOpen,
    /// The client went away; no further paid calls were made.
    Cancelled,
}

impl CallStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ProviderError => "provider_error",
            Self::Timeout => "timeout",
            Self::ConnectionError => "connection_error",
            Self::MalformedStream => "malformed_stream",
            Self::BudgetExhausted => "budget_exhausted",
            Self::CircuitOpen => "circuit_open",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One row of `llm_calls`: every attempt, cached answer or refused call is one record.
/// Column names are the field names; the chat component adds ids (tenant, user, step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Whether the token counts are [`estimate_tokens`] estimates.
    pub usage_estimated: bool,
    pub cost_micros: u64,
    pub latency_ms: u64,
    pub cache_hit: CacheHit,
    pub status: CallStatus,
    /// 1 for the first attempt against this provider and model.
    pub attempt: u32,
    /// HTTP status of the provider's answer, when there was one.
    pub http_status: Option<u16>,
    /// Short reason for a non-ok status (never a prompt, never a key).
    pub error: Option<String>,
    /// Bring-your-own-key call: paid by the user, not the platform.
    pub user_key: bool,
}

impl LlmCall {
    /// A successful call's record.
    pub fn ok(
        provider: &str,
        model: &str,
        usage: Usage,
        cost_micros: u64,
        latency_ms: u64,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            usage_estimated: false,
            cost_micros,
            latency_ms,
            cache_hit: CacheHit::Miss,
            status: CallStatus::Ok,
            attempt: 1,
            http_status: Some(200),
            error: None,
            user_key: false,
        }
    }

    /// A call that failed or was not sent; no tokens are billed unless set afterwards.
    pub fn failed(
        provider: &str,
        model: &str,
        status: CallStatus,
        error: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
            input_tokens: 0,
            output_tokens: 0,
            usage_estimated: false,
            cost_micros: 0,
            latency_ms: 0,
            cache_hit: CacheHit::Miss,
            status,
            attempt: 1,
            http_status: None,
            error: Some(error.into()),
            user_key: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_rounds_up_and_counts_chars_not_bytes() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("a"), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        // 4 chars, 8 bytes: one token.
        assert_eq!(estimate_tokens("éééé"), 1);
    }

    #[test]
    fn reported_usage_wins_over_estimate() {
        let (u, est) = usage_or_estimate(Some(Usage::new(10, 20)), "xxxx", "yyyy");
        assert_eq!((u, est), (Usage::new(10, 20), false));
        let (u, est) = usage_or_estimate(None, "12345678", "1234");
        assert_eq!((u, est), (Usage::new(2, 1), true));
    }

    #[test]
    fn record_serialises_with_snake_case_enums() {
        let mut call = LlmCall::ok("openai", "gpt-4o-mini", Usage::new(100, 50), 45, 812);
        call.cache_hit = CacheHit::Semantic;
        let v = serde_json::to_value(&call).unwrap();
        assert_eq!(v["cache_hit"], "semantic");
        assert_eq!(v["status"], "ok");
        assert_eq!(v["input_tokens"], 100);
        assert_eq!(CallStatus::BudgetExhausted.as_str(), "budget_exhausted");
        let back: LlmCall = serde_json::from_value(v).unwrap();
        assert_eq!(back, call);
    }
}
