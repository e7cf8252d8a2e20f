//! The Server-Sent Events of a chat turn (docs/chat-stream.md has a full transcript).
//!
//! Each event is `event: <type>` plus one `data:` line of JSON whose `type` repeats the event
//! name, the shape both the OpenAI Responses API (named events, typed JSON) and the Vercel AI
//! SDK's UI message stream (typed JSON parts: `start`, `text-delta`, `finish`, `error`) use.
//! The stream ends with `data: [DONE]`; heartbeats are SSE comments (`: heartbeat`), which
//! every client ignores.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_gateway::providers::sse::{SseEvent, encode_comment};
use tessera_gateway::{CacheHit, StepKind};

use crate::steps::StepStatus;

/// A step as `step-start` announces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// The step's number `n` in the conversation (the edit endpoint's `{n}`).
    pub step: i64,
    /// Position within its turn.
    pub ordinal: usize,
    pub kind: StepKind,
    pub title: String,
    pub version: i32,
    /// Step numbers this one reads.
    pub depends_on: Vec<i64>,
}

/// Tokens and money of a step or a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StepTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}

impl StepTotals {
    pub fn add(&mut self, other: StepTotals) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_micros += other.cost_micros;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ChatEvent {
    /// First event: which conversation and message this stream writes.
    Start {
        conversation_id: String,
        message_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_message_id: Option<String>,
        /// For an edit: the step edited.
        #[serde(skip_serializing_if = "Option::is_none")]
        edit_of: Option<i64>,
    },
    StepStart(StepInfo),
    /// A piece of a step's text (`id` names the text part: `step-<n>`).
    TextDelta {
        step: i64,
        id: String,
        delta: String,
    },
    /// A tool the protocol runs for a step (knowledge-base search).
    ToolCall {
        step: i64,
        tool_call_id: String,
        tool_name: String,
        input: Value,
    },
    ToolResult {
        step: i64,
        tool_call_id: String,
        tool_name: String,
        output: Value,
    },
    StepFinish {
        step: i64,
        kind: StepKind,
        status: StepStatus,
        provider: Option<String>,
        model: Option<String>,
        #[serde(flatten)]
        totals: StepTotals,
        cost_usd: f64,
        cache: CacheHit,
        duration_ms: u64,
        /// Why this model (routing's reason), or why the step failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Why the model stopped, for a step a model answered (`complete`, or `length` for an
        /// answer the output limit cut off, shown truncated): tessera-gateway's
        /// `FinishReason::as_str`. Absent for local steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_reason: Option<String>,
        /// The step's structured result (analysis, plan, validation report), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
    },
    /// A failure. `recoverable: true` means the turn goes on (a retry, the next provider, or
    /// the local answer); `reset: true` means the step's text streamed so far is void.
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<i64>,
        code: String,
        message: String,
        recoverable: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        reset: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
    },
    /// Last event before `[DONE]`.
    Finish {
        message_id: String,
        /// `completed`, `failed` or `cancelled`.
        status: String,
        #[serde(flatten)]
        totals: StepTotals,
        cost_usd: f64,
        /// The final answer (also streamed as the synthesis step's text deltas).
        text: String,
        citations: Vec<Citation>,
        /// Why the answer ended, for a completed turn: `complete`, or `length` when the answer
        /// holds a step the output limit cut off (shown with a `truncated` error event because
        /// nothing else answered): not a complete answer, and never cached. Absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_reason: Option<String>,
        /// A presigned token that lets the browser rate this answer (`POST
        /// /v1/messages/{id}/feedback` with `authorization: Bearer …`) until it expires; absent
        /// when feedback tokens are not configured or the turn did not complete.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feedback_token: Option<String>,
    },
}

/// A knowledge-base chunk the answer cites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub n: usize,
    pub chunk_id: i64,
    pub document_id: String,
    pub title: String,
}

impl ChatEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Start { .. } => "start",
            Self::StepStart(_) => "step-start",
            Self::TextDelta { .. } => "text-delta",
            Self::ToolCall { .. } => "tool-call",
            Self::ToolResult { .. } => "tool-result",
            Self::StepFinish { .. } => "step-finish",
            Self::Error { .. } => "error",
            Self::Finish { .. } => "finish",
        }
    }

    /// The wire form: `event:` line, one `data:` line of JSON, blank line.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).expect("events always serialise");
        SseEvent::named(self.name(), json).encode()
    }
}

/// Micro-dollars as USD, for display.
pub fn usd(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// The end-of-stream marker (as OpenAI's and the AI SDK's streams end).
pub const DONE: &str = "data: [DONE]\n\n";

/// A heartbeat: a comment line, ignored by clients, that keeps proxies from closing an idle
/// stream and lets the server notice a client that has gone.
pub fn heartbeat() -> String {
    encode_comment("heartbeat")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_gateway::providers::sse::SseDecoder;

    #[test]
    fn events_encode_as_named_sse_with_typed_json() {
        let e = ChatEvent::StepFinish {
            step: 4,
            kind: StepKind::Implementation,
            status: StepStatus::Completed,
            provider: Some("openai".into()),
            model: Some("gpt-4o-mini".into()),
            totals: StepTotals {
                input_tokens: 120,
                output_tokens: 40,
                cost_micros: 42,
            },
            cost_usd: usd(42),
            cache: CacheHit::Miss,
            duration_ms: 812,
            reason: None,
            finish_reason: Some("complete".into()),
            output: None,
        };
        let wire = e.encode();
        assert!(
            wire.starts_with("event: step-finish\ndata: {\"type\":\"step-finish\",\"step\":4,"),
            "{wire}"
        );
        let mut d = SseDecoder::new();
        let got = d.feed(wire.as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        let v: Value = serde_json::from_str(&got[0].data).unwrap();
        assert_eq!(v["input_tokens"], 120);
        assert_eq!(v["cost_usd"], 0.000042);
        assert_eq!(v["cache"], "miss");
        assert_eq!(v["kind"], "implementation");
        assert_eq!(v["finish_reason"], "complete");
        assert_eq!(serde_json::from_value::<ChatEvent>(v).unwrap(), e);
    }

    #[test]
    fn multi_line_text_stays_one_data_line_and_comments_are_ignored() {
        let e = ChatEvent::TextDelta {
            step: 7,
            id: "step-7".into(),
            delta: "line one\nline two".into(),
        };
        let wire = format!("{}{}{}", heartbeat(), e.encode(), DONE);
        let mut d = SseDecoder::new();
        let got = d.feed(wire.as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].event.as_deref(), Some("text-delta"));
        let v: Value = serde_json::from_str(&got[0].data).unwrap();
        assert_eq!(v["delta"], "line one\nline two");
        assert_eq!(got[1].data, "[DONE]");
        let err = ChatEvent::Error {
            step: None,
            code: "budget_exhausted".into(),
            message: "m".into(),
            recoverable: true,
            reset: false,
            provider: None,
        };
        assert!(!err.encode().contains("reset"));
    }
}
