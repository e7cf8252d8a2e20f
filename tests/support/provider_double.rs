//! `ProviderDouble`: a **test double of the LLM providers' wire protocols** on 127.0.0.1.
//!
//! Model providers are external paid APIs, so tests and benchmarks talk to this local server
//! instead. It speaks each real streaming format, chosen by the request path as the real
//! APIs route them, under a path prefix naming the provider it stands in for
//! (`http://127.0.0.1:PORT/<provider>`):
//!
//! - `…/v1/chat/completions`: OpenAI Chat Completions (and OpenAI-compatible servers),
//!   `data:` chunks, a usage chunk (`stream_options.include_usage`), `data: [DONE]`;
//! - `…/v1/responses`: OpenAI Responses, named `response.*` events;
//! - `…/v1/messages`: Anthropic Messages, `message_start` … `message_stop`;
//! - `…/models/{model}:streamGenerateContent?alt=sse`: Gemini, `candidates` chunks with
//!   `usageMetadata`.
//!
//! Usage is reported honestly: input tokens are the characters of every text in the request
//! body / 4, output tokens those of the answer / 4 (tessera-gateway's estimate).
//!
//! Each provider has a queue of scripted [`Reply`]s, used one per request; when it is empty
//! the reply is [`Reply::Answer`]: a plausible answer built from the prompt — a JSON plan for
//! a planning prompt, a merge of the drafts for synthesis, otherwise a sentence quoted from
//! the first numbered source with its citation.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the double answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A plausible streamed answer built from the prompt (see the module docs).
    Answer,
    /// This text, streamed in the request's wire format.
    Text(String),
    /// A non-2xx answer, e.g. 429 with `retry-after`, or a 500.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Accepts the request and sends nothing for this long (a provider that hangs).
    Stall(Duration),
    /// A 200 stream that turns into invalid JSON half-way.
    Malformed,
    /// A 200 stream that stops before its end marker.
    Truncated,
    /// A recorded 200 stream body (a real provider's, for replay tests), sent byte for byte
    /// in chunks of up to 512 bytes, whatever the request asked.
    Raw(Vec<u8>),
}

impl Reply {
    pub fn status(status: u16) -> Self {
        let body = json!({"error": {"type": "server_error", "message": format!("test double says {status}")}}).to_string();
        Reply::Status {
            status,
            headers: vec![],
            body,
        }
    }

    /// 429 with `retry-after: <seconds>`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let body =
            json!({"error": {"type": "rate_limit_error", "message": "slow down"}}).to_string();
        Reply::Status {
            status: 429,
            headers: vec![("retry-after".into(), retry_after_secs.to_string())],
            body,
        }
    }
}

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The provider prefix (`openai`, `anthropic`, …).
    pub provider: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub at: Instant,
    /// Input tokens the double reported for it (0 for scripted failures).
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The double's own service time: from the request's last byte read to the reply's last
    /// byte written (`None` until the reply is complete, or when it never was). Benchmarks
    /// subtract it from the gateway's time to get the gateway's overhead.
    pub served_in: Option<Duration>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, VecDeque<Reply>>,
    requests: Vec<Recorded>,
    chunk_delay: Duration,
}

pub struct ProviderDouble {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Default for ProviderDouble {
    fn default() -> Self {
        Self::start()
    }
}

impl ProviderDouble {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the provider double");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        Self { addr, state }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL standing in for `provider`.
    pub fn base_url(&self, provider: &str) -> String {
        format!("http://{}/{provider}", self.addr)
    }

    /// Queues replies for `provider`'s next requests.
    pub fn script(&self, provider: &str, replies: impl IntoIterator<Item = Reply>) {
        self.lock()
            .scripts
            .entry(provider.to_string())
            .or_default()
            .extend(replies);
    }

    /// Drops every queued reply.
    pub fn clear_scripts(&self) {
        self.lock().scripts.clear();
    }

