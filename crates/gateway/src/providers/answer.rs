//! A streamed answer gathered from its events, and whether it may be used as complete.

use serde::{Deserialize, Serialize};

use super::event::{FinishReason, ProviderError, StreamEvent, ToolCall};
use crate::usage::Usage;

/// Everything one streamed call produced. Feed it every event; at the end of the stream it
/// says why the call ended and whether the answer may be shown as complete and cached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamedAnswer {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// Tool calls the output limit cut off: reported, never run.
    pub cut_off_tool_calls: Vec<ToolCall>,
    /// The provider's own usage report, when it sent one.
    pub usage: Option<Usage>,
    /// Why the stream ended; [`FinishReason::Error`] after an in-stream error. `None` until
    /// the end.
    pub finish: Option<FinishReason>,
    /// The provider's explanation of the finish (a refusal message, a block reason).
    pub finish_message: Option<String>,
    pub error: Option<ProviderError>,
}

impl StreamedAnswer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one event.
    pub fn push(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::TextDelta(t) => self.text.push_str(&t),
            StreamEvent::ToolCall(c) => self.tool_calls.push(c),
            StreamEvent::Usage(u) => self.usage = Some(u),
            StreamEvent::Finish {
                reason,
                message,
                cut_off_tool_calls,
            } => {
                self.finish = Some(reason);
                self.finish_message = message;
                self.cut_off_tool_calls = cut_off_tool_calls;
            }
            StreamEvent::ProviderError(e) => {
                self.finish = Some(FinishReason::Error);
                self.error = Some(e);
            }
        }
    }

    /// Whether the stream has ended (normally or with a provider error).
    pub fn is_over(&self) -> bool {
        self.finish.is_some()
    }

    /// Whether the answer may be shown as complete, recorded as `ok` and cached: see
    /// [`is_complete_answer`]. A cut-off, refused, filtered, failed or empty answer is not.
    pub fn is_complete(&self) -> bool {
        self.error.is_none()
            && self.cut_off_tool_calls.is_empty()
            && self
                .finish
                .as_ref()
                .is_some_and(|r| is_complete_answer(r, &self.text, &self.tool_calls))
    }
}

/// Whether an answer that ended for `reason` is a usable, complete answer: a `complete`
/// finish with text that is not blank, or complete tool calls (each with arguments that are
/// JSON, or none) from a `complete` or `tool_calls` finish. Anything else (cut off by the
/// length limit, refused, filtered, failed, an unknown reason, or empty) must be neither
/// cached nor shown as complete.
pub fn is_complete_answer(reason: &FinishReason, text: &str, tool_calls: &[ToolCall]) -> bool {
    let calls_ok = !tool_calls.is_empty() && tool_calls.iter().all(arguments_are_json);
    match reason {
        FinishReason::Complete => !text.trim().is_empty() || calls_ok,
        FinishReason::ToolCalls => calls_ok,
        _ => false,
    }
}

fn arguments_are_json(call: &ToolCall) -> bool {
    call.arguments.trim().is_empty()
        || serde_json::from_str::<serde_json::Value>(&call.arguments).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(arguments: &str) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn only_complete_non_empty_answers_count() {
        use FinishReason::*;
        assert!(is_complete_answer(&Complete, "Paris.", &[]));
        assert!(!is_complete_answer(&Complete, " \n", &[]));
        assert!(!is_complete_answer(&Length, "{\"", &[]));
        assert!(!is_complete_answer(
            &Refusal,
            "I can't help with that.",
            &[]
        ));
        assert!(!is_complete_answer(&ContentFilter, "partial", &[]));
        assert!(!is_complete_answer(
            &Unknown("FAKE_ENUM".into()),
            "text",
            &[]
        ));
        assert!(is_complete_answer(&ToolCalls, "", &[call("{\"a\":1}")]));
        assert!(is_complete_answer(&ToolCalls, "", &[call("")]));
        assert!(!is_complete_answer(&ToolCalls, "", &[call("{\"a\":")]));
        assert!(!is_complete_answer(&ToolCalls, "", &[]));
    }

    #[test]
    fn gathers_events_and_reports_errors_as_error_finish() {
        let mut a = StreamedAnswer::new();
        a.push(StreamEvent::TextDelta("Hel".into()));
        a.push(StreamEvent::TextDelta("lo".into()));
        assert!(!a.is_over() && !a.is_complete());
        a.push(StreamEvent::Usage(Usage::new(3, 2)));
        a.push(StreamEvent::finish(FinishReason::Complete));
        assert!(a.is_complete());
        assert_eq!(
            (a.text.as_str(), a.usage),
            ("Hello", Some(Usage::new(3, 2)))
        );

        let mut a = StreamedAnswer::new();
        a.push(StreamEvent::TextDelta("I'll write the file".into()));
        a.push(StreamEvent::Finish {
            reason: FinishReason::Complete,
            message: None,
            cut_off_tool_calls: vec![call("{\"a\":")],
        });
        assert!(!a.is_complete(), "a cut-off tool call spoils the answer");

        let mut a = StreamedAnswer::new();
        a.push(StreamEvent::TextDelta("partial".into()));
        a.push(StreamEvent::ProviderError(ProviderError {
            http_status: None,
            code: Some("overloaded_error".into()),
            message: "Overloaded".into(),
            retryable: true,
            kind: super::super::ErrorKind::Overloaded,
        }));
        assert_eq!(a.finish, Some(FinishReason::Error));
        assert!(a.is_over() && !a.is_complete());
    }
}
