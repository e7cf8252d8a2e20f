//! Provider wire formats: building a streaming request and parsing the streamed answer into
//! normalised [`StreamEvent`]s.
//!
//! Every parser takes byte chunks split anywhere (inside an SSE line, inside a UTF-8
//! character) and guarantees this event order: text and tool-call events, then at most one
//! [`StreamEvent::Usage`], then exactly one [`StreamEvent::Finish`] with the
//! [`FinishReason`]; or, instead of the last two, one [`StreamEvent::ProviderError`],
//! classified by [`ErrorKind`]. A stream that breaks this contract (bad JSON, ends before its
//! end marker) is a [`StreamError`]; nothing panics on any input. [`StreamedAnswer`] gathers
//! the events and says whether the answer is complete.

mod answer;
mod classify;
mod error_body;
mod event;
mod json;
mod request;
pub mod sse;

pub mod anthropic;
pub mod gemini;
pub mod openai_chat;
pub mod openai_responses;

pub use answer::{StreamedAnswer, is_complete_answer};
pub use error_body::parse_error_body;
pub use event::{ErrorKind, FinishReason, ProviderError, StreamError, StreamEvent, ToolCall};
pub use request::{BuildError, ChatRequest, Endpoint, HttpRequest, Message, ToolSpec};
pub use sse::{SseDecoder, SseError, SseEvent};

use serde::{Deserialize, Serialize};

use crate::usage::ReportedUsage;

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    #[serde(rename = "openai")]
    OpenAi,
    /// OpenAI Responses (`/v1/responses`).
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
    /// Any server speaking Chat Completions (Ollama, vLLM, llama.cpp): key optional, and
    /// `max_tokens` instead of OpenAI's newer `max_completion_tokens`.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
    /// Anthropic Messages (`/v1/messages`).
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Google Gemini (`/v1beta/models/{model}:streamGenerateContent`).
    #[serde(rename = "gemini")]
    Gemini,
    /// No HTTP call: the extractive answerer in [`crate::local`].
    #[serde(rename = "local")]
    Local,
}

impl ProviderKind {
    /// Whether a call needs an API key (local servers usually run without one).
    pub const fn requires_key(self) -> bool {
        !matches!(self, Self::OpenAiCompatible | Self::Local)
    }

    /// The provider's public endpoint, for catalogs that leave `base_url` out.
    pub const fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::OpenAi | Self::OpenAiResponses => Some("https://api.openai.com"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::Gemini => Some("https://generativelanguage.googleapis.com"),
            Self::OpenAiCompatible | Self::Local => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenAiResponses => "openai-responses",
            Self::OpenAiCompatible => "openai-compatible",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Local => "local",
        }
    }
}

/// Builds the streaming HTTP request for `req` against `endpoint`.
pub fn build_request(endpoint: &Endpoint, req: &ChatRequest) -> Result<HttpRequest, BuildError> {
    req.validate()?;
    match endpoint.kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            openai_chat::build_request(endpoint, req)
        }
        ProviderKind::OpenAiResponses => openai_responses::build_request(endpoint, req),
        ProviderKind::Anthropic => anthropic::build_request(endpoint, req),
        ProviderKind::Gemini => gemini::build_request(endpoint, req),
        ProviderKind::Local => Err(BuildError::LocalProvider),
    }
}

/// An incremental parser of one provider's streamed answer. After the terminal event, further
/// bytes are ignored; after an error, the parser should be dropped.
pub trait StreamParser {
    /// Feeds the next chunk of the response body; returns the events it completed.
    fn feed(&mut self, chunk: &[u8]) -> Result<Vec<StreamEvent>, StreamError>;
    /// Marks the end of the body: returns the last events, or an error when the stream ended
    /// before the provider's end marker.
    fn finish(&mut self) -> Result<Vec<StreamEvent>, StreamError>;
    /// The tokens the provider has reported so far, each count only if it was sent: for a
    /// call that ends in an error, a timeout or a broken connection, so that only what the
    /// provider never sent is estimated.
    fn reported_usage(&self) -> ReportedUsage {
        ReportedUsage::default()
    }
}

/// A parser for any [`ProviderKind`], without boxing.
#[derive(Debug, Clone)]
pub enum ProviderStream {
    OpenAiChat(openai_chat::ChatCompletionsStream),
    OpenAiResponses(openai_responses::ResponsesStream),
    Anthropic(anthropic::MessagesStream),
    Gemini(gemini::GeminiStream),
}

impl ProviderStream {
    /// The parser for `kind`; `None` for [`ProviderKind::Local`], which has no stream.
    pub fn new(kind: ProviderKind) -> Option<Self> {
        Some(match kind {
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
                Self::OpenAiChat(openai_chat::ChatCompletionsStream::new())
            }
            ProviderKind::OpenAiResponses => {
                Self::OpenAiResponses(openai_responses::ResponsesStream::new())
            }
            ProviderKind::Anthropic => Self::Anthropic(anthropic::MessagesStream::new()),
            ProviderKind::Gemini => Self::Gemini(gemini::GeminiStream::new()),
            ProviderKind::Local => return None,
        })
    }
}

