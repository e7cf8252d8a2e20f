//! Google Gemini (`POST /v1beta/models/{model}:streamGenerateContent?alt=sse`,
//! `x-goog-api-key`).
//!
//! Each `data:` event is a whole `GenerateContentResponse`: text in
//! `candidates[0].content.parts[].text`, complete function calls in `parts[].functionCall`,
//! `finishReason` on the last chunk, and `usageMetadata` (`promptTokenCount`,
//! `candidatesTokenCount`, `thoughtsTokenCount`) repeated with running totals. There is no end
//! marker: the body simply ends, so usage and finish are emitted by
//! [`StreamParser::finish`]. A blocked prompt comes as `promptFeedback.blockReason`. Vertex AI
//! reports an error that strikes mid-stream as a bare JSON object after the last event.

use serde_json::{Value, json};

use super::classify;
use super::event::{FinishReason, StreamError, StreamEvent, ToolCall};
use super::join_url;
use super::json::{self, str_at, u64_at};
use super::request::{BuildError, ChatRequest, Endpoint, HttpRequest, Message};
use super::sse::SseEvent;
use crate::usage::{ReportedUsage, Usage};

const NAME: &str = "gemini";

pub(crate) fn build_request(ep: &Endpoint, req: &ChatRequest) -> Result<HttpRequest, BuildError> {
    // The model goes into the URL path: allow only what Gemini model ids contain.
    let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
    if model.is_empty()
        || !model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err(BuildError::InvalidModel(req.model.clone()));
    }
    let url = join_url(
        &ep.base_url,
        "/v1beta",
        &format!("/models/{model}:streamGenerateContent?alt=sse"),
    )?;
    let key = ep.key()?;
    let mut config = json!({"maxOutputTokens": req.max_output_tokens});
    if let Some(t) = req.temperature {
        config["temperature"] = json!(t);
    }
    if let Some(p) = req.top_p {
        config["topP"] = json!(p);
    }
    if !req.stop.is_empty() {
        config["stopSequences"] = json!(req.stop);
    }
    let mut body = json!({"contents": contents(req)?, "generationConfig": config});
    if let Some(s) = &req.system {
        body["systemInstruction"] = json!({"parts": [{"text": s}]});
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        body["tools"] = json!([{"functionDeclarations": decls}]);
    }
    let mut http = HttpRequest::post_json(url, &body);
    if let Some(k) = key {
        http = http.header("x-goog-api-key", k);
    }
    Ok(http)
}

/// Contents with roles `user`/`model`, consecutive same-role turns merged.
fn contents(req: &ChatRequest) -> Result<Vec<Value>, BuildError> {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, parts) = match m {
            Message::User { content } => ("user", vec![json!({"text": content})]),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut parts = Vec::new();
                if !content.is_empty() {
                    parts.push(json!({"text": content}));
                }
                for c in tool_calls {
                    let args: Value = if c.arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&c.arguments)
                            .map_err(|_| BuildError::InvalidToolArguments(c.id.clone()))?
                    };
                    if !args.is_object() {
                        return Err(BuildError::InvalidToolArguments(c.id.clone()));
                    }
                    parts.push(json!({"functionCall": {"name": c.name, "args": args}}));
                }
                ("model", parts)
            }
            Message::Tool { name, content, .. } => {
                // `response` must be an object: a JSON object result is sent as is, anything
                // else wrapped.
                let response = match serde_json::from_str::<Value>(content) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"content": content}),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
        };
        match turns.last_mut() {
            Some((r, p)) if *r == role => p.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect())
}

/// Incremental parser of a `streamGenerateContent?alt=sse` stream.
pub type GeminiStream = json::SseJsonStream<State>;

/// What the parser has seen so far.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The latest `usageMetadata` (counts are running totals).
    usage: ReportedUsage,
    finish: Option<FinishReason>,
    finish_message: Option<String>,
    calls: u64,
}

impl json::SseProtocol for State {
    const NAME: &'static str = NAME;

    fn on_event(
        &mut self,
        ev: &SseEvent,
        done: &mut bool,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        State::on_event(self, ev, done, out)
    }

    fn on_eof(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        let Some(mut reason) = self.finish.take() else {
            return Err(StreamError::Truncated {
                provider: NAME,
                detail: "no finishReason".into(),
            });
        };
        // Gemini reports STOP after function calls; normalise to what they mean.
        if reason == FinishReason::Complete && self.calls > 0 {
            reason = FinishReason::ToolCalls;
        }
        if let Some(input) = self.usage.input_tokens {
            // At the end a missing candidates count means none (a blocked prompt).
            out.push(StreamEvent::Usage(Usage::new(
                input,
                self.usage.output_tokens.unwrap_or(0),
            )));
        }
        out.push(StreamEvent::Finish {
            reason,
            message: self.finish_message.take(),
            cut_off_tool_calls: Vec::new(),
        });
        Ok(())
    }

