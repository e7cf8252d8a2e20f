//! Replays every real provider stream of `../shared/provider-streams/` (recorded by the
//! providers' SDK test suites and other public projects; see its SOURCES.md) through the
//! parsers: whole, one byte at a time, split in two at every point (sampled for large
//! files), with CRLF and LF line ends and with keep-alive comments, all of which must give the
//! same result; each recording's expected text, finish reason, usage, tool calls and retry
//! decision are written down below. Every proper prefix that stops before the provider's end
//! marker must not be reported as a complete answer.
//!
//! The recordings are third-party data and stay outside the repository: the folder is found
//! at `$TESSERA_PROVIDER_STREAMS` or `<repo>/../shared/provider-streams`. Without it each case
//! prints that it was skipped, by name, and passes.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tessera_gateway::retry::{CallFailure, RetryDecision, RetryPolicy, decide};
use tessera_gateway::{
    ErrorKind, FinishReason, ProviderKind, ProviderStream, ReportedUsage, StreamError, StreamEvent,
    StreamParser, StreamedAnswer, Usage,
};

/// How a transcript becomes the HTTP body (as `frame.py` beside the recordings does).
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// An SSE body, served byte for byte.
    Raw,
    /// One JSON chunk per line: `data: {json}\n\n` ... `data: [DONE]\n\n`.
    ChunksOpenAi,
    /// One JSON event per line: `event: {type}\ndata: {json}\n\n`.
    ChunksTyped,
    /// One JSON response per line: `data: {json}\r\n\r\n`.
    ChunksGemini,
}

/// The answer's text: exact, or (for long answers) its start, end and length in characters.
enum Text {
    Exact(&'static str),
    Long {
        starts: &'static str,
        ends: &'static str,
        chars: usize,
    },
}

/// What a recording must give.
struct Expect {
    text: Text,
    /// `None` when the stream ends in a provider error.
    finish: Option<FinishReason>,
    finish_message: Option<&'static str>,
    usage: Option<Usage>,
    /// What the parser reports it was told, for a call that ends badly.
    reported: ReportedUsage,
    tool_calls: &'static [(&'static str, &'static str, &'static str)],
    /// Tool calls cut off by the limit: id, name and the start of the arguments.
    cut_off: &'static [(&'static str, &'static str, &'static str)],
    /// Kind, code and retryability of an in-stream error.
    error: Option<(ErrorKind, &'static str, bool)>,
    complete: bool,
    /// What the retry policy does with an answer that is not complete (first attempt).
    decision: Option<Decision>,
}

#[derive(Debug, PartialEq)]
enum Decision {
    Retry,
    FallBack,
    GiveUp,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            text: Text::Exact(""),
            finish: Some(FinishReason::Complete),
            finish_message: None,
            usage: None,
            reported: ReportedUsage::default(),
            tool_calls: &[],
            cut_off: &[],
            error: None,
            complete: true,
            decision: None,
        }
    }
}

struct Case {
    file: &'static str,
    framing: Framing,
    /// The N-th response of a file holding several (split at `response.created`).
    segment: Option<usize>,
    kind: ProviderKind,
    expect: Expect,
}

fn streams_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TESSERA_PROVIDER_STREAMS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/provider-streams")
        });
    dir.is_dir().then_some(dir)
}

fn frame(data: &[u8], framing: Framing, segment: Option<usize>) -> Vec<u8> {
    if let Framing::Raw = framing {
        return data.to_vec();
    }
    let text = std::str::from_utf8(data).expect("chunk files are UTF-8");
    let mut lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
    let ty = |l: &str| -> String {
        let v: Value = serde_json::from_str(l).expect("one JSON event per line");
        v["type"].as_str().unwrap_or_default().to_owned()
    };
    if let Some(n) = segment {
        let mut segments: Vec<Vec<&str>> = vec![Vec::new()];
        for l in lines {
            if ty(l) == "response.created" && !segments.last().unwrap().is_empty() {
                segments.push(Vec::new());
            }
            segments.last_mut().unwrap().push(l);
        }
        lines = segments.swap_remove(n);
    }
    let mut out = String::new();
    for l in lines {
        match framing {
            Framing::ChunksOpenAi => out += &format!("data: {l}\n\n"),
            Framing::ChunksTyped => out += &format!("event: {}\ndata: {l}\n\n", ty(l)),
            Framing::ChunksGemini => out += &format!("data: {l}\r\n\r\n"),
            Framing::Raw => unreachable!(),
        }
    }
    if let Framing::ChunksOpenAi = framing {
        out += "data: [DONE]\n\n";
    }
    out.into_bytes()
}

