//! Anthropic Messages (`POST /v1/messages`, `stream: true`, `anthropic-version: 2023-06-01`).
//!
//! Events: `message_start` (input usage), `content_block_start` (a `text` or `tool_use`
//! block; `thinking`, `server_tool_use`, `web_search_tool_result` and unknown block types are
//! skipped), `content_block_delta` (`text_delta` or `input_json_delta`), `content_block_stop`,
//! `message_delta` (`stop_reason`, cumulative output usage), `message_stop` (the end), `ping`,
//! and `error` (e.g. `overloaded_error`) which may arrive after a 200 status.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::classify;
use super::event::{FinishReason, StreamError, StreamEvent, ToolCall};
use super::join_url;
use super::json::{self, str_at, u64_at};
use super::request::{BuildError, ChatRequest, Endpoint, HttpRequest, Message};
use super::sse::SseEvent;
use crate::usage::{ReportedUsage, Usage};

const NAME: &str = "anthropic";
pub const API_VERSION: &str = "2023-06-01";

pub(crate) fn build_request(ep: &Endpoint, req: &ChatRequest) -> Result<HttpRequest, BuildError> {
    let url = join_url(&ep.base_url, "/v1", "/messages")?;
    let key = ep.key()?;
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_output_tokens,
        "messages": messages(req)?,
        "stream": true,
    });
    if let Some(s) = &req.system {
        body["system"] = json!(s);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = req.top_p {
        body["top_p"] = json!(p);
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    let mut http = HttpRequest::post_json(url, &body).header("anthropic-version", API_VERSION);
    if let Some(k) = key {
        http = http.header("x-api-key", k);
    }
    Ok(http)
}

/// Messages as content blocks. Tool results go back as `tool_result` blocks of a user turn,
/// and consecutive turns of one role are merged: Anthropic wants all results of parallel
/// tool calls in the one user message that follows the calls.
fn messages(req: &ChatRequest) -> Result<Vec<Value>, BuildError> {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m {
            Message::User { content } => ("user", vec![json!({"type": "text", "text": content})]),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks = Vec::new();
                // Empty text blocks are rejected by the API.
                if !content.is_empty() {
                    blocks.push(json!({"type": "text", "text": content}));
                }
                for c in tool_calls {
                    let input: Value = if c.arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&c.arguments)
                            .map_err(|_| BuildError::InvalidToolArguments(c.id.clone()))?
                    };
                    if !input.is_object() {
                        return Err(BuildError::InvalidToolArguments(c.id.clone()));
                    }
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                ("assistant", blocks)
            }
            Message::Tool {
                call_id, content, ..
            } => (
                "user",
                vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": content})],
            ),
        };
        match turns.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect())
}

/// Incremental parser of a Messages stream.
pub type MessagesStream = json::SseJsonStream<State>;

/// What the parser has seen so far.
#[derive(Debug, Clone, Default)]
pub struct State {
    started: bool,
    /// `tool_use` blocks being assembled, by block index. Other blocks (thinking, server
    /// tools and their results, types added later) are not part of the answer and skipped.
    tools: BTreeMap<u64, ToolCall>,
    any_tool_call: bool,
    input_tokens: Option<u64>,
    /// Set by `message_delta`: `message_start` counts only the first token or so.
    output_tokens: Option<u64>,
    start_output_tokens: u64,
    stop_reason: Option<FinishReason>,
    stop_message: Option<String>,
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
        let detail = if self.started {
            "no message_stop event"
        } else {
            "no message_start event"
        };
        Err(StreamError::Truncated {
            provider: NAME,
            detail: detail.into(),
        })
    }

    fn reported_usage(&self) -> ReportedUsage {
        ReportedUsage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        }
    }
}

/// Input tokens as billed: plain input plus prompt-cache writes and reads (all are input).
fn input_tokens(u: &Value) -> u64 {
    u64_at(u, "input_tokens")
        + u64_at(u, "cache_creation_input_tokens")
        + u64_at(u, "cache_read_input_tokens")
}

