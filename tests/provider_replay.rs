//! Real provider streams through the real host (issue 20): recordings from
//! `../shared/provider-streams` (the providers' own SDK test fixtures, see its SOURCES.md) are
//! served by `ProviderDouble` — the local **test double** of the providers — as `Reply::Raw`,
//! and the chat component must honour why each model stopped: a cut-off or refused answer is
//! never cached or shown as complete, an in-stream quota error falls back to the next
//! provider, server-tool blocks are accepted, and usage is what the provider reported.
//!
//! The recordings are read from the shared folder, never copied here; a clone without it
//! prints the skipped cases by name and passes.
//!
//! The local answer is turned off on this host (`llm_local_fallback = false`), so a chain
//! that ends without a complete answer fails (or shows a cut-off answer as truncated) instead
//! of hiding behind the extractive answer.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, ProviderDouble, Reply, TestDb, TestHost};

static SERIAL: Mutex<()> = Mutex::new(());

/// The cases below, by name, for the skip notice.
const CASES: &[&str] = &[
    "anthropic server_tool_use stream is accepted and never trips the breaker",
    "openai length cut-off falls back and is never cached",
    "openai length cut-off with nothing else to answer is shown truncated, the message ends `length`, nothing is cached, asked again it is not served from cache",
    "openai refusal falls back, is recorded as refused and never cached",
    "gemini prompt blocked for safety is a content filter stop, not an empty completed answer",
    "responses insufficient_quota inside a 200 stream falls back to the next provider",
    "HTTP 429 insufficient_quota falls back at once instead of retrying",
    "anthropic usage is recorded as reported, also for a call overloaded mid-stream",
    "every other recording completes on its provider with the reported usage, or falls back",
    "openai length cut-off is retried once on the same model with a larger output budget where the model allows one",
];