fn to_lf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\r' && body.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

fn to_crlf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 16);
    for &b in &to_lf(body) {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// A `: keep-alive` comment before every event, as proxies and OpenRouter send.
fn with_comments(body: &[u8]) -> Vec<u8> {
    let crlf = body.windows(4).any(|w| w == b"\r\n\r\n");
    let (sep, nl): (&[u8], &[u8]) = if crlf {
        (b"\r\n\r\n", b"\r\n")
    } else {
        (b"\n\n", b"\n")
    };
    let comment = [b": keep-alive".as_slice(), nl, nl].concat();
    let mut out = comment.clone();
    let mut rest = body;
    while let Some(p) = rest.windows(sep.len()).position(|w| w == sep) {
        out.extend_from_slice(&rest[..p + sep.len()]);
        out.extend_from_slice(&comment);
        rest = &rest[p + sep.len()..];
    }
    out.extend_from_slice(rest);
    out
}

type Run = Result<(Vec<StreamEvent>, ReportedUsage), StreamError>;

fn run(kind: ProviderKind, pieces: &[&[u8]]) -> Run {
    let mut p = ProviderStream::new(kind).unwrap();
    let mut events = Vec::new();
    for piece in pieces {
        events.extend(p.feed(piece)?);
    }
    events.extend(p.finish()?);
    Ok((events, p.reported_usage()))
}

fn answer(events: &[StreamEvent]) -> StreamedAnswer {
    let mut a = StreamedAnswer::new();
    for e in events {
        a.push(e.clone());
    }
    a
}

/// Split points to try: all of them for small bodies, about 300 spread over large ones.
fn split_points(len: usize) -> impl Iterator<Item = usize> {
    let step = if len <= 4096 { 1 } else { len / 300 };
    (0..=len).step_by(step.max(1))
}

/// Where the provider's end marker starts: no prefix shorter than this may be complete.
fn end_marker(kind: ProviderKind, body: &[u8]) -> usize {
    let markers: &[&[u8]] = match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => &[b"\"finish_reason\":\""],
        ProviderKind::OpenAiResponses => &[b"\"response.completed\"", b"\"response.incomplete\""],
        ProviderKind::Anthropic => &[b"message_stop"],
        // Gemini has no end marker: a finishReason (Vertex AI repeats STOP on every chunk) or
        // a blocked prompt is all there is.
        ProviderKind::Gemini => &[b"\"finishReason\"", b"\"blockReason\""],
        ProviderKind::Local => unreachable!(),
    };
    markers
        .iter()
        .filter_map(|m| body.windows(m.len()).position(|w| w == *m))
        .min()
        .unwrap_or(body.len())
}