    /// Pause between streamed chunks (default none).
    pub fn set_chunk_delay(&self, d: Duration) {
        self.lock().chunk_delay = d;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Requests received for `provider` so far.
    pub fn hits(&self, provider: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.provider == provider)
            .count()
    }

    pub fn total_hits(&self) -> usize {
        self.lock().requests.len()
    }

    /// A tessera-gateway catalog with one provider of each wire format on this double:
    /// `openai` (Chat Completions), `openai-responses`, `anthropic`, `gemini`, each with a
    /// cheap and a default model (prices as the built-in catalog's examples).
    pub fn catalog_json(&self) -> String {
        let m = |id: &str, tier: &str, i: f64, o: f64| json!({"id": id, "tier": tier, "input_usd_per_mtok": i, "output_usd_per_mtok": o, "context_window": 128000});
        json!({"providers": [
            {"id": "openai", "kind": "openai", "base_url": self.base_url("openai"), "api_key_variable": "openai_api_key",
             "models": [m("gpt-4o-mini", "cheap", 0.15, 0.6), m("gpt-4o", "default", 2.5, 10.0)]},
            {"id": "openai-responses", "kind": "openai-responses", "base_url": self.base_url("openai-responses"), "api_key_variable": "openai_api_key",
             "models": [m("gpt-4.1-mini", "cheap", 0.4, 1.6), m("gpt-4.1", "default", 2.0, 8.0)]},
            {"id": "anthropic", "kind": "anthropic", "base_url": self.base_url("anthropic"), "api_key_variable": "anthropic_api_key",
             "models": [m("claude-3-5-haiku-latest", "cheap", 0.8, 4.0), m("claude-sonnet-4-0", "default", 3.0, 15.0)]},
            {"id": "gemini", "kind": "gemini", "base_url": self.base_url("gemini"), "api_key_variable": "gemini_api_key",
             "models": [m("gemini-2.0-flash", "cheap", 0.1, 0.4), m("gemini-2.5-pro", "default", 1.25, 10.0)]}
        ]})
        .to_string()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    ChatCompletions,
    Responses,
    Anthropic,
    Gemini,
}

fn format_of(path: &str) -> Option<Format> {
    let p = path.split('?').next().unwrap_or(path);
    if p.ends_with("/chat/completions") {
        Some(Format::ChatCompletions)
    } else if p.ends_with("/responses") {
        Some(Format::Responses)
    } else if p.ends_with("/messages") {
        Some(Format::Anthropic)
    } else if p.ends_with(":streamGenerateContent") {
        Some(Format::Gemini)
    } else {
        None
    }
}

struct Incoming {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Incoming>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                let mut end = String::new();
                reader.read_line(&mut end)?;
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    Ok(Some(Incoming {
        path,
        headers,
        body,
        close,
    }))
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while let Some(req) = read_request(&mut reader)? {
        let received = Instant::now();
        let provider = req
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let (reply, delay) = {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let reply = s
                .scripts
                .get_mut(&provider)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Reply::Answer);
            (reply, s.chunk_delay)
        };
        let Some(format) = format_of(&req.path) else {
            write_status(
                &mut out,
                404,
                &[],
                "{\"error\":{\"message\":\"unknown path\"}}",
            )?;
            continue;
        };
        let prompt = prompt_text(&body);
        let input_tokens = (prompt.chars().count() as u64).div_ceil(4);
        let mut recorded = Recorded {
            provider,
            path: req.path.clone(),
            headers: req.headers.clone(),
            body: body.clone(),
            at: Instant::now(),
            input_tokens: 0,
            output_tokens: 0,
            served_in: None,
        };
        let text = match &reply {
            Reply::Answer => Some(answer_for(&prompt)),
            Reply::Text(t) => Some(t.clone()),
            _ => None,
        };
        if let Some(t) = &text {
            recorded.input_tokens = input_tokens;
            recorded.output_tokens = (t.chars().count() as u64).div_ceil(4);
        }
        let index = {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.requests.push(recorded.clone());
            s.requests.len() - 1
        };
        match reply {
            Reply::Status {
                status,
                headers,
                body,
            } => write_status(&mut out, status, &headers, &body)?,
            Reply::Stall(d) => {
                std::thread::sleep(d);
                return Ok(());
            }
            Reply::Malformed => {
                start_stream(&mut out)?;
                let events = stream_events(
                    format,
                    "Partial answer",
                    recorded.input_tokens,
                    0,
                    &model_of(&body, &req.path),
                );
                chunk(&mut out, events[0].as_bytes())?;
                chunk(&mut out, b"data: {\"this is\": not json\n\n")?;
                end_stream(&mut out)?;
            }
            Reply::Raw(body) => {
                start_stream(&mut out)?;
                for piece in body.chunks(512) {
                    if chunk(&mut out, piece).is_err() {
                        return Ok(());
                    }
                }
                end_stream(&mut out)?;
            }
            Reply::Truncated => {
                start_stream(&mut out)?;
                let events = stream_events(
                    format,
                    "An answer that never ends",
                    recorded.input_tokens,
                    0,
                    &model_of(&body, &req.path),
                );
                chunk(&mut out, events[0].as_bytes())?;
                end_stream(&mut out)?;
                return Ok(());
            }
            Reply::Answer | Reply::Text(_) => {
                let text = text.unwrap_or_default();
                start_stream(&mut out)?;
                for e in stream_events(
                    format,
                    &text,
                    recorded.input_tokens,
                    recorded.output_tokens,
                    &model_of(&body, &req.path),
                ) {
                    if !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                    if chunk(&mut out, e.as_bytes()).is_err() {
                        // The caller hung up (a timeout or a cancelled turn).
                        return Ok(());
                    }
                }
                end_stream(&mut out)?;
            }
        }
        if let Some(r) = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .get_mut(index)
        {
            r.served_in = Some(received.elapsed());
        }
        if req.close {
            return Ok(());
        }
    }
    Ok(())
}

fn write_status(
    out: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Test Double\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

fn start_stream(out: &mut TcpStream) -> std::io::Result<()> {
    out.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")?;
    out.flush()
}

fn chunk(out: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    out.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    out.write_all(data)?;
    out.write_all(b"\r\n")?;
    out.flush()
}

fn end_stream(out: &mut TcpStream) -> std::io::Result<()> {
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

fn model_of(body: &Value, path: &str) -> String {
    body["model"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            path.split("/models/")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .unwrap_or("model")
                .to_string()
        })
}

/// Every text in the request body (system, messages, contents), for honest token counts and
/// for the answer builder.
pub fn prompt_text(body: &Value) -> String {
    fn walk(v: &Value, key: &str, out: &mut String) {
        match v {
            Value::String(s) if !matches!(key, "model" | "role" | "type") => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| walk(x, k, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    for key in [
        "system",
        "instructions",
        "system_instruction",
        "messages",
        "input",
        "contents",
    ] {
        if let Some(v) = body.get(key) {
            walk(v, key, &mut out);
        }
    }
    out
}

/// The SSE events of a streamed answer in `format`, split into word groups.
fn stream_events(
    format: Format,
    text: &str,
    input_tokens: u64,
    output_tokens: u64,
    model: &str,
) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    let pieces: Vec<String> = words.chunks(4).map(|c| c.concat()).collect();
    let data = |v: Value| format!("data: {v}\n\n");
    let named = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
    let mut out = Vec::new();
    match format {
        Format::ChatCompletions => {
            for (i, p) in pieces.iter().enumerate() {
                let delta = if i == 0 {
                    json!({"role": "assistant", "content": p})
                } else {
                    json!({"content": p})
                };
                out.push(data(json!({"id": "chatcmpl-double", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})));
            }
            out.push(data(json!({"id": "chatcmpl-double", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})));
            out.push(data(json!({"id": "chatcmpl-double", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}})));
            out.push("data: [DONE]\n\n".into());
        }
        Format::Responses => {
            out.push(named("response.created", json!({"type": "response.created", "response": {"id": "resp_double", "status": "in_progress", "model": model}})));
            for p in &pieces {
                out.push(named("response.output_text.delta", json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": p})));
            }
            out.push(named("response.output_text.done", json!({"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0, "text": text})));
            out.push(named("response.completed", json!({"type": "response.completed", "response": {"id": "resp_double", "status": "completed", "model": model, "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}}})));
        }
        Format::Anthropic => {
            out.push(named("message_start", json!({"type": "message_start", "message": {"id": "msg_double", "type": "message", "role": "assistant", "model": model, "content": [], "usage": {"input_tokens": input_tokens, "output_tokens": 1}}})));
            out.push(named("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
            for p in &pieces {
                out.push(named("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})));
            }
            out.push(named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            out.push(named("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": output_tokens}})));
            out.push(named("message_stop", json!({"type": "message_stop"})));
        }
        Format::Gemini => {
            let n = pieces.len();
            for (i, p) in pieces.iter().enumerate() {
                let mut cand =
                    json!({"content": {"parts": [{"text": p}], "role": "model"}, "index": 0});
                let mut chunk = json!({"modelVersion": model, "usageMetadata": {"promptTokenCount": input_tokens, "totalTokenCount": input_tokens}});
                if i + 1 == n {
                    cand["finishReason"] = json!("STOP");
                    chunk["usageMetadata"] = json!({"promptTokenCount": input_tokens, "candidatesTokenCount": output_tokens, "totalTokenCount": input_tokens + output_tokens});
                }
                chunk["candidates"] = json!([cand]);
                out.push(data(chunk));
            }
            if pieces.is_empty() {
                out.push(data(json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": input_tokens, "candidatesTokenCount": 0}})));
            }
        }
    }
    out
}

/// A plausible answer: a plan for planning prompts, a merge for synthesis, else a sentence
/// quoted from the first numbered source.
pub fn answer_for(prompt: &str) -> String {
    if prompt.contains("Plan the answer as JSON.") {
        let question = prompt
            .lines()
            .find_map(|l| l.strip_prefix("Question: "))
            .unwrap_or("the question")
            .trim();
        let parts: Vec<&str> = question
            .split(['?', ';'])
            .flat_map(|p| p.split(", and "))
            .map(str::trim)
            .filter(|p| p.split_whitespace().count() >= 3)
            .take(3)
            .collect();
        let parts = if parts.is_empty() {
            vec![question]
        } else {
            parts
        };
        let tasks: Vec<Value> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"id": i + 1, "title": p.chars().take(100).collect::<String>(), "instructions": format!("Answer from the sources: {p}"), "depends_on": []}))
            .collect();
        return json!({"goal": question.chars().take(200).collect::<String>(), "tasks": tasks})
            .to_string();
    }
    if prompt.contains("Combine the drafts") {
        let cited: Vec<&str> = prompt
            .lines()
            .filter(|l| {
                l.contains('[') && l.contains(']') && !l.contains("[n]") && !l.starts_with("Draft ")
            })
            .collect();
        let body = if cited.is_empty() {
            "The drafts had nothing to combine.".to_string()
        } else {
            cited.join("\n")
        };
        return format!("In short:\n{body}");
    }
    // The first numbered source ("[n] title" then its passage): quote its first sentence.
    let mut lines = prompt.lines();
    while let Some(l) = lines.next() {
        if let Some(rest) = l.strip_prefix('[')
            && let Some((n, _)) = rest.split_once(']')
            && n.parse::<u32>().is_ok()
        {
            let passage: String = lines
                .by_ref()
                .take_while(|x| !x.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let sentence = passage
                .split(". ")
                .next()
                .unwrap_or(&passage)
                .trim()
                .trim_end_matches('.');
            return format!("According to the sources, {sentence} [{n}].");
        }
    }
    "The sources do not cover this.".to_string()
}
