//! OpenAI Responses API (`POST /v1/responses`, `stream: true`).
//!
//! Typed events (`event:` and the JSON `type` agree): `response.output_text.delta` carries
//! text, except in message items of the "commentary" phase (a preamble before tool calls,
//! kept out of the answer); `response.refusal.delta` a refusal; a function call is announced by `response.output_item.added` (item `function_call`),
//! grows with `response.function_call_arguments.delta` and is complete at
//! `response.output_item.done`; the stream ends with `response.completed` (usage in
//! `response.usage`), `response.incomplete` (`incomplete_details.reason`) or
//! `response.failed` (`response.error`); an `error` event reports a failure. There is no
//! `[DONE]` marker.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::classify;
use super::event::{FinishReason, StreamError, StreamEvent, ToolCall};
use super::join_url;
use super::json::{self, str_at};
use super::request::{BuildError, ChatRequest, Endpoint, HttpRequest, Message};
use super::sse::SseEvent;
use crate::usage::{ReportedUsage, Usage};

const NAME: &str = "openai-responses";

pub(crate) fn build_request(ep: &Endpoint, req: &ChatRequest) -> Result<HttpRequest, BuildError> {
    let url = join_url(&ep.base_url, "/v1", "/responses")?;
    let key = ep.key()?;
    let mut input = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        match m {
            Message::User { content } => input.push(json!({"role": "user", "content": content})),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                if !content.is_empty() {
                    input.push(json!({"role": "assistant", "content": content}));
                }
                for c in tool_calls {
                    input.push(json!({
                        "type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments,
                    }));
                }
            }
            Message::Tool {
                call_id, content, ..
            } => {
                input.push(
                    json!({"type": "function_call_output", "call_id": call_id, "output": content}),
                );
            }
        }
    }
    let mut body = json!({
        "model": req.model,
        "input": input,
        "stream": true,
        "max_output_tokens": req.max_output_tokens,
        // Answers are stored in Tessera's own tables; OpenAI need not keep them.
        "store": false,
    });
    if let Some(s) = &req.system {
        body["instructions"] = json!(s);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = req.top_p {
        body["top_p"] = json!(p);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
    }
    let mut http = HttpRequest::post_json(url, &body);
    if let Some(k) = key {
        http = http.header("authorization", &format!("Bearer {k}"));
    }
    Ok(http)
}

/// Incremental parser of a Responses API stream.
pub type ResponsesStream = json::SseJsonStream<State>;

