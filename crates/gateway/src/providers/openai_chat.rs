//! OpenAI Chat Completions (`POST /v1/chat/completions`, `stream: true`), also spoken by
//! OpenAI-compatible servers (Ollama, vLLM, llama.cpp).
//!
//! The stream is `data: {chunk}` events ending with `data: [DONE]`. Text arrives in
//! `choices[].delta.content` of the choice with `index` 0 (a refusal in `delta.refusal`);
//! tool calls arrive as `delta.tool_calls[]` fragments
//! keyed by `index` (id and name first, then `function.arguments` pieces); `finish_reason`
//! comes on the last choice chunk; with `stream_options.include_usage` a final chunk with empty
//! `choices` carries `usage`. An error mid-stream is `data: {"error": {...}}`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::classify;
use super::event::{FinishReason, StreamError, StreamEvent, ToolCall};
use super::json::{self, str_at};
use super::request::{BuildError, ChatRequest, Endpoint, HttpRequest, Message};
use super::sse::SseEvent;
use super::{ProviderKind, join_url};
use crate::usage::{ReportedUsage, Usage};

const NAME: &str = "openai";

pub(crate) fn build_request(ep: &Endpoint, req: &ChatRequest) -> Result<HttpRequest, BuildError> {
    let url = join_url(&ep.base_url, "/v1", "/chat/completions")?;
    let key = ep.key()?;
    let mut body = json!({
        "model": req.model,
        "messages": messages(req),
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    // OpenAI replaced `max_tokens` with `max_completion_tokens` (required by reasoning
    // models); compatible servers still read `max_tokens`.
    let max_key = if ep.kind == ProviderKind::OpenAi {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[max_key] = json!(req.max_output_tokens);
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = req.top_p {
        body["top_p"] = json!(p);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
    }
    let mut http = HttpRequest::post_json(url, &body);
    if let Some(k) = key {
        http = http.header("authorization", &format!("Bearer {k}"));
    }
    Ok(http)
}

fn messages(req: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    if let Some(s) = &req.system {
        out.push(json!({"role": "system", "content": s}));
    }
    for m in &req.messages {
        out.push(match m {
            Message::User { content } => json!({"role": "user", "content": content}),
            Message::Assistant {
                content,
                tool_calls,
            } if tool_calls.is_empty() => {
                json!({"role": "assistant", "content": content})
            }
            Message::Assistant {
                content,
                tool_calls,
            } => json!({
                "role": "assistant",
                "content": if content.is_empty() { Value::Null } else { json!(content) },
                "tool_calls": tool_calls.iter().map(|c| json!({
                    "id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })).collect::<Vec<_>>(),
            }),
            Message::Tool {
                call_id, content, ..
            } => {
                json!({"role": "tool", "tool_call_id": call_id, "content": content})
            }
        });
    }
    out
}

/// Incremental parser of a Chat Completions stream.
pub type ChatCompletionsStream = json::SseJsonStream<State>;

/// What the parser has seen so far. Only choice 0 is read: with `n > 1` the other choices'
/// deltas interleave with it and would garble the answer.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Tool calls being assembled, by their `index`.
    calls: BTreeMap<u64, ToolCall>,
    /// `delta.refusal` text: the model's refusal message, not answer text.
    refusal: String,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    saw_chunk: bool,
    any_tool_call: bool,
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
        // Some compatible servers omit `[DONE]`; a stream that got its finish_reason is
        // complete all the same.
        if self.finish.is_none() {
            let detail = if self.saw_chunk {
                "no finish_reason and no [DONE]"
            } else {
                "empty stream"
            };
            return Err(StreamError::Truncated {
                provider: NAME,
                detail: detail.into(),
            });
        }
        self.end(out);
        Ok(())
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
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.end(out);
            *done = true;
            return Ok(());
        }
        let v = json::parse(NAME, data)?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            out.push(StreamEvent::ProviderError(error_event(err, None)));
            *done = true;
            return Ok(());
        }
        self.saw_chunk = true;
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(u));
        }
        let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| json::u64_at(c, "index") == 0))
        else {
            return Ok(());
        };
        if let Some(delta) = choice.get("delta") {
            if let Some(t) = str_at(delta, "content").filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta(t.to_owned()));
            }
            if let Some(t) = str_at(delta, "refusal") {
                self.refusal.push_str(t);
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (pos, c) in calls.iter().enumerate() {
                    self.tool_call_delta(pos as u64, c)?;
                }
            }
        }
        if let Some(r) = str_at(choice, "finish_reason") {
            let reason = finish_reason(r);
            // Tool-call fragments all precede the finish_reason: the calls are as complete
            // as they will get. Hand them out now unless the limit cut them off.
            if matches!(reason, FinishReason::ToolCalls | FinishReason::Complete) {
                self.hand_out_calls(out);
            }
            self.finish = Some(reason);
        }
        Ok(())
    }

    fn tool_call_delta(&mut self, pos: u64, c: &Value) -> Result<(), StreamError> {
        // `index` is required by OpenAI; some compatible servers send whole calls without it.
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(pos);
        let f = c.get("function");
        let call = self.calls.entry(index).or_insert_with(|| ToolCall {
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
        });
        if let Some(id) = str_at(c, "id") {
            call.id = id.to_owned();
        }
        if let Some(name) = f.and_then(|f| str_at(f, "name")) {
            call.name.push_str(name);
        }
        match f.and_then(|f| f.get("arguments")) {
            Some(Value::String(a)) => call.arguments.push_str(a),
            // Ollama has been seen sending arguments as an object rather than JSON text.
            Some(obj @ Value::Object(_)) => call.arguments.push_str(&obj.to_string()),
            _ => {}
        }
        if call.id.is_empty() && call.name.is_empty() && f.is_none() {
            return Err(StreamError::Protocol {
                provider: NAME,
                detail: "tool_calls entry without function".into(),
            });
        }
        if call.id.is_empty() {
            call.id = format!("call_{index}");
        }
        Ok(())
    }

    fn hand_out_calls(&mut self, out: &mut Vec<StreamEvent>) {
        for call in std::mem::take(&mut self.calls).into_values() {
            self.any_tool_call = true;
            out.push(StreamEvent::ToolCall(call));
        }
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        // `[DONE]` with no finish_reason: the server ended the answer cleanly.
        let mut reason = self.finish.take().unwrap_or(FinishReason::Complete);
        let mut cut_off_tool_calls = Vec::new();
        if matches!(reason, FinishReason::Complete | FinishReason::ToolCalls) {
            self.hand_out_calls(out);
        } else {
            cut_off_tool_calls = std::mem::take(&mut self.calls).into_values().collect();
        }
        // Some compatible servers say "stop" after tool calls; they mean tool_calls.
        if reason == FinishReason::Complete && self.any_tool_call {
            reason = FinishReason::ToolCalls;
        }
        let mut message = None;
        if !self.refusal.is_empty() {
            // A refusal comes with finish_reason "stop"; the refusal text says what it is.
            reason = FinishReason::Refusal;
            message = Some(std::mem::take(&mut self.refusal));
        }
        if let Some(u) = self.usage {
            out.push(StreamEvent::Usage(u));
        }
        out.push(StreamEvent::Finish {
            reason,
            message,
            cut_off_tool_calls,
        });
    }
}

