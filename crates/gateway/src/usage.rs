//! Token accounting and the `llm_calls` record.
//!
//! Providers report usage at the end of a stream; when one does not (an OpenAI-compatible
//! server without `stream_options`, a stream cut short), [`estimate_tokens`] gives an
//! approximation so that spend is never recorded as zero.

use serde::{Deserialize, Serialize};

use crate::providers::FinishReason;

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

/// Tokens a provider has reported for a call so far, each count only when it was sent: what
/// a parser knows when the call fails before its end (Anthropic's `message_start` gives the
/// input at once, the output only at the end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedUsage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl ReportedUsage {
    pub const fn is_empty(&self) -> bool {
        self.input_tokens.is_none() && self.output_tokens.is_none()
    }

    /// Reported counts, with [`estimate_tokens`] of the prompt and output for the counts that
    /// were not; the flag says whether anything is estimated.
    pub fn or_estimate(self, prompt: &str, output: &str) -> (Usage, bool) {
        let usage = Usage::new(
            self.input_tokens.unwrap_or_else(|| estimate_tokens(prompt)),
            self.output_tokens
                .unwrap_or_else(|| estimate_tokens(output)),
        );
        (
            usage,
            self.input_tokens.is_none() || self.output_tokens.is_none(),
        )
    }
}

impl From<Usage> for ReportedUsage {
    fn from(u: Usage) -> Self {
        Self {
            input_tokens: Some(u.input_tokens),
            output_tokens: Some(u.output_tokens),
        }
    }
}

/// What to bill for a call that failed: the provider's counts where it reported them and
/// estimates for the rest, or nothing when it reported nothing and produced no output (a
/// call refused before generating, such as a quota error inside the stream).
pub fn failed_call_usage(
    reported: ReportedUsage,
    prompt: &str,
    output: &str,
) -> Option<(Usage, bool)> {
    if reported.is_empty() && output.is_empty() {
        return None;
    }
    Some(reported.or_estimate(prompt, output))
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
    /// The stream ended normally but the answer is not usable as complete (cut off by the
    /// length limit, refused, filtered, empty, an unknown reason): `finish_reason` says why.
    /// Billed like `ok`; never cached.
    Incomplete,
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
            Self::Incomplete => "incomplete",
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
    /// Why the model stopped, for a call whose stream reached its end; store it with
    /// [`FinishReason::as_str`].
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
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
            finish_reason: None,
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
            finish_reason: None,
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
    fn reported_counts_are_kept_and_only_missing_ones_estimated() {
        let started = ReportedUsage {
            input_tokens: Some(11),
            output_tokens: None,
        };
        assert_eq!(
            started.or_estimate("a much longer prompt than eleven tokens?", "Hello"),
            (Usage::new(11, 2), true)
        );
        assert_eq!(
            ReportedUsage::from(Usage::new(3, 4)).or_estimate("xxxx", "yyyy"),
            (Usage::new(3, 4), false)
        );
        // Refused before any output, nothing reported: nothing to bill.
        assert_eq!(
            failed_call_usage(ReportedUsage::default(), "prompt", ""),
            None
        );
        assert_eq!(
            failed_call_usage(ReportedUsage::default(), "12345678", "1234"),
            Some((Usage::new(2, 1), true))
        );
        assert_eq!(
            failed_call_usage(started, "12345678", ""),
            Some((Usage::new(11, 0), true))
        );
    }

    #[test]
    fn record_serialises_with_snake_case_enums() {
        let mut call = LlmCall::ok("openai", "gpt-4o-mini", Usage::new(100, 50), 45, 812);
        call.cache_hit = CacheHit::Semantic;
        call.finish_reason = Some(FinishReason::Length);
        let v = serde_json::to_value(&call).unwrap();
        assert_eq!(v["finish_reason"], "length");
        assert_eq!(v["cache_hit"], "semantic");
        assert_eq!(v["status"], "ok");
        assert_eq!(v["input_tokens"], 100);
        assert_eq!(CallStatus::BudgetExhausted.as_str(), "budget_exhausted");
        assert_eq!(CallStatus::Incomplete.as_str(), "incomplete");
        let back: LlmCall = serde_json::from_value(v).unwrap();
        assert_eq!(back, call);
    }
}