/// What a recording served as the pinned provider's answer must give.
enum Then {
    /// The pinned provider answers: the step's text starts so, usage as reported (`None`:
    /// the recording reports none, so it is estimated).
    Answers(&'static str, Option<(u64, u64)>),
    /// Not usable: the call is recorded `incomplete` with this finish reason, and another
    /// provider answers.
    FallsBack(&'static str),
    /// An error inside the stream that another provider may not have: recorded as a
    /// `provider_error`, not retried, and another provider answers.
    ErrorFallsBack,
    /// A transient error inside the stream (server, overload): recorded as a
    /// `provider_error`, and the same provider, asked again, answers.
    Retried,
}

/// (recording, provider it is served as, expected result). With the named cases above, every
/// recording of the folder but one is replayed through the host: `responses-multi-step`
/// holds four responses of an agent loop in one file (three tool-call turns, then text),
/// which only the parser tests (crates/gateway/tests/provider_streams.rs) split and replay.
const MORE: &[(&str, &str, Then)] = &[
    (
        "openai/chat-text-usage.sse",
        "openai",
        Then::Answers(
            "I'm unable to provide real-time weather updates.",
            Some((14, 30)),
        ),
    ),
    (
        "openai/chat-text.chunks.txt",
        "openai",
        Then::Answers("**Holiday Name:** Harmony Day", Some((16, 300))),
    ),
    // n=3: only choice 0 is the answer.
    (
        "openai/chat-n3.sse",
        "openai",
        Then::Answers(
            "{\"city\":\"San Francisco\",\"temperature\":65,",
            Some((79, 42)),
        ),
    ),
    (
        "openai/chat-logprobs.sse",
        "openai",
        Then::Answers("Foo!", Some((9, 2))),
    ),
    (
        "openai/chat-long-json.sse",
        "openai",
        Then::Answers(
            "\n  {\n    \"location\": \"San Francisco, CA\"",
            Some((19, 177)),
        ),
    ),
    (
        "openai/azure-model-router.chunks.txt",
        "openai",
        Then::Answers("Capital of Denmark.", Some((15, 78))),
    ),
    (
        "openai/chat-length-refusal-empty.sse",
        "openai",
        Then::FallsBack("length"),
    ),
    (
        "openai/chat-tool-call.sse",
        "openai",
        Then::FallsBack("tool_calls"),
    ),
    (
        "openai/chat-error-midstream.composite.sse",
        "openai",
        Then::Retried,
    ),
    (
        "openai/chat-parallel-tools.sse",
        "openai",
        Then::FallsBack("tool_calls"),
    ),
    // OpenAI-compatible servers, served as the Chat Completions provider.
    (
        "compatible/deepseek-reasoning.chunks.txt",
        "openai",
        Then::Answers(
            "The word \"strawberry\" contains three \"r\"s.",
            Some((18, 219)),
        ),
    ),
    // xAI leaves reasoning tokens out of completion_tokens: 2 + 340.
    (
        "compatible/xai-text-reasoning.chunks.txt",
        "openai",
        Then::Answers("Grok", Some((12, 342))),
    ),
    (
        "compatible/deepseek-text-length.chunks.txt",
        "openai",
        Then::FallsBack("length"),
    ),
    (
        "compatible/groq-tool-call.chunks.txt",
        "openai",
        Then::FallsBack("tool_calls"),
    ),
    // The "commentary" preamble is not glued to the answer.
    (
        "openai-responses/responses-phase-commentary.chunks.txt",
        "openai-responses",
        Then::Answers("Here are a few **AI headlines for today", Some((7112, 463))),
    ),
    (
        "openai-responses/responses-reasoning-tool-call.chunks.txt",
        "openai-responses",
        Then::FallsBack("tool_calls"),
    ),
    // "Request too large … tokens per min": waiting cannot make it fit.
    (
        "openai-responses/responses-failed-rate-limit.chunks.txt",
        "openai-responses",
        Then::ErrorFallsBack,
    ),
    (
        "anthropic/web-search.chunks.txt",
        "anthropic",
        Then::Answers(
            "Based on my search results, here are the",
            Some((15665, 795)),
        ),
    ),
    (
        "anthropic/text-cache-usage.chunks.txt",
        "anthropic",
        Then::Answers(
            "Hello! I'm doing well, thank you for asking.",
            Some((12, 30)),
        ),
    ),
    (
        "anthropic/message-delta-input-tokens.chunks.txt",
        "anthropic",
        Then::Answers("pong", Some((61, 2))),
    ),
    (
        "anthropic/thinking.chunks.txt",
        "anthropic",
        Then::Answers("925 ÷ 5 = 185", Some((69, 53))),
    ),
    (
        "anthropic/refusal.sse",
        "anthropic",
        Then::FallsBack("refusal"),
    ),
    (
        "anthropic/refusal-no-block.chunks.txt",
        "anthropic",
        Then::FallsBack("refusal"),
    ),
    (
        "anthropic/max-tokens-partial-tool.sse",
        "anthropic",
        Then::FallsBack("length"),
    ),
    (
        "anthropic/tool-use.sse",
        "anthropic",
        Then::FallsBack("tool_calls"),
    ),
    (
        "anthropic/tool-no-args.chunks.txt",
        "anthropic",
        Then::FallsBack("tool_calls"),
    ),
    (
        "gemini/basic-short.sse",
        "gemini",
        Then::Answers("The capital of Wyoming is **Cheyenne**.", Some((7, 10))),
    ),
    (
        "gemini/basic-long.sse",
        "gemini",
        Then::Answers("Okay, let's dive into the world of cats ", Some((10, 1996))),
    ),
    (
        "gemini/thinking-thought-summary.sse",
        "gemini",
        Then::Answers("The sky is blue because tiny gas molecul", Some((10, 588))),
    ),
    (
        "gemini/code-execution.sse",
        "gemini",
        Then::Answers("To find the sum of the first 5 prime num", Some((264, 221))),
    ),
    (
        "gemini/empty-parts.sse",
        "gemini",
        Then::Answers(
            "Here's a cute cartoon kitten playing with a ball of yarn for you!",
            Some((16, 1307)),
        ),
    ),
    (
        "gemini/no-content-parts.sse",
        "gemini",
        Then::Answers("I will generate a 3D rendering of a whim", Some((34, 1370))),
    ),
    (
        "gemini/finish-message.sse",
        "gemini",
        Then::Answers("Hello world!", None),
    ),
    (
        "gemini/vertex-utf8.sse",
        "gemini",
        Then::Answers("秋风瑟瑟，叶落纷纷，", None),
    ),
    (
        "gemini/text-gemini3.chunks.txt",
        "gemini",
        Then::Answers("There are **3** \"r\"s in strawberry.", Some((9, 208))),
    ),
    (
        "gemini/recitation.sse",
        "gemini",
        Then::FallsBack("content_filter"),
    ),
    (
        "gemini/vertex-finish-safety.sse",
        "gemini",
        Then::FallsBack("content_filter"),
    ),
    (
        "gemini/vertex-unknown-finish-enum.sse",
        "gemini",
        Then::FallsBack("unknown"),
    ),
    (
        "gemini/thinking-function-call.sse",
        "gemini",
        Then::FallsBack("tool_calls"),
    ),
    (
        "gemini/tool-call-gemini3.chunks.txt",
        "gemini",
        Then::FallsBack("tool_calls"),
    ),
    // A bare JSON error after the data lines: not a normal stop.
    (
        "gemini/vertex-error-mid-stream.sse",
        "gemini",
        Then::Retried,
    ),
];

fn streams_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TESSERA_PROVIDER_STREAMS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tessera_e2e::root().join("../shared/provider-streams"));
    dir.join("SOURCES.md").is_file().then_some(dir)
}