    /// Vertex AI writes an error that strikes mid-stream as bare JSON after the last event.
    fn on_stray_lines(
        &mut self,
        stray: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<bool, StreamError> {
        let Some(err) = serde_json::from_str::<Value>(stray)
            .ok()
            .and_then(|v| error_in(&v, None))
        else {
            return Ok(false);
        };
        out.push(StreamEvent::ProviderError(err));
        Ok(true)
    }

    fn reported_usage(&self) -> ReportedUsage {
        self.usage
    }
}

impl State {
    fn on_event(
        &mut self,
        ev: &SseEvent,
        done: &mut bool,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        let v = json::parse(NAME, &ev.data)?;
        if let Some(err) = error_in(&v, None) {
            out.push(StreamEvent::ProviderError(err));
            *done = true;
            return Ok(());
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = usage(u);
        }
        if let Some(feedback) = v.get("promptFeedback")
            && let Some(reason) = str_at(feedback, "blockReason")
        {
            // The prompt itself was blocked: no candidates will follow.
            self.finish = Some(if reason == "BLOCK_REASON_UNSPECIFIED" {
                FinishReason::Unknown(reason.to_owned())
            } else {
                FinishReason::ContentFilter
            });
            self.finish_message = Some(match str_at(feedback, "blockReasonMessage") {
                Some(m) => format!("prompt blocked ({reason}): {m}"),
                None => format!("prompt blocked ({reason})"),
            });
        }
        // Only the first candidate is the answer (candidateCount > 1 is not requested).
        let Some(cand) = v
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| u64_at(c, "index") == 0))
        else {
            return Ok(());
        };
        let parts = cand
            .get("content")
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            // Thought summaries are not part of the answer; neither are code execution parts
            // and inline data, which have no `text`.
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(t) = str_at(part, "text").filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta(t.to_owned()));
            }
            if let Some(fc) = part.get("functionCall") {
                self.calls += 1;
                out.push(StreamEvent::ToolCall(ToolCall {
                    // Gemini ids are optional; number the calls when absent.
                    id: str_at(fc, "id")
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("call_{}", self.calls)),
                    name: str_at(fc, "name").unwrap_or_default().to_owned(),
                    arguments: fc
                        .get("args")
                        .map(Value::to_string)
                        .unwrap_or_else(|| "{}".into()),
                }));
            }
        }
        if let Some(r) = str_at(cand, "finishReason") {
            self.finish = Some(finish_reason(r));
        }
        if let Some(m) = str_at(cand, "finishMessage") {
            self.finish_message = Some(m.to_owned());
        }
        Ok(())
    }
}

/// Usage as reported: tool-use prompt tokens (code execution) are billed as input, thinking
/// tokens as output. Output is known only once a candidates or thoughts count came.
fn usage(u: &Value) -> ReportedUsage {
    let has = |k: &str| u.get(k).is_some();
    ReportedUsage {
        input_tokens: Some(u64_at(u, "promptTokenCount") + u64_at(u, "toolUsePromptTokenCount")),
        output_tokens: (has("candidatesTokenCount") || has("thoughtsTokenCount"))
            .then(|| u64_at(u, "candidatesTokenCount") + u64_at(u, "thoughtsTokenCount")),
    }
}

fn finish_reason(r: &str) -> FinishReason {
    match r {
        "STOP" => FinishReason::Complete,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
            FinishReason::Error
        }
        other => FinishReason::Unknown(other.to_owned()),
    }
}

/// The error in a Google API body: `{error: {...}}` or, for streaming methods, the same
/// wrapped in a one-element array.
pub(crate) fn error_in(v: &Value, http_status: Option<u16>) -> Option<super::ProviderError> {
    let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
    v.get("error")
        .filter(|e| e.is_object())
        .map(|e| error_event(e, http_status))
}