impl StreamParser for ProviderStream {
    fn feed(&mut self, chunk: &[u8]) -> Result<Vec<StreamEvent>, StreamError> {
        match self {
            Self::OpenAiChat(p) => p.feed(chunk),
            Self::OpenAiResponses(p) => p.feed(chunk),
            Self::Anthropic(p) => p.feed(chunk),
            Self::Gemini(p) => p.feed(chunk),
        }
    }

    fn finish(&mut self) -> Result<Vec<StreamEvent>, StreamError> {
        match self {
            Self::OpenAiChat(p) => p.finish(),
            Self::OpenAiResponses(p) => p.finish(),
            Self::Anthropic(p) => p.finish(),
            Self::Gemini(p) => p.finish(),
        }
    }

    fn reported_usage(&self) -> ReportedUsage {
        match self {
            Self::OpenAiChat(p) => p.reported_usage(),
            Self::OpenAiResponses(p) => p.reported_usage(),
            Self::Anthropic(p) => p.reported_usage(),
            Self::Gemini(p) => p.reported_usage(),
        }
    }
}

/// Joins a configured base URL with a versioned API path. Both `https://host` and
/// `https://host/v1` (as OpenAI SDK users write it) are accepted: the version segment is
/// added only when the base does not already end with it.
pub(crate) fn join_url(base: &str, version: &str, rest: &str) -> Result<String, BuildError> {
    let base = base.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://"))
        || base.contains(['?', '#', ' '])
    {
        return Err(BuildError::InvalidBaseUrl(base.to_owned()));
    }
    if base.ends_with(version) {
        Ok(format!("{base}{rest}"))
    } else {
        Ok(format!("{base}{version}{rest}"))
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    use super::*;

    fn run<P: StreamParser>(mut p: P, pieces: &[&[u8]]) -> Result<Vec<StreamEvent>, StreamError> {
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(p.feed(piece)?);
        }
        out.extend(p.finish()?);
        Ok(out)
    }

    /// Parses `input` whole, split in two at every byte boundary, and one byte at a time;
    /// asserts all agree (events or error) and returns the result.
    pub fn parse_every_split<P: StreamParser>(
        make: impl Fn() -> P,
        input: &[u8],
    ) -> Result<Vec<StreamEvent>, StreamError> {
        let whole = run(make(), &[input]);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(run(make(), &[a, b]), whole, "split at byte {i}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(make(), &bytes), whole, "one byte at a time");
        whole
    }

    /// Concatenated text deltas.
    pub fn text(events: &[StreamEvent]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Asserts the documented order: Usage (at most once) then Finish last, or ProviderError last.
    pub fn assert_contract(events: &[StreamEvent]) {
        let last = events.last().expect("at least one event");
        assert!(
            matches!(
                last,
                StreamEvent::Finish { .. } | StreamEvent::ProviderError(_)
            ),
            "last event {last:?}"
        );
        let terminals = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    StreamEvent::Finish { .. } | StreamEvent::ProviderError(_)
                )
            })
            .count();
        assert_eq!(terminals, 1);
        let usages: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, StreamEvent::Usage(_)))
            .map(|(i, _)| i)
            .collect();
        assert!(usages.len() <= 1);
        if let Some(&i) = usages.first() {
            assert_eq!(i, events.len() - 2, "usage right before finish");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_url_accepts_base_with_or_without_version() {
        assert_eq!(
            join_url("https://api.openai.com", "/v1", "/chat/completions").unwrap(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            join_url("http://127.0.0.1:11434/v1/", "/v1", "/chat/completions").unwrap(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert!(matches!(
            join_url("ftp://x", "/v1", "/a"),
            Err(BuildError::InvalidBaseUrl(_))
        ));
        assert!(matches!(
            join_url("https://x/?a=b", "/v1", "/a"),
            Err(BuildError::InvalidBaseUrl(_))
        ));
    }

    #[test]
    fn kinds_serialise_as_configured_names() {
        for k in [
            ProviderKind::OpenAi,
            ProviderKind::OpenAiResponses,
            ProviderKind::OpenAiCompatible,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
            ProviderKind::Local,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!(ProviderStream::new(ProviderKind::Local).is_none());
        assert!(!ProviderKind::OpenAiCompatible.requires_key());
    }

    #[test]
    fn local_provider_has_no_request() {
        let ep = Endpoint::new(ProviderKind::Local, "http://unused", None);
        let req = ChatRequest::new("extractive", vec![Message::user("hi")]);
        assert_eq!(build_request(&ep, &req), Err(BuildError::LocalProvider));
    }
}
