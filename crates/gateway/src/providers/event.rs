//! The normalised events every provider stream is parsed into.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::sse::SseError;
use crate::usage::Usage;

/// One normalised event of a streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A piece of the answer's text.
    TextDelta(String),
    /// A complete tool call (its argument deltas already joined).
    ToolCall(ToolCall),
    /// Tokens the provider reports for the whole call.
    Usage(Usage),
    /// The answer ended normally.
    Finish { reason: FinishReason },
    /// The provider reported an error inside the stream; the stream is over.
    ProviderError(ProviderError),
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

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// The output token limit (or the context window) was reached.
    Length,
    /// The model wants tool results before going on.
    ToolCalls,
    /// A safety or content filter stopped it.
    ContentFilter,
    /// A provider reason with no normalised equivalent, kept verbatim.
    Other(String),
}

/// An error reported by the provider, in the stream or as an error response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderError {
    /// HTTP status, when the error came as a response rather than inside a stream.
    pub http_status: Option<u16>,
    /// The provider's error type or code (`rate_limit_error`, `RESOURCE_EXHAUSTED`, ...).
    pub code: Option<String>,
    pub message: String,
    /// Whether trying again (later, or elsewhere) may succeed: overload, rate limit, server
    /// error. Invalid requests and authentication failures are not retryable.
    pub retryable: bool,
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