/// A Google API error `{code, message, status}`.
fn error_event(err: &Value, http_status: Option<u16>) -> super::ProviderError {
    let code = err.get("code").and_then(Value::as_u64);
    let code = code.and_then(|c| u16::try_from(c).ok());
    let mut e = classify::provider_error(
        &[str_at(err, "status")],
        str_at(err, "message"),
        http_status.or(code),
    );
    // Inside a stream, the error object's own code is the HTTP status it stands for.
    e.http_status = http_status.or(code);
    e
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_contract, parse_every_split, text};
    use super::super::{ProviderKind, ToolSpec, build_request as build};
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Die Marge \"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 12,\"totalTokenCount\": 12},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"beträgt 31 %.\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 12,\"totalTokenCount\": 12},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 12,\"candidatesTokenCount\": 8,\"thoughtsTokenCount\": 2,\"totalTokenCount\": 22},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n",
    );

    #[test]
    fn text_stream_with_usage() {
        let ev = parse_every_split(GeminiStream::new, STREAM.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(text(&ev), "Die Marge beträgt 31 %.");
        assert_eq!(ev[ev.len() - 2], StreamEvent::Usage(Usage::new(12, 10)));
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::Complete))
        );
    }

    #[test]
    fn function_call_and_blocked_prompt() {
        let s = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_quote\",\"args\":{\"symbol\":\"SAP\"}}}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":30,\"candidatesTokenCount\":6}}\n\n";
        let ev = parse_every_split(GeminiStream::new, s.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(
            ev[0],
            StreamEvent::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "get_quote".into(),
                arguments: "{\"symbol\":\"SAP\"}".into()
            })
        );
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::ToolCalls))
        );

        let s = "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":9}}\n\n";
        let ev = parse_every_split(GeminiStream::new, s.as_bytes()).unwrap();
        assert_eq!(
            ev,
            vec![
                StreamEvent::Usage(Usage::new(9, 0)),
                StreamEvent::Finish {
                    reason: FinishReason::ContentFilter,
                    message: Some("prompt blocked (SAFETY)".into()),
                    cut_off_tool_calls: vec![],
                }
            ]
        );
    }

    #[test]
    fn error_and_truncation() {
        let s = "data: {\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n";
        let ev = parse_every_split(GeminiStream::new, s.as_bytes()).unwrap();
        let StreamEvent::ProviderError(e) = &ev[0] else {
            panic!()
        };
        assert!(e.retryable);
        assert_eq!(e.http_status, Some(429));
        let cut = &STREAM[..STREAM.rfind("data:").unwrap()];
        assert!(matches!(
            parse_every_split(GeminiStream::new, cut.as_bytes()),
            Err(StreamError::Truncated { .. })
        ));
        // Last event without its blank line and cut inside the JSON.
        let cut = &STREAM[..STREAM.len() - 30];
        assert!(matches!(
            parse_every_split(GeminiStream::new, cut.as_bytes()),
            Err(StreamError::Truncated { .. })
        ));
        // Last event complete but without its blank line: accepted.
        let ok = STREAM.trim_end();
        assert!(parse_every_split(GeminiStream::new, ok.as_bytes()).is_ok());
    }

    #[test]
    fn bare_json_error_after_the_events_is_an_error() {
        // Vertex AI: STOP on every chunk, then the error object outside any data line.
        let s = concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"First \"}]},\"finishReason\":\"STOP\"}]}\n\n",
            "{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"Overloaded.\",\n    \"status\": \"UNAVAILABLE\"\n  }\n}\n",
        );
        let ev = parse_every_split(GeminiStream::new, s.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(text(&ev), "First ");
        let Some(StreamEvent::ProviderError(e)) = ev.last() else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (e.kind, e.retryable, e.http_status),
            (super::super::ErrorKind::Overloaded, true, Some(503))
        );
        // Stray lines that are no error change nothing.
        let s = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},\"finishReason\":\"STOP\"}]}\n\nnot sse\n";
        let ev = parse_every_split(GeminiStream::new, s.as_bytes()).unwrap();
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::Complete))
        );
    }

    #[test]
    fn request_shape() {
        let mut req = ChatRequest::new(
            "models/gemini-2.0-flash",
            vec![
                Message::user("q"),
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c".into(),
                        name: "f".into(),
                        arguments: "{\"a\":1}".into(),
                    }],
                },
                Message::Tool {
                    call_id: "c".into(),
                    name: "f".into(),
                    content: "17".into(),
                },
            ],
        )
        .with_system("sys");
        req.temperature = Some(0.5);
        req.tools = vec![ToolSpec {
            name: "f".into(),
            description: "d".into(),
            parameters: json!({"type":"object"}),
        }];
        let ep = Endpoint::new(
            ProviderKind::Gemini,
            "https://generativelanguage.googleapis.com",
            Some("gk".into()),
        );
        let http = build(&ep, &req).unwrap();
        assert_eq!(
            http.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(http.header_value("x-goog-api-key"), Some("gk"));
        let b = http.json_body();
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "sys");
        assert_eq!(
            b["generationConfig"],
            json!({"maxOutputTokens":1024,"temperature":0.5})
        );
        assert_eq!(
            b["contents"][1],
            json!({"role":"model","parts":[{"functionCall":{"name":"f","args":{"a":1}}}]})
        );
        assert_eq!(
            b["contents"][2]["parts"][0]["functionResponse"]["response"],
            json!({"content":"17"})
        );
        assert_eq!(b["tools"][0]["functionDeclarations"][0]["name"], "f");

        req.model = "gemini/../x?key=1".into();
        assert!(matches!(build(&ep, &req), Err(BuildError::InvalidModel(_))));
    }
}