/// A recording as the provider sends it: `.sse` files byte for byte; `.chunks.txt` files (one
/// JSON event per line) framed as `frame.py` beside them does (`event: <type>` for Anthropic
/// and Responses, `data:` lines and `[DONE]` for Chat Completions).
fn recording(dir: &std::path::Path, file: &str) -> Vec<u8> {
    let data = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    if !file.ends_with(".chunks.txt") {
        return data;
    }
    let text = String::from_utf8(data).expect("chunk files are UTF-8");
    let typed = file.starts_with("anthropic/") || file.starts_with("openai-responses/");
    let gemini = file.starts_with("gemini/");
    let mut out = String::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        if typed {
            let v: Value = serde_json::from_str(l).expect("one JSON event per line");
            out += &format!("event: {}\ndata: {l}\n\n", v["type"].as_str().unwrap_or(""));
        } else if gemini {
            out += &format!("data: {l}\r\n\r\n");
        } else {
            out += &format!("data: {l}\n\n");
        }
    }
    if !typed && !gemini {
        out += "data: [DONE]\n\n";
    }
    out.into_bytes()
}

fn post(host: &TestHost, path: &str, body: &Value, tenant: &str) -> tessera_e2e::Response {
    Request::new("POST", path)
        .header("x-tenant-id", tenant)
        .header("x-user-id", "u1")
        .json(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// A finished turn's SSE stream, parsed.
struct Stream {
    events: Vec<(String, Value)>,
    raw: String,
}

impl Stream {
    fn of(&self, kind: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|(e, _)| e == kind)
            .map(|(_, v)| v)
            .collect()
    }

    fn finish(&self) -> &Value {
        self.of("finish")
            .pop()
            .unwrap_or_else(|| panic!("no finish event in {}", self.raw))
    }

    fn step(&self, kind: &str) -> &Value {
        self.of("step-finish")
            .into_iter()
            .find(|v| v["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} step in {}", self.raw))
    }

    /// The text streamed for the step numbered `n`, resets applied.
    fn text_of(&self, n: &Value) -> String {
        let mut text = String::new();
        for (e, v) in &self.events {
            match e.as_str() {
                "text-delta" if v["step"] == *n => text.push_str(v["delta"].as_str().unwrap()),
                "error" if v["step"] == *n && v["reset"] == true => text.clear(),
                _ => {}
            }
        }
        text
    }
}

fn ask(host: &TestHost, tenant: &str, question: &str, provider: &str) -> Stream {
    let r = post(
        host,
        "/v1/chat/conversations",
        &json!({"title": "replay"}),
        tenant,
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    let conv = r.json()["id"].as_str().unwrap().to_string();
    let r = post(
        host,
        &format!("/v1/chat/conversations/{conv}/messages"),
        &json!({"content": question, "model": provider}),
        tenant,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let text = r.text();
    let mut events = Vec::new();
    let mut done = false;
    for block in text.split("\n\n") {
        let mut name = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
        if data == "[DONE]" {
            done = true;
        } else if let Some(n) = name {
            let v: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{data}: {e}"));
            events.push((n, v));
        }
    }
    let raw: String = text
        .split("\n\n")
        .filter(|b| !b.starts_with("event: text-delta"))
        .collect::<Vec<_>>()
        .join("\n\n");
    assert!(done, "the stream ends with [DONE]: {raw}");
    Stream {
        events,
        raw: raw.chars().take(12_000).collect(),
    }
}

/// The newest implementation-step `llm_calls` rows of `provider` (up to `n`), newest first, as
/// `status:finish_reason:input:output:estimated:attempt:http_status`.
fn calls(db: &TestDb, provider: &str, n: usize) -> Vec<String> {
    db.query(&format!(
        "SELECT status || ':' || coalesce(finish_reason, '-') || ':' || input_tokens || ':' || output_tokens
            || ':' || usage_estimated || ':' || attempt || ':' || coalesce(http_status::text, '-')
         FROM llm_calls WHERE provider = '{provider}' AND step_kind = 'implementation'
         ORDER BY id DESC LIMIT {n}"
    ))
    .unwrap()
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).unwrap()[0].get::<_, i64>(0)
}

fn error_of(db: &TestDb, provider: &str) -> String {
    db.query(&format!(
        "SELECT coalesce(error, '') FROM llm_calls WHERE provider = '{provider}' ORDER BY id DESC LIMIT 1"
    ))
    .unwrap()[0]
        .get::<_, String>(0)
}

#[test]
fn real_provider_streams_through_the_host() {
    let Some(dir) = streams_dir() else {
        for case in CASES {
            eprintln!("[provider_replay] skipped (no ../shared/provider-streams): {case}");
        }
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let double = ProviderDouble::start();
    let db = TestDb::new();
    let key = "test-platform-key".to_string();
    let mut cmd = HostCommand::with_manifest_file(&db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port());
    for (k, v) in [
        ("SPIN_VARIABLE_LLM_CATALOG", double.catalog_json()),
        ("SPIN_VARIABLE_LLM_LOCAL_HOST", "127.0.0.1:*".into()),
        ("SPIN_VARIABLE_OPENAI_API_KEY", key.clone()),
        ("SPIN_VARIABLE_ANTHROPIC_API_KEY", key.clone()),
        ("SPIN_VARIABLE_GEMINI_API_KEY", key.clone()),
        ("SPIN_VARIABLE_LLM_LOCAL_FALLBACK", "false".into()),
        ("SPIN_VARIABLE_LLM_CALL_TIMEOUT_MS", "3000".into()),
        ("SPIN_VARIABLE_LLM_RETRY_BASE_MS", "20".into()),
        ("SPIN_VARIABLE_LLM_MAX_ATTEMPTS", "2".into()),
        ("SPIN_VARIABLE_BREAKER_FAILURE_THRESHOLD", "2".into()),
        ("SPIN_VARIABLE_BREAKER_COOLDOWN_MS", "60000".into()),
    ] {
        cmd = cmd.env(k, v);
    }
    let host = cmd.start();
    // No knowledge base: the recordings' answers cite nothing, and with sources the
    // validation would send every draft to a paid synthesis (eating the next scripted reply).
    // With none, a one-task turn makes exactly one paid call, the implementation step's.
    let t = "replay";
    let raw = |file: &str| Reply::Raw(recording(&dir, file));
    // No cache row of a paid step holds an answer that is not complete.
    let never_cached = |provider: &str, text_like: &str| {
        let rows = count(
            &db,
            &format!(
                "SELECT count(*) FROM response_cache WHERE (step_kind = 'implementation' AND provider = '{provider}')
                    OR value->>'text' LIKE '{text_like}'"
            ),
        );
        assert_eq!(
            rows, 0,
            "no cache row for the incomplete answer of {provider}"
        );
    };
    // Each check starts with no queued replies, no cached answers and closed breakers.
    let fresh = || {
        double.clear_scripts();
        db.execute("DELETE FROM response_cache");
        db.execute("DELETE FROM provider_breakers");
    };
    let mut c = Checks::new("provider_replay");

    c.check(CASES[0], || {
        fresh();
        double.script(
            "anthropic",
            [
                raw("anthropic/server-tool-use.sse"),
                raw("anthropic/server-tool-use.sse"),
            ],
        );
        for q in ["What is WACC?", "What is free cash flow?"] {
            let s = ask(&host, t, q, "anthropic");
            assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
            let step = s.step("implementation");
            assert_eq!(step["provider"], "anthropic", "{}", s.raw);
            assert_eq!(step["finish_reason"], "complete", "{}", s.raw);
            assert_eq!(
                (
                    step["input_tokens"].as_u64(),
                    step["output_tokens"].as_u64()
                ),
                (Some(42), Some(40)),
                "usage as the recording reports it: {step}"
            );
            assert_eq!(
                s.text_of(&step["step"]),
                "Let me search for that.",
                "{}",
                s.raw
            );
            assert_eq!(
                calls(&db, "anthropic", 1),
                ["ok:complete:42:40:false:1:200"]
            );
        }
        // Two such turns opened the breaker (threshold 2) before: they are successes now.
        let state: String = db
            .query("SELECT state->>'state' FROM provider_breakers WHERE provider = 'anthropic'")
            .unwrap()
            .first()
            .map_or("closed".into(), |r| r.get(0));
        assert_eq!(state, "closed");
        let s = ask(
            &host,
            t,
            "How is the cost of equity used in WACC?",
            "anthropic",
        );
        assert_eq!(
            s.step("implementation")["provider"],
            "anthropic",
            "{}",
            s.raw
        );
    });

    c.check(CASES[1], || {
        fresh();
        double.script("openai", [raw("openai/chat-length.sse")]);
        let before = double.hits("openai");
        let q = "What does WACC stand for?";
        let s = ask(&host, t, q, "openai");
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        let step = s.step("implementation");
        assert_ne!(step["provider"], "openai", "fell back: {}", s.raw);
        assert_ne!(step["provider"], "local", "{}", s.raw);
        assert_eq!(step["finish_reason"], "complete", "{}", s.raw);
        assert!(
            s.of("error").iter().any(|e| e["code"] == "incomplete"
                && e["reset"] == true
                && e["message"].as_str().unwrap().contains("output limit")),
            "{}",
            s.raw
        );
        assert!(!s.finish()["text"].as_str().unwrap().starts_with("{\""));
        assert_eq!(s.finish()["finish_reason"], "complete", "{}", s.raw);
        assert_eq!(
            double.hits("openai") - before,
            1,
            "a cut-off is not retried as is"
        );
        let rows = calls(&db, "openai", 5);
        assert!(
            rows.contains(&"incomplete:length:79:1:false:1:200".to_string()),
            "{rows:?}"
        );
        never_cached("openai", "{\"%");
        // Asked again, the cut-off answer is not served from anywhere.
        let again = ask(&host, t, q, "openai");
        assert!(
            !again.finish()["text"].as_str().unwrap().starts_with("{\""),
            "{}",
            again.raw
        );
    });

    c.check(CASES[2], || {
        fresh();
        double.script("openai", [raw("openai/chat-length.sse")]);
        // Every other provider rejects the request (HTTP 400: the chain gives up).
        for p in ["openai-responses", "anthropic", "gemini"] {
            double.script(p, [Reply::status(400)]);
        }
        let s = ask(&host, t, "What is the WACC formula?", "openai");
        let step = s.step("implementation");
        assert_eq!(step["provider"], "openai", "{}", s.raw);
        assert_eq!(step["finish_reason"], "length", "{}", s.raw);
        assert!(
            s.of("error").iter().any(|e| e["code"] == "truncated"),
            "{}",
            s.raw
        );
        assert_eq!(s.text_of(&step["step"]), "{\"", "the cut-off text, resent after the reset");
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM steps WHERE kind = 'implementation' AND finish_reason = 'length'"
            ),
            1
        );
        never_cached("openai", "{\"%");
        // The message is not reported as a complete answer: the turn ran to its end, but its
        // answer is the cut-off one.
        let message_finish = |s: &Stream| {
            let id = s.finish()["message_id"].as_str().unwrap().to_string();
            db.query(&format!(
                "SELECT status || ':' || coalesce(finish_reason, '-') FROM messages WHERE id = '{id}'"
            ))
            .unwrap()[0]
                .get::<_, String>(0)
        };
        let finish = s.finish();
        assert_eq!(finish["status"], "completed", "{}", s.raw);
        assert_eq!(finish["finish_reason"], "length", "{}", s.raw);
        assert!(finish["text"].as_str().unwrap().starts_with("{\""), "{}", s.raw);
        assert_eq!(message_finish(&s), "completed:length");
        assert_eq!(count(&db, "SELECT count(*) FROM response_cache"), 0, "nothing is cached");
        // The same question again is not answered from the cache: the provider is asked again.
        double.clear_scripts();
        double.script("openai", [raw("openai/chat-length.sse")]);
        for p in ["openai-responses", "anthropic", "gemini"] {
            double.script(p, [Reply::status(400)]);
        }
        let before = double.hits("openai");
        let again = ask(&host, t, "What is the WACC formula?", "openai");
        let step = again.step("implementation");
        assert_eq!(step["cache"], "miss", "{}", again.raw);
        assert_eq!(step["finish_reason"], "length", "{}", again.raw);
        assert_eq!(double.hits("openai") - before, 1, "asked the provider again");
        assert_eq!(again.finish()["finish_reason"], "length", "{}", again.raw);
        assert_eq!(message_finish(&again), "completed:length");
        let id = again.finish()["message_id"].as_str().unwrap().to_string();
        assert_eq!(
            count(
                &db,
                &format!("SELECT count(*) FROM llm_calls WHERE message_id = '{id}' AND cache_hit <> 'miss'")
            ),
            0,
            "no call was answered from the cache"
        );
        assert_eq!(count(&db, "SELECT count(*) FROM response_cache"), 0, "still nothing cached");
        double.clear_scripts();
    });

    c.check(CASES[3], || {
        fresh();
        double.script("openai", [raw("openai/chat-refusal.sse")]);
        let s = ask(&host, t, "How do you compute free cash flow?", "openai");
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        let step = s.step("implementation");
        assert_ne!(step["provider"], "openai", "{}", s.raw);
        assert_eq!(step["finish_reason"], "complete", "{}", s.raw);
        assert_eq!(
            calls(&db, "openai", 1),
            ["incomplete:refusal:79:11:false:1:200"]
        );
        assert!(
            error_of(&db, "openai").contains("I'm sorry, I can't assist with that request."),
            "{}",
            error_of(&db, "openai")
        );
        never_cached("openai", "%can''t assist%");
    });

    c.check(CASES[4], || {
        fresh();
        double.script("gemini", [raw("gemini/prompt-blocked-safety.sse")]);
        let before = double.hits("gemini");
        let s = ask(
            &host,
            t,
            "What is the weighted average cost of capital?",
            "gemini",
        );
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        let step = s.step("implementation");
        assert_ne!(step["provider"], "gemini", "{}", s.raw);
        assert!(!s.finish()["text"].as_str().unwrap().trim().is_empty());
        assert_eq!(double.hits("gemini") - before, 1);
        let rows = calls(&db, "gemini", 1);
        assert!(
            rows[0].starts_with("incomplete:content_filter:"),
            "{rows:?}"
        );
        never_cached("gemini", "");
    });

    c.check(CASES[5], || {
        fresh();
        double.script(
            "openai-responses",
            [raw(
                "openai-responses/responses-error-insufficient-quota.chunks.txt",
            )],
        );
        let before = double.hits("openai-responses");
        let s = ask(
            &host,
            t,
            "Why is free cash flow useful?",
            "openai-responses",
        );
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        let step = s.step("implementation");
        assert_ne!(step["provider"], "openai-responses", "{}", s.raw);
        assert_ne!(step["provider"], "local", "{}", s.raw);
        assert_eq!(double.hits("openai-responses") - before, 1, "not retried");
        // Refused before any output and nothing reported: nothing billed.
        assert_eq!(
            calls(&db, "openai-responses", 1),
            ["provider_error:-:0:0:false:1:-"]
        );
        assert!(error_of(&db, "openai-responses").contains("quota"));
        assert!(
            s.of("error").iter().any(|e| e["message"]
                .as_str()
                .unwrap()
                .contains("trying the next provider")),
            "{}",
            s.raw
        );
    });

    c.check(CASES[6], || {
        fresh();
        let body = json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}).to_string();
        double.script(
            "openai",
            [Reply::Status {
                status: 429,
                headers: vec![],
                body,
            }],
        );
        let before = double.hits("openai");
        let s = ask(&host, t, "What is a discount rate in WACC terms?", "openai");
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        assert_ne!(s.step("implementation")["provider"], "openai", "{}", s.raw);
        assert_eq!(double.hits("openai") - before, 1, "no retry of a used-up quota");
        assert_eq!(calls(&db, "openai", 1), ["provider_error:-:0:0:false:1:429"]);
    });

    c.check(CASES[7], || {
        fresh();
        double.script(
            "anthropic",
            [
                raw("anthropic/overloaded-midstream.composite.sse"),
                raw("anthropic/basic.sse"),
            ],
        );
        let s = ask(&host, t, "Explain free cash flow to equity.", "anthropic");
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        let step = s.step("implementation");
        assert_eq!(step["provider"], "anthropic", "{}", s.raw);
        assert_eq!(
            (
                step["input_tokens"].as_u64(),
                step["output_tokens"].as_u64()
            ),
            (Some(11), Some(6)),
            "{step}"
        );
        assert_eq!(s.text_of(&step["step"]), "Hello there!", "{}", s.raw);
        let rows = calls(&db, "anthropic", 2);
        assert_eq!(rows[0], "ok:complete:11:6:false:2:200", "{rows:?}");
        // message_start's 11 input tokens as reported; only the output ("Hello") estimated.
        assert!(rows[1].starts_with("provider_error:-:11:"), "{rows:?}");
        assert!(rows[1].ends_with(":true:1:-"), "{rows:?}");
    });

    c.check(CASES[8], || {
        let mut wrong = Vec::new();
        for (i, (file, provider, then)) in MORE.iter().enumerate() {
            fresh();
            double.script(provider, [raw(file)]);
            let before = double.hits(provider);
            // A question of its own each time: no cache hit can stand in for the call.
            let s = ask(&host, t, &format!("What is recording number {i}?"), provider);
            let step = s.step("implementation");
            let text = s.text_of(&step["step"]);
            let rows = calls(&db, provider, 2);
            let row = rows.first().cloned().unwrap_or_default();
            let hits = double.hits(provider) - before;
            let ok = match then {
                Then::Answers(starts, usage) => {
                    let usage_ok = (*usage).is_none_or(|(i, o)| {
                        row.starts_with(&format!("ok:complete:{i}:{o}:false:1:"))
                            && step["input_tokens"] == i
                            && step["output_tokens"] == o
                    });
                    step["provider"] == *provider
                        && step["finish_reason"] == "complete"
                        && text.starts_with(starts)
                        && row.starts_with("ok:complete:")
                        && usage_ok
                        && hits == 1
                }
                Then::FallsBack(reason) => {
                    step["provider"] != *provider
                        && step["provider"] != "local"
                        && step["finish_reason"] == "complete"
                        && s.finish()["status"] == "completed"
                        && row.starts_with(&format!("incomplete:{reason}:"))
                        && hits == 1
                        && count(
                            &db,
                            &format!("SELECT count(*) FROM response_cache WHERE provider = '{provider}' AND step_kind = 'implementation'"),
                        ) == 0
                }
                Then::ErrorFallsBack => {
                    step["provider"] != *provider
                        && step["provider"] != "local"
                        && s.finish()["status"] == "completed"
                        && row.starts_with("provider_error:-:")
                        && hits == 1
                }
                Then::Retried => {
                    step["provider"] == *provider
                        && step["finish_reason"] == "complete"
                        && row.starts_with("ok:complete:")
                        && rows.get(1).is_some_and(|r| r.starts_with("provider_error:-:"))
                        && hits == 2
                }
            };
            if !ok {
                wrong.push(format!(
                    "{file} as {provider}: step {step}, calls rows {rows:?}, {hits} calls, text {:?}",
                    text.chars().take(80).collect::<String>()
                ));
            }
        }
        assert!(wrong.is_empty(), "{} recordings went wrong:\n{}", wrong.len(), wrong.join("\n"));
    });

    c.check(CASES[9], || {
        // A host whose catalog knows the OpenAI models' own output limit: a cut-off call may
        // be asked again with a larger budget (the implementation step asks for 500 tokens).
        let mut catalog: Value = serde_json::from_str(&double.catalog_json()).unwrap();
        for p in catalog["providers"].as_array_mut().unwrap() {
            if p["id"] == "openai" {
                for m in p["models"].as_array_mut().unwrap() {
                    m["max_output_tokens"] = json!(16384);
                }
            }
        }
        let mut cmd = HostCommand::with_manifest_file(&db, tessera_e2e::root().join("spin.toml"))
            .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port());
        for (k, v) in [
            ("SPIN_VARIABLE_LLM_CATALOG", catalog.to_string()),
            ("SPIN_VARIABLE_LLM_LOCAL_HOST", "127.0.0.1:*".into()),
            ("SPIN_VARIABLE_OPENAI_API_KEY", key.clone()),
            ("SPIN_VARIABLE_ANTHROPIC_API_KEY", key.clone()),
            ("SPIN_VARIABLE_GEMINI_API_KEY", key.clone()),
            ("SPIN_VARIABLE_LLM_LOCAL_FALLBACK", "false".into()),
            ("SPIN_VARIABLE_LLM_CALL_TIMEOUT_MS", "3000".into()),
            ("SPIN_VARIABLE_LLM_RETRY_BASE_MS", "20".into()),
            ("SPIN_VARIABLE_LLM_MAX_ATTEMPTS", "2".into()),
        ] {
            cmd = cmd.env(k, v);
        }
        let larger = cmd.start();
        fresh();
        double.script(
            "openai",
            [
                raw("openai/chat-length.sse"),
                raw("openai/chat-text-usage.sse"),
            ],
        );
        let before = double.requests().len();
        let s = ask(
            &larger,
            t,
            "Which budget does a cut-off answer get?",
            "openai",
        );
        let step = s.step("implementation");
        assert_eq!(step["provider"], "openai", "{}", s.raw);
        assert_eq!(step["finish_reason"], "complete", "{}", s.raw);
        assert_eq!(s.finish()["finish_reason"], "complete", "{}", s.raw);
        assert!(
            s.text_of(&step["step"])
                .starts_with("I'm unable to provide real-time weather"),
            "{}",
            s.raw
        );
        assert!(
            s.of("error").iter().any(|e| e["code"] == "incomplete"
                && e["reset"] == true
                && e["message"]
                    .as_str()
                    .unwrap()
                    .contains("output budget of 2000 tokens")),
            "{}",
            s.raw
        );
        let budgets: Vec<Value> = double.requests()[before..]
            .iter()
            .filter(|r| r.provider == "openai")
            .map(|r| {
                r.body
                    .get("max_completion_tokens")
                    .or(r.body.get("max_tokens"))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            budgets,
            [json!(500), json!(2000)],
            "asked again with 4x the budget"
        );
        assert_eq!(
            calls(&db, "openai", 2),
            [
                "ok:complete:14:30:false:2:200",
                "incomplete:length:79:1:false:1:200"
            ]
        );
        double.clear_scripts();
    });

    c.finish(Some(&host));
}