fn replay(name: &str, case: Case) {
    let Some(dir) = streams_dir() else {
        eprintln!(
            "skipped {name}: no provider-streams folder ({}); set TESSERA_PROVIDER_STREAMS",
            case.file
        );
        return;
    };
    let path = dir.join(case.file);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body = frame(&data, case.framing, case.segment);
    let kind = case.kind;

    // The same result however the body is cut or framed.
    let whole = run(kind, &[&body]);
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(run(kind, &bytes), whole, "{name}: one byte at a time");
    for i in split_points(body.len()) {
        let (a, b) = body.split_at(i);
        assert_eq!(run(kind, &[a, b]), whole, "{name}: split at byte {i}");
    }
    for (variant, b) in [
        ("LF", to_lf(&body)),
        ("CRLF", to_crlf(&body)),
        ("keep-alive comments", with_comments(&body)),
    ] {
        let cut: Vec<&[u8]> = b.chunks(7).collect();
        assert_eq!(run(kind, &cut), whole, "{name}: {variant}");
    }

    // A stream cut before its end marker is never a complete answer.
    let marker = end_marker(kind, &body);
    for i in split_points(body.len()).filter(|&i| i < marker) {
        if let Ok((events, _)) = run(kind, &[&body[..i]]) {
            assert!(
                !answer(&events).is_complete(),
                "{name}: cut at byte {i} (before the end marker at {marker}) passed as complete"
            );
        }
    }

    let (events, reported) = whole.unwrap_or_else(|e| panic!("{name}: {e}"));
    if std::env::var_os("TESSERA_DUMP_STREAMS").is_some() {
        let a = answer(&events);
        eprintln!(
            "{name}: text {:?} ({} chars)\n  finish {:?} {:?}\n  usage {:?} reported {:?}\n  calls {:?}\n  cut off {:?}\n  error {:?}\n  complete {}",
            a.text,
            a.text.chars().count(),
            a.finish,
            a.finish_message,
            a.usage,
            reported,
            a.tool_calls,
            a.cut_off_tool_calls,
            a.error,
            a.is_complete()
        );
    }
    check(name, &case.expect, &events, reported);
}

fn check(name: &str, want: &Expect, events: &[StreamEvent], reported: ReportedUsage) {
    // The event order every parser promises.
    let last = events.last().expect("at least one event");
    assert!(
        matches!(
            last,
            StreamEvent::Finish { .. } | StreamEvent::ProviderError(_)
        ),
        "{name}: last event {last:?}"
    );
    let usages = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Usage(_)))
        .count();
    assert!(usages <= 1, "{name}: {usages} usage events");

    let a = answer(events);
    match &want.text {
        Text::Exact(t) => assert_eq!(a.text, *t, "{name}: text"),
        Text::Long {
            starts,
            ends,
            chars,
        } => {
            assert!(
                a.text.starts_with(starts),
                "{name}: text starts {:?}",
                &a.text[..a.text.len().min(80)]
            );
            assert!(a.text.ends_with(ends), "{name}: text ends");
            assert_eq!(a.text.chars().count(), *chars, "{name}: text length");
        }
    }
    match (&want.finish, &want.error) {
        (Some(f), None) => {
            assert_eq!(a.finish.as_ref(), Some(f), "{name}: finish reason");
            assert!(a.error.is_none(), "{name}: unexpected error {:?}", a.error);
        }
        (None, Some((kind, code, retryable))) => {
            let e = a
                .error
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: no error"));
            assert_eq!(
                (e.kind, e.code.as_deref(), e.retryable),
                (*kind, Some(*code), *retryable),
                "{name}: error {e:?}"
            );
            assert_eq!(a.finish, Some(FinishReason::Error), "{name}");
        }
        _ => panic!("{name}: expect either a finish or an error"),
    }
    assert_eq!(
        a.finish_message.as_deref(),
        want.finish_message,
        "{name}: finish message"
    );
    assert_eq!(a.usage, want.usage, "{name}: usage");
    let expected_reported = match want.usage {
        Some(u) => ReportedUsage::from(u),
        None => want.reported,
    };
    assert_eq!(reported, expected_reported, "{name}: reported usage");
    let calls: Vec<(&str, &str, &str)> = a
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(calls, want.tool_calls, "{name}: tool calls");
    assert_eq!(
        a.cut_off_tool_calls.len(),
        want.cut_off.len(),
        "{name}: cut-off calls"
    );
    for (c, (id, tool, args)) in a.cut_off_tool_calls.iter().zip(want.cut_off) {
        assert_eq!((c.id.as_str(), c.name.as_str()), (*id, *tool), "{name}");
        assert!(c.arguments.starts_with(args), "{name}: {:?}", c.arguments);
        assert!(
            serde_json::from_str::<Value>(&c.arguments).is_err(),
            "{name}: cut-off arguments parse"
        );
    }
    assert_eq!(a.is_complete(), want.complete, "{name}: complete");

    // What the chain does with an answer it cannot use.
    let failure = match (&a.error, &a.finish) {
        (Some(e), _) => Some(CallFailure::Stream(e.clone())),
        (None, Some(r)) if !a.is_complete() => Some(CallFailure::Unfinished(r.clone())),
        _ => None,
    };
    let decision =
        failure.map(
            |f| match decide(&RetryPolicy::default(), 1, Duration::ZERO, &f, 0.5) {
                RetryDecision::RetryAfter(_) => Decision::Retry,
                RetryDecision::FallBack => Decision::FallBack,
                RetryDecision::GiveUp(_) => Decision::GiveUp,
            },
        );
    assert_eq!(decision, want.decision, "{name}: retry decision");
}