impl State {
    fn on_event(
        &mut self,
        ev: &SseEvent,
        done: &mut bool,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError> {
        let v = json::parse(NAME, &ev.data)?;
        let ty = str_at(&v, "type").or(ev.event.as_deref()).unwrap_or("");
        match ty {
            "message_start" => {
                self.started = true;
                if let Some(u) = v.get("message").and_then(|m| m.get("usage")) {
                    self.input_tokens = Some(input_tokens(u));
                    self.start_output_tokens = u64_at(u, "output_tokens");
                }
            }
            "content_block_start" => {
                let index = u64_at(&v, "index");
                let block = v.get("content_block").unwrap_or(&Value::Null);
                match str_at(block, "type") {
                    Some("text") => {
                        if let Some(t) = str_at(block, "text").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t.to_owned()));
                        }
                    }
                    Some("tool_use") => {
                        // The start carries `input: {}`; the real input comes as JSON deltas.
                        let input = block
                            .get("input")
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                        self.tools.insert(
                            index,
                            ToolCall {
                                id: str_at(block, "id").unwrap_or_default().to_owned(),
                                name: str_at(block, "name").unwrap_or_default().to_owned(),
                                arguments: input.map(Value::to_string).unwrap_or_default(),
                            },
                        );
                    }
                    // thinking, server_tool_use, web_search_tool_result, ...: not the answer.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let index = u64_at(&v, "index");
                let delta = v.get("delta").unwrap_or(&Value::Null);
                match str_at(delta, "type") {
                    Some("text_delta") => {
                        if let Some(t) = str_at(delta, "text").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t.to_owned()));
                        }
                    }
                    // Input of a server tool (web search) is the provider's business: only
                    // client tool_use blocks are assembled.
                    Some("input_json_delta") => {
                        if let Some(call) = self.tools.get_mut(&index) {
                            call.arguments
                                .push_str(str_at(delta, "partial_json").unwrap_or_default());
                        }
                    }
                    // thinking, signature and citation deltas.
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(mut call) = self.tools.remove(&u64_at(&v, "index")) {
                    if call.arguments.is_empty() {
                        call.arguments = "{}".into();
                    }
                    self.any_tool_call = true;
                    out.push(StreamEvent::ToolCall(call));
                }
            }
            "message_delta" => {
                let delta = v.get("delta").unwrap_or(&Value::Null);
                if let Some(r) = str_at(delta, "stop_reason") {
                    self.stop_reason = Some(stop_reason(r));
                }
                if let Some(m) = delta
                    .get("stop_details")
                    .and_then(|d| str_at(d, "explanation"))
                {
                    self.stop_message = Some(m.to_owned());
                }
                if let Some(u) = v.get("usage") {
                    // Counts in message_delta are cumulative.
                    if let Some(n) = u.get("output_tokens").and_then(Value::as_u64) {
                        self.output_tokens = Some(n);
                    }
                    // Server tools add their results to the input: the later count wins.
                    if u.get("input_tokens")
                        .and_then(Value::as_u64)
                        .is_some_and(|n| n > 0)
                    {
                        self.input_tokens = Some(input_tokens(u));
                    }
                }
            }
            "message_stop" => {
                if !self.started {
                    return Err(StreamError::Protocol {
                        provider: NAME,
                        detail: "message_stop before message_start".into(),
                    });
                }
                // A tool_use block without its content_block_stop was cut off (max_tokens
                // inside the input JSON): reported, never handed out as a call.
                let cut_off_tool_calls = std::mem::take(&mut self.tools).into_values().collect();
                out.push(StreamEvent::Usage(Usage::new(
                    self.input_tokens.unwrap_or_default(),
                    self.output_tokens.unwrap_or(self.start_output_tokens),
                )));
                let mut reason = self.stop_reason.take().unwrap_or(FinishReason::Complete);
                if reason == FinishReason::Complete && self.any_tool_call {
                    reason = FinishReason::ToolCalls;
                }
                out.push(StreamEvent::Finish {
                    reason,
                    message: self.stop_message.take(),
                    cut_off_tool_calls,
                });
                *done = true;
            }
            "error" => {
                out.push(StreamEvent::ProviderError(error_event(
                    v.get("error").unwrap_or(&v),
                    None,
                )));
                *done = true;
            }
            // ping and future event types
            _ => {}
        }
        Ok(())
    }
}

fn stop_reason(r: &str) -> FinishReason {
    match r {
        "end_turn" | "stop_sequence" => FinishReason::Complete,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::Refusal,
        // pause_turn (a server-tool loop paused, to be continued) and anything newer.
        other => FinishReason::Unknown(other.to_owned()),
    }
}

