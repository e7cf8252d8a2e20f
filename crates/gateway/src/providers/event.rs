//! The normalised events every provider stream is parsed into.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::sse::SseError;
use crate::usage::Usage;

/// One normalised event of a streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A piece of the answer's text. Reasoning, thought summaries, "commentary" preambles and
    /// refusal messages are not answer text and never come as deltas.
    TextDelta(String),
    /// A complete tool call (its argument deltas already joined).
    ToolCall(ToolCall),
    /// Tokens the provider reports for the whole call.
    Usage(Usage),
    /// The provider ended the stream, for `reason`. Whether the answer is usable is the
    /// caller's question: see [`super::StreamedAnswer::is_complete`].
    Finish {
        reason: FinishReason,
        /// The provider's own words on why it stopped, when it gives them: an OpenAI refusal,
        /// Anthropic's `stop_details.explanation`, Gemini's `finishMessage` or block reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Tool calls whose arguments the output limit (or a filter) cut off: never to be run.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cut_off_tool_calls: Vec<ToolCall>,
    },
    /// The provider reported an error inside the stream; the stream is over.
    ProviderError(ProviderError),
}

impl StreamEvent {
    /// A `Finish` with only a reason.
    pub fn finish(reason: FinishReason) -> Self {
        Self::Finish {
            reason,
            message: None,
            cut_off_tool_calls: Vec::new(),
        }
    }
}

/// A tool (function) call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's call id, to send back with the tool's result.
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: JSON text, not validated here.
    pub arguments: String,
}

/// Why the model stopped, in the gateway's words (each provider's reasons map onto these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer: a natural end or a stop sequence.
    Complete,
    /// The output token limit (or the context window) cut the answer off.
    Length,
    /// The model wants tool results before going on.
    ToolCalls,
    /// The model declined to answer (OpenAI `refusal`, Anthropic `refusal`).
    Refusal,
    /// A provider's safety, recitation or content filter stopped the answer or blocked the
    /// prompt (OpenAI `content_filter`, Gemini `SAFETY`/`RECITATION`/`blockReason`).
    ContentFilter,
    /// The provider ended the answer with an error of its own (Gemini
    /// `MALFORMED_FUNCTION_CALL`, an OpenAI-compatible server's `finish_reason: "error"`).
    Error,
    /// A provider reason with no equivalent here, kept verbatim: never treated as complete.
    Unknown(String),
}

impl FinishReason {
    /// The name stored with a step, an `llm_calls` row or a `step-finish` event.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Complete => "complete",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::Refusal => "refusal",
            Self::ContentFilter => "content_filter",
            Self::Error => "error",
            Self::Unknown(_) => "unknown",
        }
    }

    /// A refusal or a filter: the same request may fare differently on another provider or
    /// with the local answer, where policy allows.
    pub fn is_policy_stop(&self) -> bool {
        matches!(self, Self::Refusal | Self::ContentFilter)
    }
}

/// An error reported by the provider, in the stream or as an error response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderError {
    /// HTTP status, when the error came as a response rather than inside a stream.
    pub http_status: Option<u16>,
    /// The provider's error type or code (`rate_limit_error`, `RESOURCE_EXHAUSTED`, ...).
    pub code: Option<String>,
    pub message: String,
    /// Whether trying the same provider again (later) may succeed: overload, rate limit,
    /// server error, timeout. Quota, key and request errors are not retryable.
    pub retryable: bool,
    /// What the error means, the same whether it came as an HTTP status or inside a stream.
    #[serde(default)]
    pub kind: ErrorKind,
}

/// The meaning of a provider error, shared by HTTP statuses and in-stream errors, so that
/// retries, fallback and the circuit breaker treat both the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Too many requests or tokens per minute (HTTP 429): wait and retry.
    RateLimit,
    /// The account's quota or credit is used up (OpenAI `insufficient_quota`, Anthropic
    /// `billing_error`, HTTP 402): waiting does not help, another provider may answer.
    Quota,
    /// The key is invalid or may not make this call (HTTP 401/403).
    Auth,
    /// The model or endpoint does not exist for this key (HTTP 404).
    NotFound,
    /// The provider is overloaded (Anthropic 529 `overloaded_error`, HTTP 503).
    Overloaded,
    /// The provider failed (HTTP 500/502, `server_error`, `api_error`, `INTERNAL`).
    Server,
    /// The provider timed out (HTTP 408/504, `DEADLINE_EXCEEDED`).
    Timeout,
    /// The request itself is wrong (HTTP 400/413/422): it fails the same way anywhere.
    InvalidRequest,
    /// The provider's usage policy rejected the prompt (OpenAI `invalid_prompt`).
    ContentPolicy,
    /// Anything else; `retryable` then decides.
    #[default]
    Other,
}

impl ErrorKind {
    /// Whether trying the same provider again later may succeed.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::RateLimit | Self::Overloaded | Self::Server | Self::Timeout
        )
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RateLimit => "rate_limit",
            Self::Quota => "quota",
            Self::Auth => "auth",
            Self::NotFound => "not_found",
            Self::Overloaded => "overloaded",
            Self::Server => "server",
            Self::Timeout => "timeout",
            Self::InvalidRequest => "invalid_request",
            Self::ContentPolicy => "content_policy",
            Self::Other => "other",
        }
    }
}

/// A stream that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamError {
    #[error(transparent)]
    Sse(#[from] SseError),
    #[error("{provider}: malformed JSON in stream event: {detail} (data: {snippet})")]
    MalformedJson {
        provider: &'static str,
        detail: String,
        snippet: String,
    },
    /// Well-formed events this parser cannot follow.
    #[error("{provider}: unexpected stream content: {detail}")]
    Protocol {
        provider: &'static str,
        detail: String,
    },
    #[error("{provider}: stream ended early: {detail}")]
    Truncated {
        provider: &'static str,
        detail: String,
    },
}

impl StreamError {
    /// Whether the provider is to blame (and the failure counts for its circuit breaker):
    /// bytes that are not SSE, JSON that does not parse, a stream cut short. Well-formed
    /// events the parser cannot follow ([`StreamError::Protocol`]) are more likely a gap in
    /// this parser than an unhealthy provider, and would fail the same way on a retry.
    pub fn blames_provider(&self) -> bool {
        !matches!(self, Self::Protocol { .. })
    }
}