/// Usage as reported. OpenAI counts reasoning tokens in `completion_tokens`; xAI does not
/// (its `total_tokens` adds them separately), so they are added back when the total says so.
fn usage(u: &Value) -> Usage {
    let input = json::u64_at(u, "prompt_tokens");
    let mut output = json::u64_at(u, "completion_tokens");
    let reasoning = u
        .get("completion_tokens_details")
        .map_or(0, |d| json::u64_at(d, "reasoning_tokens"));
    if reasoning > 0 && json::u64_at(u, "total_tokens") == input + output + reasoning {
        output += reasoning;
    }
    Usage::new(input, output)
}

fn finish_reason(r: &str) -> FinishReason {
    match r {
        "stop" | "eos" => FinishReason::Complete,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        // OpenRouter and some servers end a failed generation this way.
        "error" => FinishReason::Error,
        other => FinishReason::Unknown(other.to_owned()),
    }
}

/// An OpenAI error object: `{message, type, code, param}`.
pub(crate) fn error_event(err: &Value, http_status: Option<u16>) -> super::ProviderError {
    let code = json::code_at(err, "code");
    classify::provider_error(
        &[code.as_deref(), str_at(err, "type")],
        str_at(err, "message").or_else(|| err.as_str()),
        http_status,
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_contract, parse_every_split, text};
    use super::super::{ToolSpec, build_request as build};
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" wörld €\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":5,\"total_tokens\":24}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn text_stream_with_usage() {
        let ev = parse_every_split(ChatCompletionsStream::new, STREAM.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(text(&ev), "Héllo wörld €");
        assert_eq!(ev[ev.len() - 2], StreamEvent::Usage(Usage::new(19, 5)));
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::Complete))
        );
    }

    #[test]
    fn tool_call_fragments_are_joined() {
        let s = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_abc\",\"type\":\"function\",\"function\":{\"name\":\"get_quote\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"sym\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"bol\\\": \\\"AAPL\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_def\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":20}}\n\n",
            "data: [DONE]\n\n",
        );
        let ev = parse_every_split(ChatCompletionsStream::new, s.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(
            ev[..2],
            [
                StreamEvent::ToolCall(ToolCall {
                    id: "call_abc".into(),
                    name: "get_quote".into(),
                    arguments: "{\"symbol\": \"AAPL\"}".into()
                }),
                StreamEvent::ToolCall(ToolCall {
                    id: "call_def".into(),
                    name: "now".into(),
                    arguments: "{}".into()
                }),
            ]
        );
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::ToolCalls))
        );
    }

    #[test]
    fn compatible_server_without_usage_or_done() {
        // llama.cpp / older Ollama style: CRLF, no usage chunk, no [DONE].
        let s = "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":null}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\r\n\r\n";
        let ev = parse_every_split(ChatCompletionsStream::new, s.as_bytes()).unwrap();
        assert_eq!(
            ev,
            vec![
                StreamEvent::TextDelta("ok".into()),
                StreamEvent::finish(FinishReason::Length)
            ]
        );
    }

    #[test]
    fn in_stream_error_ends_the_stream() {
        let s = "data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\ndata: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"ignored\"}}]}\n\n";
        let ev = parse_every_split(ChatCompletionsStream::new, s.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(text(&ev), "par");
        let StreamEvent::ProviderError(e) = ev.last().unwrap() else {
            panic!()
        };
        assert!(e.retryable);
        assert_eq!(e.code.as_deref(), Some("server_error"));
    }

    #[test]
    fn malformed_and_truncated_streams_are_errors() {
        let bad = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {not json}\n\n";
        assert!(matches!(
            parse_every_split(ChatCompletionsStream::new, bad.as_bytes()),
            Err(StreamError::MalformedJson {
                provider: "openai",
                ..
            })
        ));
        let cut =
            "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"choices\":[{\"del";
        assert!(matches!(
            parse_every_split(ChatCompletionsStream::new, cut.as_bytes()),
            Err(StreamError::Truncated { .. })
        ));
        assert!(matches!(
            parse_every_split(ChatCompletionsStream::new, b""),
            Err(StreamError::Truncated { .. })
        ));
        let no_end = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n";
        assert!(matches!(
            parse_every_split(ChatCompletionsStream::new, no_end.as_bytes()),
            Err(StreamError::Truncated { .. })
        ));
    }

    #[test]
    fn only_choice_zero_and_refusals_apart_from_the_text() {
        // n=2: the choices interleave; choice 1's text and finish are not the answer.
        let s = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":1,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let ev = parse_every_split(ChatCompletionsStream::new, s.as_bytes()).unwrap();
        assert_eq!(text(&ev), "Aa");
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::Complete))
        );

        let s = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null,\"refusal\":\"I can't\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\" help.\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let ev = parse_every_split(ChatCompletionsStream::new, s.as_bytes()).unwrap();
        assert_eq!(
            ev,
            vec![StreamEvent::Finish {
                reason: FinishReason::Refusal,
                message: Some("I can't help.".into()),
                cut_off_tool_calls: vec![],
            }]
        );
    }

    #[test]
    fn length_cuts_off_tool_calls_and_reasoning_tokens_are_output() {
        let s = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
            // xAI: completion_tokens leaves out the reasoning tokens that total_tokens counts.
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":354,\"completion_tokens_details\":{\"reasoning_tokens\":340}}}\n\n",
            "data: [DONE]\n\n",
        );
        let ev = parse_every_split(ChatCompletionsStream::new, s.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(
            ev,
            vec![
                StreamEvent::Usage(Usage::new(12, 342)),
                StreamEvent::Finish {
                    reason: FinishReason::Length,
                    message: None,
                    cut_off_tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: "{\"a\":".into()
                    }],
                }
            ]
        );
    }

    #[test]
    fn request_for_openai_and_compatible_servers() {
        let mut req = ChatRequest::new(
            "gpt-4o-mini",
            vec![
                Message::user("price of AAPL?"),
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "quote".into(),
                        arguments: "{}".into(),
                    }],
                },
                Message::Tool {
                    call_id: "c1".into(),
                    name: "quote".into(),
                    content: "189.5".into(),
                },
            ],
        )
        .with_system("Be brief.");
        req.temperature = Some(0.25);
        req.stop = vec!["\n\n".into()];
        req.tools = vec![ToolSpec {
            name: "quote".into(),
            description: "Quote".into(),
            parameters: json!({"type":"object"}),
        }];
        let ep = Endpoint::new(
            ProviderKind::OpenAi,
            "https://api.openai.com",
            Some("sk-1".into()),
        );
        let http = build(&ep, &req).unwrap();
        assert_eq!(http.method, "POST");
        assert_eq!(http.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(http.header_value("authorization"), Some("Bearer sk-1"));
        let b = http.json_body();
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_completion_tokens"], 1024);
        assert_eq!(b["temperature"], 0.25);
        assert_eq!(
            b["messages"][0],
            json!({"role":"system","content":"Be brief."})
        );
        assert_eq!(b["messages"][2]["content"], Value::Null);
        assert_eq!(
            b["messages"][2]["tool_calls"][0]["function"]["name"],
            "quote"
        );
        assert_eq!(
            b["messages"][3],
            json!({"role":"tool","tool_call_id":"c1","content":"189.5"})
        );
        assert_eq!(b["tools"][0]["type"], "function");
        assert_eq!(b["tools"][0]["function"]["name"], "quote");

        let ep = Endpoint::new(
            ProviderKind::OpenAiCompatible,
            "http://127.0.0.1:11434/v1",
            None,
        );
        let http = build(&ep, &req).unwrap();
        assert_eq!(http.url, "http://127.0.0.1:11434/v1/chat/completions");
        assert_eq!(http.header_value("authorization"), None);
        assert_eq!(http.json_body()["max_tokens"], 1024);
    }
}