/// An Anthropic error object `{type, message}`.
pub(crate) fn error_event(err: &Value, http_status: Option<u16>) -> super::ProviderError {
    classify::provider_error(&[str_at(err, "type")], str_at(err, "message"), http_status)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{assert_contract, parse_every_split, text};
    use super::super::{ProviderKind, StreamParser, ToolSpec, build_request as build};
    use super::*;

    const STREAM: &str = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-haiku-latest\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\n",
        "data: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Margin is \"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"31 % 📈\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"Par\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"is\\\"}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn text_and_tool_use_stream() {
        let ev = parse_every_split(MessagesStream::new, STREAM.as_bytes()).unwrap();
        assert_contract(&ev);
        assert_eq!(text(&ev), "Margin is 31 % 📈");
        assert!(ev.contains(&StreamEvent::ToolCall(ToolCall {
            id: "toolu_01".into(),
            name: "get_weather".into(),
            arguments: "{\"location\": \"Paris\"}".into(),
        })));
        assert_eq!(ev[ev.len() - 2], StreamEvent::Usage(Usage::new(35, 89)));
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::finish(FinishReason::ToolCalls))
        );
    }

    #[test]
    fn error_event_after_200() {
        let s = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "event: error\n",
            "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        let ev = parse_every_split(MessagesStream::new, s.as_bytes()).unwrap();
        assert_contract(&ev);
        let StreamEvent::ProviderError(e) = &ev[0] else {
            panic!()
        };
        assert!(e.retryable);
        assert_eq!(e.code.as_deref(), Some("overloaded_error"));
        assert_eq!(e.message, "Overloaded");
    }

    #[test]
    fn broken_streams() {
        let cut = &STREAM[..STREAM.find("event: message_stop").unwrap()];
        assert!(matches!(
            parse_every_split(MessagesStream::new, cut.as_bytes()),
            Err(StreamError::Truncated { .. })
        ));
        // JSON input for a block that is not a client tool_use block (a server tool's, an
        // unknown type's) is skipped, not fatal.
        let server_tool = STREAM.replace("\"type\":\"tool_use\"", "\"type\":\"server_tool_use\"");
        let ev = parse_every_split(MessagesStream::new, server_tool.as_bytes()).unwrap();
        assert_contract(&ev);
        assert!(!ev.iter().any(|e| matches!(e, StreamEvent::ToolCall(_))));
        assert_eq!(text(&ev), "Margin is 31 % 📈");
        let early_stop = "data: {\"type\":\"message_stop\"}\n\n";
        assert!(matches!(
            parse_every_split(MessagesStream::new, early_stop.as_bytes()),
            Err(StreamError::Protocol { .. })
        ));
    }

    #[test]
    fn tool_block_without_stop_is_cut_off_and_usage_is_reported_as_sent() {
        let cut = STREAM
            .replace(
                "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
                "",
            )
            .replace("\"stop_reason\":\"tool_use\"", "\"stop_reason\":\"max_tokens\"");
        let ev = parse_every_split(MessagesStream::new, cut.as_bytes()).unwrap();
        assert_contract(&ev);
        let Some(StreamEvent::Finish {
            reason,
            cut_off_tool_calls,
            ..
        }) = ev.last()
        else {
            panic!("{ev:?}")
        };
        assert_eq!(reason, &FinishReason::Length);
        assert_eq!(cut_off_tool_calls[0].name, "get_weather");
        assert!(!ev.iter().any(|e| matches!(e, StreamEvent::ToolCall(_))));

        // Failing mid-stream: the input count of message_start is known, the output is not.
        let mut p = MessagesStream::new();
        p.feed(&STREAM.as_bytes()[..STREAM.find("event: message_delta").unwrap()])
            .unwrap();
        assert_eq!(
            p.reported_usage(),
            ReportedUsage {
                input_tokens: Some(35),
                output_tokens: None
            }
        );
    }

    #[test]
    fn request_shape_and_headers() {
        let mut req = ChatRequest::new(
            "claude-3-5-haiku-latest",
            vec![
                Message::user("weather?"),
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![
                        ToolCall {
                            id: "t1".into(),
                            name: "w".into(),
                            arguments: "{\"c\":\"Paris\"}".into(),
                        },
                        ToolCall {
                            id: "t2".into(),
                            name: "w".into(),
                            arguments: "".into(),
                        },
                    ],
                },
                Message::Tool {
                    call_id: "t1".into(),
                    name: "w".into(),
                    content: "sunny".into(),
                },
                Message::Tool {
                    call_id: "t2".into(),
                    name: "w".into(),
                    content: "rain".into(),
                },
            ],
        )
        .with_system("sys");
        req.stop = vec!["Human:".into()];
        req.tools = vec![ToolSpec {
            name: "w".into(),
            description: "d".into(),
            parameters: json!({"type":"object"}),
        }];
        let ep = Endpoint::new(
            ProviderKind::Anthropic,
            "https://api.anthropic.com",
            Some("ak".into()),
        );
        let http = build(&ep, &req).unwrap();
        assert_eq!(http.url, "https://api.anthropic.com/v1/messages");
        assert_eq!(http.header_value("x-api-key"), Some("ak"));
        assert_eq!(http.header_value("anthropic-version"), Some("2023-06-01"));
        assert_eq!(http.header_value("authorization"), None);
        let b = http.json_body();
        assert_eq!(b["system"], "sys");
        assert_eq!(b["max_tokens"], 1024);
        assert_eq!(b["stop_sequences"][0], "Human:");
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
        let msgs = b["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3, "tool results merged into one user turn");
        assert_eq!(
            msgs[1]["content"][0],
            json!({"type":"tool_use","id":"t1","name":"w","input":{"c":"Paris"}})
        );
        assert_eq!(msgs[1]["content"][1]["input"], json!({}));
        assert_eq!(
            msgs[2]["content"][1],
            json!({"type":"tool_result","tool_use_id":"t2","content":"rain"})
        );

        req.messages[1] = Message::Assistant {
            content: String::new(),
            tool_calls: vec![ToolCall {
                id: "t9".into(),
                name: "w".into(),
                arguments: "[1]".into(),
            }],
        };
        assert_eq!(
            build(&ep, &req),
            Err(BuildError::InvalidToolArguments("t9".into()))
        );
    }
}