macro_rules! recordings {
    ($($name:ident: $file:literal, $framing:ident, $kind:ident $(, segment $seg:literal)? => $expect:expr;)*) => {
        /// Every file with a case below, to find recordings added without one.
        const CASE_FILES: &[&str] = &[$($file),*];
        $(
            #[test]
            fn $name() {
                replay(stringify!($name), Case {
                    file: $file,
                    framing: Framing::$framing,
                    segment: None $(.or(Some($seg)))?,
                    kind: ProviderKind::$kind,
                    expect: $expect,
                });
            }
        )*
    };
}

#[test]
fn every_recording_has_a_case() {
    let Some(dir) = streams_dir() else {
        eprintln!("skipped every_recording_has_a_case: no provider-streams folder");
        return;
    };
    let mut missing = Vec::new();
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            let rel = f
                .strip_prefix(&dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if !CASE_FILES.contains(&rel.as_str()) {
                missing.push(rel);
            }
        }
    }
    assert!(missing.is_empty(), "recordings without a case: {missing:?}");
}

const fn usage(input: u64, output: u64) -> Option<Usage> {
    Some(Usage::new(input, output))
}

const START_ONLY: fn(u64) -> ReportedUsage = |input| ReportedUsage {
    input_tokens: Some(input),
    output_tokens: None,
};