/// What the parser has seen so far.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Function calls in progress, by output item id, and whether their arguments are done.
    calls: BTreeMap<String, (ToolCall, bool)>,
    any_tool_call: bool,
    /// Message items in the "commentary" phase: a preamble, not part of the final answer.
    commentary: BTreeSet<String>,
    /// Text streamed so far per (item, content part), to complete it from the `.done` event.
    streamed: BTreeMap<(String, u64), String>,
    refusal: String,
    usage: Option<Usage>,
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

    fn on_eof(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        Err(StreamError::Truncated {
            provider: NAME,
            detail: "no response.completed event".into(),
        })
    }

    fn reported_usage(&self) -> ReportedUsage {
        self.usage.map(ReportedUsage::from).unwrap_or_default()
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
        // The JSON `type` is authoritative; the SSE `event:` line repeats it.
        let ty = str_at(&v, "type").or(ev.event.as_deref()).unwrap_or("");
        let item_id = str_at(&v, "item_id").unwrap_or_default();
        match ty {
            "response.output_text.delta" => {
                let d = str_at(&v, "delta").unwrap_or_default();
                if !d.is_empty() && !self.commentary.contains(item_id) {
                    let part = (item_id.to_owned(), json::u64_at(&v, "content_index"));
                    self.streamed.entry(part).or_default().push_str(d);
                    out.push(StreamEvent::TextDelta(d.to_owned()));
                }
            }
            "response.output_text.done" => {
                // The done event carries the part's whole text: emit what the deltas missed
                // (recordings trimmed of deltas; a proxy that dropped some).
                let part = (item_id.to_owned(), json::u64_at(&v, "content_index"));
                let streamed = self.streamed.remove(&part).unwrap_or_default();
                if let Some(rest) = str_at(&v, "text")
                    .filter(|_| !self.commentary.contains(item_id))
                    .and_then(|t| t.strip_prefix(streamed.as_str()))
                    .filter(|rest| !rest.is_empty())
                {
                    out.push(StreamEvent::TextDelta(rest.to_owned()));
                }
            }
            "response.refusal.delta" => {
                self.refusal
                    .push_str(str_at(&v, "delta").unwrap_or_default());
            }
            "response.output_item.added" => {
                let item = v.get("item").unwrap_or(&Value::Null);
                let id = str_at(item, "id").unwrap_or_default().to_owned();
                match str_at(item, "type") {
                    Some("function_call") => {
                        self.calls.insert(id, (call_from_item(item), false));
                    }
                    Some("message") if str_at(item, "phase") == Some("commentary") => {
                        self.commentary.insert(id);
                    }
                    _ => {}
                }
            }
            "response.function_call_arguments.delta" => {
                let (call, _) =
                    self.calls
                        .get_mut(item_id)
                        .ok_or_else(|| StreamError::Protocol {
                            provider: NAME,
                            detail: format!("arguments for unknown function call item {item_id:?}"),
                        })?;
                call.arguments
                    .push_str(str_at(&v, "delta").unwrap_or_default());
            }
            "response.function_call_arguments.done" => {
                if let Some((call, args_done)) = self.calls.get_mut(item_id) {
                    if let Some(args) = str_at(&v, "arguments") {
                        call.arguments = args.to_owned();
                    }
                    *args_done = true;
                }
            }
            "response.output_item.done" => {
                let item = v.get("item").unwrap_or(&Value::Null);
                if str_at(item, "type") == Some("function_call") {
                    let id = str_at(item, "id").unwrap_or_default();
                    let assembled = self.calls.remove(id);
                    let mut call = call_from_item(item);
                    if let Some((a, _)) = assembled {
                        // The done item is complete; fill what it lacks from the deltas.
                        if call.arguments.is_empty() {
                            call.arguments = a.arguments;
                        }
                        if call.name.is_empty() {
                            call.name = a.name;
                        }
                    }
                    self.any_tool_call = true;
                    out.push(StreamEvent::ToolCall(call));
                }
            }
            "response.completed" | "response.incomplete" => {
                let resp = v.get("response").unwrap_or(&Value::Null);
                let mut reason = if ty == "response.incomplete" {
                    match resp
                        .get("incomplete_details")
                        .and_then(|d| str_at(d, "reason"))
                    {
                        Some("max_output_tokens") => FinishReason::Length,
                        Some("content_filter") => FinishReason::ContentFilter,
                        other => FinishReason::Unknown(other.unwrap_or("incomplete").to_owned()),
                    }
                } else {
                    FinishReason::Complete
                };
                // Calls whose arguments were finished are calls; the others were cut off.
                let mut cut_off_tool_calls = Vec::new();
                for (_, (call, args_done)) in std::mem::take(&mut self.calls) {
                    if args_done && ty == "response.completed" {
                        self.any_tool_call = true;
                        out.push(StreamEvent::ToolCall(call));
                    } else {
                        cut_off_tool_calls.push(call);
                    }
                }
                if reason == FinishReason::Complete && self.any_tool_call {
                    reason = FinishReason::ToolCalls;
                }
                let mut message = None;
                if !self.refusal.is_empty() {
                    reason = FinishReason::Refusal;
                    message = Some(std::mem::take(&mut self.refusal));
                }
                if let Some(u) = resp.get("usage").filter(|u| u.is_object()) {
                    let u = usage(u);
                    self.usage = Some(u);
                    out.push(StreamEvent::Usage(u));
                }
                out.push(StreamEvent::Finish {
                    reason,
                    message,
                    cut_off_tool_calls,
                });
                *done = true;
            }
            "response.failed" => {
                let resp = v.get("response").unwrap_or(&Value::Null);
                if let Some(u) = resp.get("usage").filter(|u| u.is_object()) {
                    self.usage = Some(usage(u));
                }
                let err = resp.get("error").unwrap_or(&Value::Null);
                out.push(StreamEvent::ProviderError(error_event(err)));
                *done = true;
            }
            "error" => {
                // Documented shape: {type:"error", code, message, param}; older servers nest
                // it under `error`.
                let err = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
                out.push(StreamEvent::ProviderError(error_event(err)));
                *done = true;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Usage as reported; `output_tokens` already includes reasoning tokens.
fn usage(u: &Value) -> Usage {
    Usage::new(
        json::u64_at(u, "input_tokens"),
        json::u64_at(u, "output_tokens"),
    )
}

fn call_from_item(item: &Value) -> ToolCall {
    ToolCall {
        id: str_at(item, "call_id")
            .or_else(|| str_at(item, "id"))
            .unwrap_or_default()
            .to_owned(),
        name: str_at(item, "name").unwrap_or_default().to_owned(),
        arguments: str_at(item, "arguments").unwrap_or_default().to_owned(),
    }
}

fn error_event(err: &Value) -> super::ProviderError {
    let code = json::code_at(err, "code");
    // The nested `error` event's `type` repeats the code (`insufficient_quota`); the
    // top-level event's `type` is just "error".
    let ty = str_at(err, "type").filter(|t| *t != "error");
    classify::provider_error(&[code.as_deref(), ty], str_at(err, "message"), None)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_contract, parse_every_split, text};
    use super::super::{ProviderKind, ToolSpec, build_request as build};
    use super::*;

    const STREAM: &str = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Revenue grew \"}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"12 % — to 4,2 M€.\"}\n\n",
        "event: response.output_text.done\n",
        "data: {\"type\":\"response.output_text.done\",\"sequence_number\":4,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"text\":\"Revenue grew 12 % — to 4,2 M€.\"}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"sequence_number\":5,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"usage\":{\"input_tokens\":37,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":11,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":48}}}\n\n",
    );

    #[test]
    fn text_stream_with_usage() {
        let ev = parse_every_split(ResponsesStream::new, STREAM.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(text(&ev), "Revenue grew 12 % — to 4,2 M€.");
        assert_eq!(ev[ev.len() - 2], StreamEvent::Usage(Usage::new(37, 11)));
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::Complete))
        );
    }

    #[test]
    fn function_call_is_assembled() {
        let s = concat!(
            "event: response.output_item.added\n",
            "data: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":\"call_9\",\"name\":\"get_quote\"}}\n\n",
            "event: response.function_call_arguments.delta\n",
            "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":0,\"delta\":\"{\\\"symbol\\\":\"}\n\n",
            "event: response.function_call_arguments.delta\n",
            "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":0,\"delta\":\"\\\"MSFT\\\"}\"}\n\n",
            "event: response.output_item.done\n",
            "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"completed\",\"call_id\":\"call_9\",\"name\":\"get_quote\"}}\n\n",
            "event: response.completed\n",
            "data: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":5,\"output_tokens\":7}}}\n\n",
        );
        let ev = parse_every_split(ResponsesStream::new, s.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(
            ev[0],
            StreamEvent::ToolCall(ToolCall {
                id: "call_9".into(),
                name: "get_quote".into(),
                arguments: "{\"symbol\":\"MSFT\"}".into()
            })
        );
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::ToolCalls))
        );
    }

    #[test]
    fn incomplete_failed_and_error_events() {
        let s = "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":3,\"output_tokens\":100}}}\n\n";
        let ev = parse_every_split(ResponsesStream::new, s.as_bytes()).unwrap();
        assert_eq!(ev.last(), Some(&StreamEvent::finish(FinishReason::Length)));

        let s = "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"The model failed\"}}}\n\n";
        let ev = parse_every_split(ResponsesStream::new, s.as_bytes()).unwrap();
        let StreamEvent::ProviderError(e) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert!(e.retryable);
        assert_eq!(e.message, "The model failed");

        let s = "event: error\ndata: {\"type\":\"error\",\"code\":\"invalid_prompt\",\"message\":\"Bad prompt\",\"param\":null,\"sequence_number\":1}\n\n";
        let ev = parse_every_split(ResponsesStream::new, s.as_bytes()).unwrap();
        let StreamEvent::ProviderError(e) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert!(!e.retryable);
        assert_eq!(e.code.as_deref(), Some("invalid_prompt"));
    }

    #[test]
    fn errors_for_broken_streams() {
        let half = &STREAM[..STREAM.find("event: response.completed").unwrap()];
        assert!(matches!(
            parse_every_split(ResponsesStream::new, half.as_bytes()),
            Err(StreamError::Truncated { .. })
        ));
        let orphan = "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"nope\",\"delta\":\"x\"}\n\n";
        assert!(matches!(
            parse_every_split(ResponsesStream::new, orphan.as_bytes()),
            Err(StreamError::Protocol { .. })
        ));
    }

    #[test]
    fn commentary_is_not_the_answer_and_done_text_completes_deltas() {
        let s = concat!(
            "data: {\"type\":\"response.output_item.added\",\"item\":{\"id\":\"m1\",\"type\":\"message\",\"phase\":\"commentary\"}}\n\n",
            "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"m1\",\"content_index\":0,\"delta\":\"Got it\"}\n\n",
            "data: {\"type\":\"response.output_text.done\",\"item_id\":\"m1\",\"content_index\":0,\"text\":\"Got it, checking.\"}\n\n",
            "data: {\"type\":\"response.output_item.added\",\"item\":{\"id\":\"m2\",\"type\":\"message\",\"phase\":\"final_answer\"}}\n\n",
            "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"m2\",\"content_index\":0,\"delta\":\"Here are\"}\n\n",
            "data: {\"type\":\"response.output_text.done\",\"item_id\":\"m2\",\"content_index\":0,\"text\":\"Here are the news.\"}\n\n",
            "data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":9}}}\n\n",
        );
        let ev = parse_every_split(ResponsesStream::new, s.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(text(&ev), "Here are the news.");
    }

    #[test]
    fn incomplete_response_cuts_off_unfinished_calls() {
        let s = concat!(
            "data: {\"type\":\"response.output_item.added\",\"item\":{\"id\":\"fc\",\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"\"}}\n\n",
            "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc\",\"delta\":\"{\\\"q\\\":\"}\n\n",
            "data: {\"type\":\"response.incomplete\",\"response\":{\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":5,\"output_tokens\":16}}}\n\n",
        );
        let ev = parse_every_split(ResponsesStream::new, s.as_bytes()).unwrap();
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::Finish {
                reason: FinishReason::Length,
                message: None,
                cut_off_tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "f".into(),
                    arguments: "{\"q\":".into()
                }],
            })
        );
    }

    #[test]
    fn request_shape() {
        let mut req = ChatRequest::new(
            "gpt-4o",
            vec![
                Message::user("q"),
                Message::Assistant {
                    content: "let me check".into(),
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    }],
                },
                Message::Tool {
                    call_id: "call_1".into(),
                    name: "f".into(),
                    content: "r".into(),
                },
            ],
        )
        .with_system("sys");
        req.stop = vec!["END".into()];
        req.tools = vec![ToolSpec {
            name: "f".into(),
            description: String::new(),
            parameters: json!({"type":"object"}),
        }];
        let ep = Endpoint::new(
            ProviderKind::OpenAiResponses,
            "https://api.openai.com/v1",
            Some("k".into()),
        );
        let http = build(&ep, &req).unwrap();
        assert_eq!(http.url, "https://api.openai.com/v1/responses");
        let b = http.json_body();
        assert_eq!(b["instructions"], "sys");
        assert_eq!(b["max_output_tokens"], 1024);
        assert_eq!(b["store"], false);
        assert_eq!(b.get("stop"), None);
        assert_eq!(
            b["input"][1],
            json!({"role":"assistant","content":"let me check"})
        );
        assert_eq!(b["input"][2]["type"], "function_call");
        assert_eq!(
            b["input"][3],
            json!({"type":"function_call_output","call_id":"call_1","output":"r"})
        );
        assert_eq!(
            b["tools"][0],
            json!({"type":"function","name":"f","description":"","parameters":{"type":"object"}})
        );
    }
}