recordings! {
    // OpenAI Chat Completions (api.openai.com, via openai-python and vercel/ai).
    openai_chat_text_usage: "openai/chat-text-usage.sse", Raw, OpenAi => Expect {
        text: Text::Exact("I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend checking a reliable weather website or a weather app."),
        usage: usage(14, 30),
        ..Expect::default()
    };
    openai_chat_text: "openai/chat-text.chunks.txt", ChunksOpenAi, OpenAi => Expect {
        text: Text::Long { starts: "**Holiday Name:** Harmony Day\n\n**Date:**", ends: "ed human experiences and mutual respect.", chars: 1724 },
        usage: usage(16, 300),
        ..Expect::default()
    };
    // max_tokens=1: the answer `{"` must never pass as complete (nor be cached).
    openai_chat_length: "openai/chat-length.sse", Raw, OpenAi => Expect {
        text: Text::Exact("{\""),
        finish: Some(FinishReason::Length),
        usage: usage(79, 1),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    // `refusal: ""` is no refusal: this is a length cut-off with no text at all.
    openai_chat_length_refusal_empty: "openai/chat-length-refusal-empty.sse", Raw, OpenAi => Expect {
        finish: Some(FinishReason::Length),
        usage: usage(17, 1),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    // finish_reason "stop", but the deltas are `refusal`: a refusal, not answer text.
    openai_chat_refusal: "openai/chat-refusal.sse", Raw, OpenAi => Expect {
        finish: Some(FinishReason::Refusal),
        finish_message: Some("I'm sorry, I can't assist with that request."),
        usage: usage(79, 11),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    openai_chat_tool_call: "openai/chat-tool-call.sse", Raw, OpenAi => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(44, 16),
        tool_calls: &[("call_4XzlGBLtUe9dy3GVNV4jhq7h", "get_weather", "{\"city\":\"New York City\"}")],
        ..Expect::default()
    };
    openai_chat_parallel_tools: "openai/chat-parallel-tools.sse", Raw, OpenAi => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(149, 60),
        tool_calls: &[
            ("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", "{\"city\": \"Edinburgh\", \"country\": \"GB\", \"units\": \"c\"}"),
            ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", "{\"ticker\": \"AAPL\", \"exchange\": \"NASDAQ\"}"),
        ],
        ..Expect::default()
    };
    // n=3: three interleaved choices; only choice 0 (temperature 65) is the answer.
    openai_chat_n3: "openai/chat-n3.sse", Raw, OpenAi => Expect {
        text: Text::Exact("{\"city\":\"San Francisco\",\"temperature\":65,\"units\":\"f\"}"),
        usage: usage(79, 42),
        ..Expect::default()
    };
    openai_chat_logprobs: "openai/chat-logprobs.sse", Raw, OpenAi => Expect {
        text: Text::Exact("Foo!"),
        usage: usage(9, 2),
        ..Expect::default()
    };
    openai_chat_long_json: "openai/chat-long-json.sse", Raw, OpenAi => Expect {
        text: Text::Long { starts: "\n  {\n    \"location\": \"San Francisco, CA\"", ends: "\"condition\": \"Cloudy\"\n      }\n    ]\n  }\n", chars: 608 },
        usage: usage(19, 177),
        ..Expect::default()
    };
    // Azure: a first chunk with no choices; 64 reasoning tokens already in the 78.
    openai_azure_model_router: "openai/azure-model-router.chunks.txt", ChunksOpenAi, OpenAi => Expect {
        text: Text::Exact("Capital of Denmark."),
        usage: usage(15, 78),
        ..Expect::default()
    };
    openai_chat_error_midstream: "openai/chat-error-midstream.composite.sse", Raw, OpenAi => Expect {
        text: Text::Exact("I'm unable to"),
        finish: None,
        error: Some((ErrorKind::Server, "server_error", true)),
        complete: false,
        decision: Some(Decision::Retry),
        ..Expect::default()
    };

    // OpenAI-compatible servers.
    compatible_deepseek_text_length: "compatible/deepseek-text-length.chunks.txt", ChunksOpenAi, OpenAiCompatible => Expect {
        text: Text::Long { starts: "## **Holiday Name:** Starlight Remembran", ends: " observe 15 minutes of silent looking at", chars: 1855 },
        finish: Some(FinishReason::Length),
        usage: usage(13, 400),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    // reasoning_content is not the answer; DeepSeek counts its 205 reasoning tokens in 219.
    compatible_deepseek_reasoning: "compatible/deepseek-reasoning.chunks.txt", ChunksOpenAi, OpenAiCompatible => Expect {
        text: Text::Exact("The word \"strawberry\" contains three \"r\"s."),
        usage: usage(18, 219),
        ..Expect::default()
    };
    compatible_groq_tool_call: "compatible/groq-tool-call.chunks.txt", ChunksOpenAi, OpenAiCompatible => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(210, 15),
        tool_calls: &[("tk85n1k4m", "weather", "{}")],
        ..Expect::default()
    };
    // xAI leaves its 340 reasoning tokens out of completion_tokens (2): output is 342.
    compatible_xai_text_reasoning: "compatible/xai-text-reasoning.chunks.txt", ChunksOpenAi, OpenAiCompatible => Expect {
        text: Text::Exact("Grok"),
        usage: usage(12, 342),
        ..Expect::default()
    };

    // OpenAI Responses.
    // insufficient_quota inside a 200 stream: the next provider, as for its HTTP 429.
    responses_error_insufficient_quota: "openai-responses/responses-error-insufficient-quota.chunks.txt", ChunksTyped, OpenAiResponses => Expect {
        finish: None,
        error: Some((ErrorKind::Quota, "insufficient_quota", false)),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    // "Request too large ... tokens per min": waiting cannot make it fit.
    responses_failed_rate_limit: "openai-responses/responses-failed-rate-limit.chunks.txt", ChunksTyped, OpenAiResponses => Expect {
        finish: None,
        error: Some((ErrorKind::RateLimit, "rate_limit_exceeded", false)),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    responses_reasoning_tool_call: "openai-responses/responses-reasoning-tool-call.chunks.txt", ChunksTyped, OpenAiResponses => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(84, 39),
        tool_calls: &[("call_wMUhph1s1bedjPJraJvGw62X", "lookupVerificationCode", "{\"label\":\"issue-11239\"}")],
        ..Expect::default()
    };
    responses_multi_step_0: "openai-responses/responses-multi-step.chunks.txt", ChunksTyped, OpenAiResponses, segment 0 => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(134, 28),
        tool_calls: &[("call_AB6AaRZ1FYZB2RwS6A5vbdqn", "calculator", "{\"a\":12,\"b\":7,\"op\":\"add\"}")],
        ..Expect::default()
    };
    responses_multi_step_1: "openai-responses/responses-multi-step.chunks.txt", ChunksTyped, OpenAiResponses, segment 1 => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(221, 26),
        tool_calls: &[("call_Q6pW65MUgW9vF59BmItYGos3", "calculator", "{\"a\":19,\"b\":3,\"op\":\"multiply\"}")],
        ..Expect::default()
    };
    responses_multi_step_2: "openai-responses/responses-multi-step.chunks.txt", ChunksTyped, OpenAiResponses, segment 2 => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(260, 26),
        tool_calls: &[("call_Zl5vIMnD7dVAjgU6FkhmiCZh", "calculator", "{\"a\":57,\"b\":10,\"op\":\"multiply\"}")],
        ..Expect::default()
    };
    responses_multi_step_3: "openai-responses/responses-multi-step.chunks.txt", ChunksTyped, OpenAiResponses, segment 3 => Expect {
        text: Text::Exact("The final result is **570**."),
        usage: usage(299, 12),
        ..Expect::default()
    };
    // The "commentary" message ("Got it — I'll quickly check…") is not the answer; the
    // final answer's deltas were trimmed by vercel, its output_text.done has it whole.
    responses_phase_commentary: "openai-responses/responses-phase-commentary.chunks.txt", ChunksTyped, OpenAiResponses => Expect {
        text: Text::Long { starts: "Here are a few **AI headlines for today ", ends: "tor-grade morning brief with timestamps.", chars: 1485 },
        usage: usage(7112, 463),
        ..Expect::default()
    };

    // Anthropic Messages.
    anthropic_basic: "anthropic/basic.sse", Raw, Anthropic => Expect {
        text: Text::Exact("Hello there!"),
        usage: usage(11, 6),
        ..Expect::default()
    };
    anthropic_tool_use: "anthropic/tool-use.sse", Raw, Anthropic => Expect {
        text: Text::Exact("I'll check the current weather in Paris for you."),
        finish: Some(FinishReason::ToolCalls),
        usage: usage(377, 65),
        tool_calls: &[("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", "{\"location\": \"Paris\"}")],
        ..Expect::default()
    };
    anthropic_refusal: "anthropic/refusal.sse", Raw, Anthropic => Expect {
        finish: Some(FinishReason::Refusal),
        finish_message: Some("This request was refused due to policy."),
        usage: usage(20, 0),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    anthropic_refusal_no_block: "anthropic/refusal-no-block.chunks.txt", ChunksTyped, Anthropic => Expect {
        finish: Some(FinishReason::Refusal),
        finish_message: Some("This request triggered restrictions on violative cyber content and was blocked under Anthropic's Usage Policy."),
        usage: usage(18, 5),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    // max_tokens inside the tool input: no content_block_stop, the call is cut off.
    anthropic_max_tokens_partial_tool: "anthropic/max-tokens-partial-tool.sse", Raw, Anthropic => Expect {
        text: Text::Exact("I'll create a comprehensive tax guide for someone with multiple W2s and save it in a file called taxes.txt. Let me do that for you now."),
        finish: Some(FinishReason::Length),
        usage: usage(450, 124),
        cut_off: &[("toolu_01EKqbqmZrGRXy18eN7m9kvY", "make_file", "{\"filename\": \"taxes.txt\", \"lines_of_text\": [\n")],
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    // A server_tool_use block with input_json_delta: skipped, not a protocol error.
    anthropic_server_tool_use: "anthropic/server-tool-use.sse", Raw, Anthropic => Expect {
        text: Text::Exact("Let me search for that."),
        usage: usage(42, 40),
        ..Expect::default()
    };
    anthropic_web_search: "anthropic/web-search.chunks.txt", ChunksTyped, Anthropic => Expect {
        text: Text::Long { starts: "Based on my search results, here are the", ends: "ir first international retail expansion.", chars: 2402 },
        // message_delta's input count (search results included) replaces message_start's 2037.
        usage: usage(15665, 795),
        ..Expect::default()
    };
    anthropic_text_cache_usage: "anthropic/text-cache-usage.chunks.txt", ChunksTyped, Anthropic => Expect {
        text: Text::Exact("Hello! I'm doing well, thank you for asking. How are you doing today? Is there anything I can help you with?"),
        usage: usage(12, 30),
        ..Expect::default()
    };
    anthropic_message_delta_input_tokens: "anthropic/message-delta-input-tokens.chunks.txt", ChunksTyped, Anthropic => Expect {
        text: Text::Exact("pong"),
        usage: usage(61, 2),
        ..Expect::default()
    };
    anthropic_tool_no_args: "anthropic/tool-no-args.chunks.txt", ChunksTyped, Anthropic => Expect {
        text: Text::Exact("I'll update the issue list for you."),
        finish: Some(FinishReason::ToolCalls),
        usage: usage(565, 48),
        tool_calls: &[("toolu_01QE1WLsSVp5hy5Q3GmGTmjP", "updateIssueList", "{}")],
        ..Expect::default()
    };
    anthropic_thinking: "anthropic/thinking.chunks.txt", ChunksTyped, Anthropic => Expect {
        text: Text::Exact("925 ÷ 5 = 185"),
        usage: usage(69, 53),
        ..Expect::default()
    };
    // Overloaded after a 200: message_start's 11 input tokens are what was reported; the
    // output was never counted, so only it is left to estimate.
    anthropic_overloaded_midstream: "anthropic/overloaded-midstream.composite.sse", Raw, Anthropic => Expect {
        text: Text::Exact("Hello"),
        finish: None,
        reported: START_ONLY(11),
        error: Some((ErrorKind::Overloaded, "overloaded_error", true)),
        complete: false,
        decision: Some(Decision::Retry),
        ..Expect::default()
    };

    // Gemini Developer API and Vertex AI.
    gemini_basic_short: "gemini/basic-short.sse", Raw, Gemini => Expect {
        text: Text::Exact("The capital of Wyoming is **Cheyenne**.\n"),
        usage: usage(7, 10),
        ..Expect::default()
    };
    gemini_basic_long: "gemini/basic-long.sse", Raw, Gemini => Expect {
        text: Text::Long { starts: "Okay, let's dive into the world of cats ", ends: "ining techniques, or health conditions.\n", chars: 8845 },
        usage: usage(10, 1996),
        ..Expect::default()
    };
    gemini_prompt_blocked_safety: "gemini/prompt-blocked-safety.sse", Raw, Gemini => Expect {
        finish: Some(FinishReason::ContentFilter),
        finish_message: Some("prompt blocked (SAFETY)"),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    gemini_recitation: "gemini/recitation.sse", Raw, Gemini => Expect {
        text: Text::Exact("text1text2text3text4text5text6text7text8"),
        finish: Some(FinishReason::ContentFilter),
        usage: usage(9, 261),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    // Thought summaries are not the answer; their 540 tokens are output.
    gemini_thinking_thought_summary: "gemini/thinking-thought-summary.sse", Raw, Gemini => Expect {
        text: Text::Long { starts: "The sky is blue because tiny gas molecul", ends: " making the sky appear blue to our eyes.", chars: 263 },
        usage: usage(10, 588),
        ..Expect::default()
    };
    gemini_thinking_function_call: "gemini/thinking-function-call.sse", Raw, Gemini => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(38, 174),
        tool_calls: &[("call_1", "now", "{}")],
        ..Expect::default()
    };
    // executableCode / codeExecutionResult parts are not text; the 243 tool-use prompt
    // tokens are input (21 + 243), thoughts output (126 + 95).
    gemini_code_execution: "gemini/code-execution.sse", Raw, Gemini => Expect {
        text: Text::Long { starts: "To find the sum of the first 5 prime num", ends: " sum of the first 5 prime numbers is 28.", chars: 228 },
        usage: usage(264, 221),
        ..Expect::default()
    };
    // The image part is not text.
    gemini_empty_parts: "gemini/empty-parts.sse", Raw, Gemini => Expect {
        text: Text::Exact("Here's a cute cartoon kitten playing with a ball of yarn for you! "),
        usage: usage(16, 1307),
        ..Expect::default()
    };
    gemini_no_content_parts: "gemini/no-content-parts.sse", Raw, Gemini => Expect {
        text: Text::Long { starts: "I will generate a 3D rendering of a whim", ends: "e under a bright, slightly cloudy sky.\n\n", chars: 419 },
        usage: usage(34, 1370),
        ..Expect::default()
    };
    gemini_finish_message: "gemini/finish-message.sse", Raw, Gemini => Expect {
        text: Text::Exact("Hello world!"),
        finish_message: Some("Finished successfully"),
        ..Expect::default()
    };
    gemini_vertex_utf8: "gemini/vertex-utf8.sse", Raw, Gemini => Expect {
        text: Text::Long { starts: "秋风瑟瑟，叶落纷纷，\n西风残照，寒霜渐浓。\n枫叶红了，菊花黄了，\n秋雨绵绵，秋意", ends: "醉其中，流连忘返。\n让我们一起欣赏秋天的美景，\n感受秋天的气息，领悟秋天的哲理。", chars: 225 },
        ..Expect::default()
    };
    gemini_vertex_finish_safety: "gemini/vertex-finish-safety.sse", Raw, Gemini => Expect {
        text: Text::Exact("<redacted>"),
        finish: Some(FinishReason::ContentFilter),
        usage: usage(10, 66),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    // STOP on every chunk, then a bare JSON error object after the data lines.
    gemini_vertex_error_mid_stream: "gemini/vertex-error-mid-stream.sse", Raw, Gemini => Expect {
        text: Text::Exact("First Second "),
        finish: None,
        error: Some((ErrorKind::Server, "CANCELLED", true)),
        complete: false,
        decision: Some(Decision::Retry),
        ..Expect::default()
    };
    gemini_vertex_unknown_finish_enum: "gemini/vertex-unknown-finish-enum.sse", Raw, Gemini => Expect {
        text: Text::Long { starts: "**Cats:**\n\n- **Physical Characteristics:", ends: "ng any potential health issues early on.", chars: 3285 },
        finish: Some(FinishReason::Unknown("FAKE_ENUM".into())),
        complete: false,
        decision: Some(Decision::FallBack),
        ..Expect::default()
    };
    gemini_text_gemini3: "gemini/text-gemini3.chunks.txt", ChunksGemini, Gemini => Expect {
        text: Text::Exact("There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y"),
        usage: usage(9, 208),
        ..Expect::default()
    };
    gemini_tool_call_gemini3: "gemini/tool-call-gemini3.chunks.txt", ChunksGemini, Gemini => Expect {
        finish: Some(FinishReason::ToolCalls),
        usage: usage(29, 60),
        tool_calls: &[("call_1", "weather", "{\"location\":\"San Francisco\"}")],
        ..Expect::default()
    };
}
