//! The chat step end to end: the repository's spin.toml on the real host, the chat component
//! calling the kb component (self requests, MiniLM in wasm), real Postgres with pgvector, and
//! the model providers replaced by `ProviderDouble`, a local test double speaking each
//! provider's real streaming wire format.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, ProviderDouble, Reply, TestDb, TestHost};

/// One host at a time: each holds the embedding model and the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const KEK: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn host(db: &TestDb, env: &[(&str, String)]) -> TestHost {
    let mut cmd = HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        // Long enough that a call which only progresses when some timer wakes the instance
        // (the heartbeat is one) shows up in the step durations checked below.
        .env("SPIN_VARIABLE_CHAT_HEARTBEAT_MS", "2000");
    for (k, v) in env {
        cmd = cmd.env(k, v.clone());
    }
    cmd.start()
}

fn post(
    host: &TestHost,
    path: &str,
    body: &Value,
    tenant: &str,
    user: &str,
) -> tessera_e2e::Response {
    Request::new("POST", path)
        .header("x-tenant-id", tenant)
        .header("x-user-id", user)
        .json(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn get(host: &TestHost, path: &str, tenant: &str) -> tessera_e2e::Response {
    Request::new("GET", path)
        .header("x-tenant-id", tenant)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Ingests demo knowledge-base documents (front matter and all) for `tenant`.
fn ingest_demo(host: &TestHost, tenant: &str, files: &[&str]) {
    for f in files {
        let text = std::fs::read_to_string(tessera_e2e::root().join("demo/kb").join(f)).unwrap();
        let title = text
            .lines()
            .find_map(|l| l.strip_prefix("title:"))
            .unwrap_or(f)
            .trim()
            .to_string();
        let r = post(
            host,
            "/v1/kb/documents",
            &json!({"title": title, "content": text}),
            tenant,
            "admin",
        );
        assert!(r.status == 201 || r.status == 200, "{f}: {}", r.describe());
    }
}

fn conversation(host: &TestHost, tenant: &str) -> String {
    let r = post(
        host,
        "/v1/chat/conversations",
        &json!({"title": "test"}),
        tenant,
        "u1",
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    r.json()["id"].as_str().unwrap().to_string()
}

/// A finished SSE stream, parsed.
struct Stream {
    events: Vec<(String, Value)>,
    done: bool,
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

    /// The `step-finish` of the first step of `kind`.
    fn step(&self, kind: &str) -> &Value {
        self.of("step-finish")
            .into_iter()
            .find(|v| v["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} step in {}", self.raw))
    }

    fn errors(&self) -> Vec<&Value> {
        self.of("error")
    }
}

fn parse_sse(status: u16, text: &str) -> Stream {
    assert_eq!(status, 200, "{text}");
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
            let v: Value = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("event {n}: bad JSON {data:?}: {e}"));
            assert_eq!(
                v["type"],
                n.as_str(),
                "the JSON type repeats the event name"
            );
            events.push((n, v));
        }
    }
    // For failure messages: every event but the text deltas (which would crowd out the rest).
    let raw: String = text
        .split("\n\n")
        .filter(|b| !b.starts_with("event: text-delta"))
        .collect::<Vec<_>>()
        .join("\n\n");
    Stream {
        events,
        done,
        raw: raw.chars().take(12_000).collect(),
    }
}

fn say(host: &TestHost, conv: &str, body: Value, tenant: &str, user: &str) -> Stream {
    let r = post(
        host,
        &format!("/v1/chat/conversations/{conv}/messages"),
        &body,
        tenant,
        user,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/event-stream"),
        "{}",
        r.describe()
    );
    let s = parse_sse(r.status, &r.text());
    assert!(s.done, "the stream ends with [DONE]: {}", s.raw);
    s
}

fn ask(host: &TestHost, tenant: &str, question: &str, model: Option<&str>) -> Stream {
    let conv = conversation(host, tenant);
    let mut body = json!({"content": question});
    if let Some(m) = model {
        body["model"] = json!(m);
    }
    say(host, &conv, body, tenant, "u1")
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).unwrap()[0].get::<_, i64>(0)
}

fn assert_error(r: &tessera_e2e::Response, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.describe());
    let j = r.json();
    assert!(
        j["error"]["code"].is_string() && j["error"]["message"].is_string(),
        "{j}"
    );
    if let Some(f) = field {
        assert_eq!(j["error"]["field"], f, "{j}");
    }
}

/// Forgets cached answers, for checks about provider behaviour rather than caching.
fn fresh_cache(db: &TestDb) {
    db.execute("DELETE FROM response_cache");
}

/// The stored steps of a message are all final: none pending or running.
fn assert_consistent(db: &TestDb, message: &str) {
    let open = count(
        db,
        &format!(
            "SELECT count(*) FROM steps WHERE message_id = '{message}' AND status IN ('pending', 'running')"
        ),
    );
    assert_eq!(open, 0, "steps left pending or running");
}

#[test]
fn chat_against_provider_doubles() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let double = ProviderDouble::start();
    let db = TestDb::new();
    let key = "test-platform-key".to_string();
    let host = host(
        &db,
        &[
            ("SPIN_VARIABLE_LLM_CATALOG", double.catalog_json()),
            ("SPIN_VARIABLE_LLM_LOCAL_HOST", "127.0.0.1:*".into()),
            ("SPIN_VARIABLE_OPENAI_API_KEY", key.clone()),
            ("SPIN_VARIABLE_ANTHROPIC_API_KEY", key.clone()),
            ("SPIN_VARIABLE_GEMINI_API_KEY", key.clone()),
            ("SPIN_VARIABLE_KEY_ENCRYPTION_KEY", KEK.into()),
            ("SPIN_VARIABLE_LLM_CALL_TIMEOUT_MS", "1500".into()),
            ("SPIN_VARIABLE_LLM_RETRY_BASE_MS", "20".into()),
            ("SPIN_VARIABLE_LLM_MAX_ATTEMPTS", "2".into()),
            ("SPIN_VARIABLE_BREAKER_FAILURE_THRESHOLD", "3".into()),
            ("SPIN_VARIABLE_BREAKER_COOLDOWN_MS", "1500".into()),
        ],
    );
    let t = "acme";
    ingest_demo(
        &host,
        t,
        &[
            "wacc.md",
            "capm-cost-of-equity.md",
            "dcf-basics.md",
            "sharpe-ratio.md",
            "terminal-value.md",
            "free-cash-flow.md",
        ],
    );
    let mut c = Checks::new("chat");

    let formats = [
        (
            "openai",
            "What is WACC?",
            "authorization",
            "Bearer test-platform-key",
        ),
        (
            "openai-responses",
            "What is free cash flow?",
            "authorization",
            "Bearer test-platform-key",
        ),
        (
            "anthropic",
            "What is drawdown?",
            "x-api-key",
            "test-platform-key",
        ),
        (
            "gemini",
            "What is the Sharpe ratio?",
            "x-goog-api-key",
            "test-platform-key",
        ),
    ];
    for (provider, question, header, value) in formats {
        c.check(
            &format!("a simple question is answered through {provider}'s wire format"),
            || {
                let before = double.hits(provider);
                let s = ask(&host, t, question, Some(provider));
                assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
                let step = s.step("implementation");
                assert_eq!(step["provider"], provider, "{}", s.raw);
                // The double answers in under a millisecond; a call stalled until the next
                // heartbeat (the spawned request-body writer left unpolled) took seconds.
                assert!(
                    step["duration_ms"].as_u64().unwrap() < 1000,
                    "the paid call did not stall: {}",
                    s.raw
                );
                assert_eq!(
                    double.hits(provider),
                    before + 1,
                    "one paid call: analysis, planning, validation and synthesis are local"
                );
                let req = double
                    .requests()
                    .into_iter()
                    .rfind(|r| r.provider == provider)
                    .unwrap();
                assert_eq!(req.header(header), Some(value), "{req:?}");
                // Usage is what the provider reported, and it is priced.
                assert_eq!(
                    step["input_tokens"].as_u64().unwrap(),
                    req.input_tokens,
                    "{}",
                    s.raw
                );
                assert!(
                    step["output_tokens"].as_u64().unwrap() > 0
                        && step["cost_micros"].as_u64().unwrap() > 0,
                    "{}",
                    s.raw
                );
                // The answer streamed as text deltas and cites the knowledge base.
                let deltas: String = s
                    .of("text-delta")
                    .iter()
                    .filter(|d| d["step"] == step["step"])
                    .map(|d| d["delta"].as_str().unwrap())
                    .collect();
                assert!(deltas.contains("According to the sources"), "{deltas}");
                let finish = s.finish();
                assert!(
                    finish["text"].as_str().unwrap().contains("Sources:"),
                    "{finish}"
                );
                assert!(
                    !finish["citations"].as_array().unwrap().is_empty(),
                    "{finish}"
                );
                for kind in ["analysis", "planning", "validation", "synthesis"] {
                    assert_eq!(s.step(kind)["provider"], "local", "{kind}");
                }
            },
        );
    }

    c.check("a wrong calculation in a draft is a validation finding", || {
        fresh_cache(&db);
        double.script(
            "openai",
            [Reply::Text(
                "With equity of 600 and debt of 400, the equity weight is 600 / (600 + 400) = 0.7 [1].".into(),
            )],
        );
        let s = ask(&host, t, "What is the equity weight in WACC?", Some("openai"));
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        let issues = s.step("validation")["output"]["issues"].as_array().unwrap().clone();
        let wrong = issues
            .iter()
            .find(|i| i["code"] == "calculation_mismatch")
            .unwrap_or_else(|| panic!("no calculation_mismatch in {}", s.raw));
        assert_eq!(wrong["severity"], "error", "{wrong}");
        assert!(wrong["message"].as_str().unwrap().contains("to 0.6"), "{wrong}");
    });

    c.check("429 with Retry-After is waited out, then retried", || {
        fresh_cache(&db);
        double.script("anthropic", [Reply::rate_limited(1)]);
        let before = double.hits("anthropic");
        let s = ask(&host, t, "Define EBITDA.", Some("anthropic"));
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        let reqs: Vec<_> = double.requests().into_iter().filter(|r| r.provider == "anthropic").skip(before).collect();
        assert_eq!(reqs.len(), 2, "{}", s.raw);
        assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(950), "Retry-After: 1 was honoured");
        let e = s.errors();
        assert!(e.iter().any(|e| e["code"] == "provider_error" && e["recoverable"] == true && e["message"].as_str().unwrap().contains("429")), "{}", s.raw);
        let statuses: Vec<String> = db
            .query("SELECT status || ':' || coalesce(http_status::text, '-') || ':' || attempt FROM llm_calls WHERE provider = 'anthropic' ORDER BY id DESC LIMIT 2")
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        assert_eq!(statuses, ["ok:200:2", "provider_error:429:1"]);
    });

    c.check("500 then success retries the same provider", || {
        fresh_cache(&db);
        double.script("gemini", [Reply::status(500)]);
        let before = double.hits("gemini");
        let s = ask(&host, t, "What is the risk-free rate?", Some("gemini"));
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        assert_eq!(s.step("implementation")["provider"], "gemini");
        assert_eq!(double.hits("gemini"), before + 2);
        assert!(
            s.errors()
                .iter()
                .any(|e| e["message"].as_str().unwrap().contains("HTTP 500") && e["reset"] == true),
            "{}",
            s.raw
        );
    });

    c.check("a provider that hangs times out and is retried", || {
        fresh_cache(&db);
        double.script("openai-responses", [Reply::Stall(Duration::from_secs(4))]);
        let s = ask(&host, t, "What is a leveraged beta?", Some("openai-responses"));
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        assert_eq!(s.step("implementation")["provider"], "openai-responses");
        assert!(s.errors().iter().any(|e| e["code"] == "timeout"), "{}", s.raw);
        assert_eq!(count(&db, "SELECT count(*) FROM llm_calls WHERE provider = 'openai-responses' AND status = 'timeout'"), 1);
    });

    c.check("a malformed stream is a failure with a reason, then retried", || {
        fresh_cache(&db);
        double.script("openai", [Reply::Malformed]);
        let s = ask(&host, t, "Define beta.", Some("openai"));
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        assert!(s.errors().iter().any(|e| e["code"] == "malformed_stream" && e["message"].as_str().unwrap().contains("malformed JSON")), "{}", s.raw);
        assert_eq!(count(&db, "SELECT count(*) FROM llm_calls WHERE provider = 'openai' AND status = 'malformed_stream'"), 1);
    });

    c.check(
        "after repeated failures the next provider in the chain answers",
        || {
            fresh_cache(&db);
            double.script("gemini", [Reply::status(503), Reply::status(503)]);
            let before = double.hits("gemini");
            let s = ask(
                &host,
                t,
                "What is unlevered free cash flow?",
                Some("gemini"),
            );
            assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
            let step = s.step("implementation");
            assert_ne!(step["provider"], "gemini", "{}", s.raw);
            assert_ne!(step["provider"], "local", "{}", s.raw);
            assert_eq!(double.hits("gemini"), before + 2);
            assert!(
                s.errors().iter().any(|e| e["message"]
                    .as_str()
                    .unwrap()
                    .contains("trying the next provider")),
                "{}",
                s.raw
            );
        },
    );

    c.check(
        "the circuit opens after repeated failures and closes after a good trial",
        || {
            // gemini failed three times within the window (one 500, two 503): open.
            let state = |p: &str| {
                db.query(&format!(
                    "SELECT state->>'state' FROM provider_breakers WHERE provider = '{p}'"
                ))
                .unwrap()[0]
                    .get::<_, String>(0)
            };
            assert_eq!(state("gemini"), "open");
            fresh_cache(&db);
            let before = double.hits("gemini");
            let s = ask(&host, t, "Define drawdown.", Some("gemini"));
            assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
            assert_eq!(
                double.hits("gemini"),
                before,
                "an open breaker sends nothing"
            );
            assert_ne!(s.step("implementation")["provider"], "gemini");
            std::thread::sleep(Duration::from_millis(1700)); // the cooldown
            let s = ask(&host, t, "Define the Sharpe ratio.", Some("gemini"));
            assert_eq!(s.step("implementation")["provider"], "gemini", "{}", s.raw);
            assert_eq!(double.hits("gemini"), before + 1);
            assert_eq!(state("gemini"), "closed");
        },
    );

    c.check(
        "a repeated question is an exact cache hit with no paid call",
        || {
            let first = ask(&host, t, "What is the interest tax shield?", None);
            assert_eq!(
                first.step("implementation")["cache"],
                "miss",
                "{}",
                first.raw
            );
            let hits = double.total_hits();
            let again = ask(&host, t, "What is the interest tax shield?", None);
            let step = again.step("implementation");
            assert_eq!(step["cache"], "exact", "{}", again.raw);
            assert_eq!(step["cost_micros"], 0);
            assert_eq!(double.total_hits(), hits);
            assert_eq!(again.finish()["text"], first.finish()["text"]);
            assert!(
                count(
                    &db,
                    "SELECT count(*) FROM llm_calls WHERE cache_hit = 'exact'"
                ) >= 1
            );
        },
    );

    c.check(
        "a repeated question is answered whole from the cache, before analysis",
        || {
            let q = "What is the interest tax shield?";
            let hits = double.total_hits();
            let conv = conversation(&host, t);
            let again = say(&host, &conv, json!({"content": q}), t, "u1");
            assert_eq!(double.total_hits(), hits, "no paid call");
            let implementation = again.step("implementation");
            assert_eq!(implementation["cache"], "exact", "{}", again.raw);
            assert!(
                implementation["reason"]
                    .as_str()
                    .unwrap()
                    .contains("whole turn"),
                "{}",
                again.raw
            );
            // The stream has the shape of a turn that ran: every step started and finished,
            // the knowledge-base search shown, the answer streamed.
            let finished = again.of("step-finish");
            assert_eq!(again.of("step-start").len(), finished.len(), "{}", again.raw);
            assert_eq!(again.of("tool-result").len(), 1, "{}", again.raw);
            let f = again.finish();
            assert_eq!(
                (f["status"].clone(), f["finish_reason"].clone()),
                (json!("completed"), json!("complete")),
                "{}",
                again.raw
            );
            // Stored as a turn that ran: its rows, numbered as streamed, and its answer.
            let id = f["message_id"].as_str().unwrap();
            assert_consistent(&db, id);
            let view = get(&host, &format!("/v1/chat/conversations/{conv}"), t);
            assert_eq!(view.status, 200, "{}", view.describe());
            let view = view.json();
            let answer = view["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id)
                .unwrap_or_else(|| panic!("{view}"));
            assert_eq!(answer["status"], "completed", "{view}");
            assert_eq!(answer["content"], f["text"], "{view}");
            let rows = count(
                &db,
                &format!("SELECT count(*) FROM steps WHERE message_id = '{id}' AND status = 'completed' AND current"),
            );
            assert_eq!(rows, finished.len() as i64);
            let n = implementation["step"].as_i64().unwrap();
            assert_eq!(
                count(&db, &format!("SELECT count(*) FROM steps WHERE message_id = '{id}' AND n = {n} AND kind = 'implementation' AND cache_hit = 'exact'")),
                1
            );
            // Usage counts it as a cached call; the user message keeps its embedding.
            assert_eq!(
                count(&db, &format!("SELECT count(*) FROM llm_calls WHERE message_id = '{id}' AND cache_hit = 'exact' AND cost_micros = 0")),
                1
            );
            assert_eq!(
                count(&db, &format!("SELECT count(*) FROM messages WHERE id = (SELECT reply_to FROM messages WHERE id = '{id}') AND embedding IS NOT NULL")),
                1
            );
            // A replayed step is a step like any other: its edit can be previewed.
            let r = post(
                &host,
                &format!("/v1/chat/conversations/{conv}/steps/{n}/edit"),
                &json!({"instructions": "in one sentence"}),
                t,
                "u1",
            );
            assert_eq!(r.status, 200, "{}", r.describe());

        },
    );

    c.check("a reworded question is a semantic cache hit with no paid call", || {
        let hits = double.total_hits();
        // MiniLM puts this at cosine 0.993 from the question above (the default threshold is 0.95).
        let s = ask(&host, t, "What's the interest tax shield?", None);
        let step = s.step("implementation");
        let cached: Vec<String> = db
            .query("SELECT step_kind || ' ' || scope || ' ' || provider || '/' || model || ' ' || (embedding IS NOT NULL)::text || ' ' || (value->'citations')::text FROM response_cache WHERE step_kind <> 'turn' ORDER BY id")
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        assert_eq!(step["cache"], "semantic", "cache rows {cached:#?}\n{}", s.raw);
        assert_eq!(double.total_hits(), hits);
        assert!(step["reason"].as_str().unwrap().contains("similarity"), "{step}");
        assert_eq!(count(&db, "SELECT count(*) FROM llm_calls WHERE cache_hit = 'semantic' AND step_kind = 'implementation'"), 1);
    });

    c.check(
        "a two-part question is planned locally, its parts reuse earlier answers, and it is merged without a model",
        || {
            let hits = double.total_hits();
            let s = ask(
                &host,
                t,
                "What is the interest tax shield, and how is a terminal value computed in a DCF?",
                None,
            );
            assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
            let planning = s.step("planning");
            assert_eq!(
                (planning["provider"].clone(), planning["model"].clone()),
                (json!("local"), json!("local-planner")),
                "{}",
                s.raw
            );
            let impls: Vec<Value> = s
                .of("step-finish")
                .into_iter()
                .filter(|v| v["kind"] == "implementation")
                .cloned()
                .collect();
            assert_eq!(impls.len(), 2, "{}", s.raw);
            // The first part was asked on its own above: its task is found by its own
            // embedding. The second is new: one paid call.
            let cached: Vec<String> = db
                .query("SELECT a.id::text || ' ' || (value->'citations')::text || ' ' || (value->>'text') || ' sim ' || coalesce((SELECT string_agg(round((1 - (a.embedding <=> b.embedding))::numeric, 4)::text, ',') FROM response_cache b WHERE b.id <> a.id), '') FROM response_cache a WHERE a.step_kind <> 'turn' ORDER BY id")
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect();
            assert_eq!(impls[0]["cache"], "semantic", "cache rows {cached:#?}\n{}", s.raw);
            assert_eq!(impls[1]["cache"], "miss", "{}", s.raw);
            assert_eq!(double.total_hits(), hits + 1, "{}", s.raw);
            let synthesis = s.step("synthesis");
            assert_eq!(
                (synthesis["provider"].clone(), synthesis["model"].clone()),
                (json!("local"), json!("merge")),
                "{}",
                s.raw
            );
            let text = s.finish()["text"].as_str().unwrap();
            assert!(text.contains("**What is the interest tax shield?**"), "{text}");
            assert!(text.contains("\n\nSources:\n"), "{text}");
            // The paid part's request carries its task alone, not the whole question.
            let last = double.requests().pop().unwrap().body.to_string();
            assert!(!last.contains("interest tax shield"), "{last}");
        },
    );

    c.check("an exhausted budget answers locally, says so, and makes no paid call", || {
        let r = Request::new("PUT", "/v1/chat/profile")
            .header("x-tenant-id", t)
            .header("x-user-id", "broke")
            .json(&json!({"monthly_budget_usd": 0}))
            .send(host.addr())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        let hits = double.total_hits();
        let conv = conversation(&host, t);
        let s = say(&host, &conv, json!({"content": "Explain the Sharpe ratio"}), t, "broke");
        assert_eq!(double.total_hits(), hits, "no request reached a provider");
        let f = s.finish();
        assert_eq!(f["status"], "completed");
        let text = f["text"].as_str().unwrap();
        assert!(text.contains("budget exhausted") && text.contains("without a language model"), "{text}");
        assert!(s.errors().iter().any(|e| e["code"] == "budget_exhausted"), "{}", s.raw);
        assert!(count(&db, "SELECT count(*) FROM llm_calls WHERE user_id = 'broke' AND status = 'budget_exhausted'") >= 1);
    });

    c.check("a user's own key is stored encrypted and used for their calls", || {
        let r = Request::new("PUT", "/v1/chat/profile")
            .header("x-tenant-id", t)
            .header("x-user-id", "vip")
            .json(&json!({"tier": "premium", "skill_level": "expert", "provider_keys": {"anthropic": "sk-ant-users-own"}}))
            .send(host.addr())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["own_keys"], json!(["anthropic"]));
        let stored = db.query("SELECT provider_keys::text FROM user_profiles WHERE user_id = 'vip'").unwrap()[0].get::<_, String>(0);
        assert!(!stored.contains("sk-ant-users-own") && stored.contains("ciphertext"), "{stored}");
        let conv = conversation(&host, t);
        let s = say(&host, &conv, json!({"content": "What is beta?", "model": "anthropic"}), t, "vip");
        assert_eq!(s.step("implementation")["provider"], "anthropic", "{}", s.raw);
        let req = double.requests().into_iter().rfind(|r| r.provider == "anthropic").unwrap();
        assert_eq!(req.header("x-api-key"), Some("sk-ant-users-own"));
        assert!(req.body.to_string().contains("terse"), "the expert persona");
        assert_eq!(count(&db, "SELECT count(*) FROM llm_calls WHERE user_id = 'vip' AND user_key"), 1, "one paid call, on the user's key");
    });

    let complex = "How do I compute WACC from the cost of equity and the after-tax cost of debt, and then use it to discount free cash flow in a DCF with a terminal value?";
    let mut edited_conv = String::new();
    c.check(
        "a complex question is planned by a model and synthesised from its tasks",
        || {
            edited_conv = conversation(&host, t);
            let s = say(&host, &edited_conv, json!({"content": complex}), t, "u1");
            assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
            assert_ne!(s.step("planning")["provider"], "local", "{}", s.raw);
            let impls = s
                .of("step-finish")
                .into_iter()
                .filter(|v| v["kind"] == "implementation")
                .count();
            assert_eq!(impls, 2, "{}", s.raw);
            assert_ne!(s.step("synthesis")["provider"], "local", "{}", s.raw);
            let ns: Vec<i64> = s
                .of("step-start")
                .iter()
                .map(|v| v["step"].as_i64().unwrap())
                .collect();
            assert_eq!(ns, [1, 2, 3, 4, 5, 6]);
            let total: u64 = s
                .of("step-finish")
                .iter()
                .map(|v| v["cost_micros"].as_u64().unwrap())
                .sum();
            assert_eq!(s.finish()["cost_micros"].as_u64().unwrap(), total);
        },
    );

    c.check("editing a step previews and reruns it with its dependents, keeping old versions", || {
        let path = format!("/v1/chat/conversations/{edited_conv}/steps/3/edit");
        let r = post(&host, &path, &json!({"instructions": "Show the formula with the tax shield", "mode": "preview"}), t, "u1");
        assert_eq!(r.status, 200, "{}", r.describe());
        let p = r.json();
        assert_eq!(p["dependents"], json!([5, 6]), "{p}");
        assert!(p["estimated_cost_micros"].as_u64().unwrap() > 0, "{p}");
        let r = post(&host, &format!("/v1/chat/conversations/{edited_conv}/steps/2/edit"), &json!({"instructions": "x"}), t, "u1");
        assert_eq!(r.json()["dependents"], json!([3, 4, 5, 6]), "{}", r.describe());
        let hits = double.total_hits();
        let r = post(&host, &path, &json!({"instructions": "Show the formula with the tax shield", "mode": "apply"}), t, "u1");
        assert_eq!(r.status, 200, "{}", r.describe());
        let s = parse_sse(r.status, &r.text());
        assert!(s.done);
        assert_eq!(s.of("start")[0]["edit_of"], 3);
        let rerun: Vec<(i64, i64)> = s.of("step-start").iter().map(|v| (v["step"].as_i64().unwrap(), v["version"].as_i64().unwrap())).collect();
        assert_eq!(rerun, [(3, 2), (5, 2), (6, 2)], "{}", s.raw);
        assert_eq!(s.finish()["status"], "completed");
        assert!(double.total_hits() > hits, "the edited step is paid again: {}", s.raw);
        // The double drafts from the sources alone, so the new draft reads as the old one and
        // synthesis may be an exact cache hit; either way it reran on the new draft.
        let synthesis = s.step("synthesis");
        assert!(synthesis["cache"] == "miss" || synthesis["cache"] == "exact", "{}", s.raw);
        let conv = get(&host, &format!("/v1/chat/conversations/{edited_conv}"), t).json();
        let steps = conv["steps"].as_array().unwrap();
        let by_n = |n: i64| steps.iter().find(|s| s["n"] == n).unwrap();
        assert_eq!(by_n(3)["version"], 2);
        assert_eq!(by_n(3)["previous_versions"].as_array().unwrap().len(), 1);
        assert_eq!(by_n(3)["inputs"]["instructions"], "Show the formula with the tax shield");
        assert_eq!(by_n(4)["version"], 1, "an independent task is untouched");
        assert_eq!(by_n(6)["version"], 2);
        assert_eq!(count(&db, &format!("SELECT count(*) FROM steps WHERE conversation_id = '{edited_conv}' AND NOT current")), 3);
        let assistant = conv["messages"].as_array().unwrap().iter().find(|m| m["role"] == "assistant").unwrap();
        assert_eq!(assistant["content"], s.finish()["text"], "the message holds the new answer");
    });

    c.check("bad input gets a JSON 4xx", || {
        let missing = "00000000-0000-0000-0000-000000000000";
        assert_error(
            &post(
                &host,
                &format!("/v1/chat/conversations/{missing}/messages"),
                &json!({"content": "hi"}),
                t,
                "u1",
            ),
            404,
            None,
        );
        // A malformed id is 400 `invalid_id` naming the field, as in kb and feedback.
        let r = post(
            &host,
            "/v1/chat/conversations/not-a-uuid/messages",
            &json!({"content": "hi"}),
            t,
            "u1",
        );
        assert_error(&r, 400, Some("conversation_id"));
        assert_eq!(r.json()["error"]["code"], "invalid_id");
        assert_error(
            &get(&host, &format!("/v1/chat/conversations/{missing}"), t),
            404,
            None,
        );
        // Another tenant cannot see the conversation.
        assert_error(
            &get(
                &host,
                &format!("/v1/chat/conversations/{edited_conv}"),
                "other-co",
            ),
            404,
            None,
        );
        let conv = conversation(&host, t);
        let path = format!("/v1/chat/conversations/{conv}/messages");
        assert_error(
            &post(&host, &path, &json!({"content": "   "}), t, "u1"),
            400,
            Some("content"),
        );
        assert_error(
            &post(&host, &path, &json!({}), t, "u1"),
            400,
            Some("content"),
        );
        assert_error(
            &post(
                &host,
                &path,
                &json!({"content": "x".repeat(8_001)}),
                t,
                "u1",
            ),
            413,
            Some("content"),
        );
        assert_error(
            &post(
                &host,
                &path,
                &json!({"content": "x".repeat(70_000)}),
                t,
                "u1",
            ),
            413,
            Some("content"),
        );
        assert_error(
            &post(
                &host,
                &path,
                &json!({"content": "hi", "colour": 1}),
                t,
                "u1",
            ),
            400,
            None,
        );
        let edit = |n: &str| format!("/v1/chat/conversations/{edited_conv}/steps/{n}/edit");
        assert_error(
            &post(&host, &edit("abc"), &json!({"instructions": "x"}), t, "u1"),
            400,
            Some("n"),
        );
        assert_error(
            &post(&host, &edit("0"), &json!({"instructions": "x"}), t, "u1"),
            400,
            Some("n"),
        );
        assert_error(
            &post(&host, &edit("99"), &json!({"instructions": "x"}), t, "u1"),
            404,
            None,
        );
        assert_error(
            &post(&host, &edit("1"), &json!({"instructions": "x"}), t, "u1"),
            400,
            Some("n"),
        );
        assert_error(
            &post(&host, &edit("3"), &json!({"instructions": ""}), t, "u1"),
            400,
            Some("instructions"),
        );
        assert_error(
            &post(
                &host,
                &edit("3"),
                &json!({"instructions": "x", "mode": "now"}),
                t,
                "u1",
            ),
            400,
            Some("mode"),
        );
        let r = Request::new("POST", "/v1/chat/conversations")
            .header("x-tenant-id", "bad tenant!")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 400, Some("x-tenant-id"));
        assert_error(&get(&host, "/v1/usage?period=year", t), 400, Some("period"));
    });

    c.check("editing a step while its turn runs is refused with 409", || {
        double.set_chunk_delay(Duration::from_millis(150));
        fresh_cache(&db);
        let conv = conversation(&host, t);
        let addr = host.addr();
        let path = format!("/v1/chat/conversations/{conv}/messages");
        let runner = std::thread::spawn(move || {
            let q = "How do I estimate beta from returns, and then plug it into the CAPM to get the cost of equity for the WACC?";
            Request::new("POST", &path).header("x-tenant-id", "acme").json(&json!({"content": q})).send(addr).unwrap()
        });
        let running = tessera_e2e::wait_for(Duration::from_secs(20), || {
            (count(&db, &format!("SELECT count(*) FROM steps WHERE conversation_id = '{conv}' AND status = 'running'")) > 0).then_some(())
        });
        assert!(running.is_some(), "a step started running");
        let r = post(&host, &format!("/v1/chat/conversations/{conv}/steps/2/edit"), &json!({"instructions": "x"}), t, "u1");
        assert_error(&r, 409, None);
        let r = post(&host, &format!("/v1/chat/conversations/{conv}/messages"), &json!({"content": "another"}), t, "u1");
        assert_error(&r, 409, None);
        let done = runner.join().unwrap();
        double.set_chunk_delay(Duration::ZERO);
        assert_eq!(parse_sse(done.status, &done.text()).finish()["status"], "completed");
    });

    c.check("a client that disconnects stops further paid calls", || {
        double.set_chunk_delay(Duration::from_millis(250));
        let conv = conversation(&host, t);
        let hits = double.total_hits();
        let body = json!({"content": "How do I compute the cost of debt after tax, and then weight it against equity with market values, and then check the WACC against peers?"}).to_string();
        let mut stream = TcpStream::connect(host.addr()).unwrap();
        write!(
            stream,
            "POST /v1/chat/conversations/{conv}/messages HTTP/1.1\r\nhost: x\r\nx-tenant-id: acme\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let started = Instant::now();
        while !seen.contains("\"kind\":\"planning\"") && started.elapsed() < Duration::from_secs(20) {
            let n = stream.read(&mut buf).unwrap();
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(seen.contains("\"kind\":\"planning\""), "{seen}");
        drop(stream); // the client goes away while planning is being streamed
        let message = tessera_e2e::wait_for(Duration::from_secs(20), || {
            let rows = db.query(&format!("SELECT status FROM messages WHERE conversation_id = '{conv}' AND role = 'assistant'")).ok()?;
            let status: String = rows.first()?.get(0);
            (status != "running").then_some(status)
        });
        double.set_chunk_delay(Duration::ZERO);
        assert_eq!(message.as_deref(), Some("cancelled"));
        // The client left right after planning started: that call may already have been
        // under way (or, noticed first, never made); nothing after it is.
        assert!(double.total_hits() <= hits + 1, "no paid call after the client left: {} calls", double.total_hits() - hits);
        let id = db.query(&format!("SELECT id::text FROM messages WHERE conversation_id = '{conv}' AND role = 'assistant'")).unwrap()[0].get::<_, String>(0);
        assert_consistent(&db, &id);
        assert!(count(&db, &format!("SELECT count(*) FROM steps WHERE message_id = '{id}' AND status = 'cancelled'")) >= 1);
    });

    c.check("a failure mid-turn ends the stream with an error and leaves the steps consistent", || {
        db.execute(
            "CREATE FUNCTION fail_synthesis() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.kind = 'synthesis' AND NEW.status = 'completed' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER fail_synthesis BEFORE UPDATE ON steps FOR EACH ROW EXECUTE FUNCTION fail_synthesis();",
        );
        let s = ask(&host, t, "What is a leveraged beta?", None);
        db.execute("DROP TRIGGER fail_synthesis ON steps; DROP FUNCTION fail_synthesis();");
        assert!(s.done, "never a hung stream");
        assert_eq!(s.finish()["status"], "failed", "{}", s.raw);
        // A database error is an internal error: its words are logged, never streamed.
        assert!(s.errors().iter().any(|e| e["recoverable"] == false && e["code"] == "internal_error" && e["message"].as_str().unwrap().starts_with("internal error")), "{}", s.raw);
        assert!(!s.raw.contains("injected failure"), "{}", s.raw);
        assert!(host.output().contains("injected failure"), "the database's message is logged");
        let id = s.finish()["message_id"].as_str().unwrap().to_string();
        assert_consistent(&db, &id);
        assert_eq!(count(&db, &format!("SELECT count(*) FROM steps WHERE message_id = '{id}' AND kind = 'synthesis' AND status = 'skipped'")), 1);
        assert_eq!(count(&db, &format!("SELECT count(*) FROM messages WHERE id = '{id}' AND status = 'failed'")), 1);
    });

    c.check("a change to the knowledge base makes a stored turn run afresh", || {
        let q = "How does debt create an interest tax shield?";
        let whole = |s: &Stream| {
            s.step("implementation")["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("whole turn")
        };
        let first = ask(&host, t, q, None);
        assert!(!whole(&first), "{}", first.raw);
        let again = ask(&host, t, q, None);
        assert!(whole(&again), "{}", again.raw);
        // A new document bumps the tenant's knowledge-base generation: the same question
        // runs analysis again (its paid step may still be a per-step cache hit).
        let generation = || {
            count(&db, "SELECT coalesce((SELECT generation FROM kb_generations WHERE tenant_id = 'acme'), 0)")
        };
        let before = generation();
        let r = post(
            &host,
            "/v1/kb/documents",
            &json!({"title": "Working capital", "content": "Net working capital is current assets minus current liabilities."}),
            t,
            "admin",
        );
        assert_eq!(r.status, 201, "{}", r.describe());
        assert!(generation() > before, "the ingest bumped the generation");
        let fresh = ask(&host, t, q, None);
        assert!(!whole(&fresh), "{}", fresh.raw);
        assert_eq!(fresh.finish()["status"], "completed", "{}", fresh.raw);
    });

    c.check("usage reports tokens and cost by user, provider and day", || {
        let r = get(&host, "/v1/usage", t);
        assert_eq!(r.status, 200, "{}", r.describe());
        let u = r.json();
        assert!(u["totals"]["cost_micros"].as_u64().unwrap() > 0, "{u}");
        assert!(u["totals"]["cache_hits"].as_u64().unwrap() >= 2, "{u}");
        let providers: Vec<&str> = u["by_provider"].as_array().unwrap().iter().map(|p| p["provider"].as_str().unwrap()).collect();
        for p in ["anthropic", "gemini", "openai", "openai-responses"] {
            assert!(providers.contains(&p), "{providers:?}");
        }
        let sum: i64 = db.query("SELECT coalesce(sum(cost_micros), 0)::int8 FROM llm_calls WHERE tenant_id = 'acme'").unwrap()[0].get(0);
        assert_eq!(u["totals"]["cost_micros"].as_i64().unwrap(), sum);
        let vip = get(&host, "/v1/usage?user=vip&period=all", t).json();
        assert_eq!(vip["by_user"].as_array().unwrap().len(), 1, "{vip}");
        assert_eq!(get(&host, "/v1/usage", "other-co").json()["totals"]["calls"], 0);
    });

    c.finish(Some(&host));
}

#[test]
fn chat_in_local_mode_with_the_demo_knowledge_base() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let db = TestDb::new();
    let host = host(&db, &[]);
    let t = "demo";
    ingest_demo(
        &host,
        t,
        &[
            "wacc.md",
            "capm-cost-of-equity.md",
            "beta.md",
            "dcf-basics.md",
            "terminal-value.md",
            "sharpe-ratio.md",
            "sortino-ratio.md",
            "drawdown.md",
        ],
    );
    let mut c = Checks::new("chat-local");
    let conv = conversation(&host, t);

    c.check(
        "with no provider configured every step answers locally, with citations, and says so",
        || {
            let s = say(
                &host,
                &conv,
                json!({"content": "What is the weighted average cost of capital?"}),
                t,
                "u1",
            );
            let f = s.finish();
            assert_eq!(f["status"], "completed", "{}", s.raw);
            let text = f["text"].as_str().unwrap();
            assert!(
                text.starts_with(
                    "Answered locally from the knowledge base, without a language model"
                ),
                "{text}"
            );
            assert!(text.contains("[1]") || text.contains("[2]"), "{text}");
            let cites = f["citations"].as_array().unwrap();
            assert!(!cites.is_empty());
            assert!(
                cites
                    .iter()
                    .any(|c| c["title"].as_str().unwrap().contains("WACC")),
                "{f}"
            );
            // Every cited number is a source the analysis step retrieved.
            let retrieved = s.of("tool-result")[0]["output"]["results"]
                .as_array()
                .unwrap()
                .clone();
            for c in cites {
                assert!(
                    retrieved
                        .iter()
                        .any(|r| r["chunk_id"] == c["chunk_id"] && r["n"] == c["n"]),
                    "{c}"
                );
            }
            for v in s.of("step-finish") {
                assert_eq!(v["provider"], "local", "{v}");
                assert_eq!(v["cost_micros"], 0);
            }
            let kinds: Vec<&str> = s
                .of("step-start")
                .iter()
                .map(|v| v["kind"].as_str().unwrap())
                .collect();
            assert_eq!(
                kinds,
                [
                    "analysis",
                    "planning",
                    "implementation",
                    "validation",
                    "synthesis"
                ]
            );
            assert_eq!(
                s.step("analysis")["output"]["complexity"]
                    .as_f64()
                    .map(|c| (0.0..=1.0).contains(&c)),
                Some(true)
            );
        },
    );

    c.check("a follow-up and a multi-part question continue the conversation", || {
        let s = say(&host, &conv, json!({"content": "How do the Sharpe and Sortino ratios differ, and how does drawdown relate to them?"}), t, "u1");
        assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
        let text = s.finish()["text"].as_str().unwrap().to_string();
        assert!(text.contains("Sortino") || text.contains("downside"), "{text}");
        let s2 = say(&host, &conv, json!({"content": "And how is the terminal value computed?"}), t, "u1");
        assert_eq!(s2.finish()["status"], "completed");
        assert!(s2.finish()["text"].as_str().unwrap().to_lowercase().contains("terminal"), "{}", s2.raw);
    });

    c.check(
        "the conversation stores messages and steps with timing and status",
        || {
            let v = get(&host, &format!("/v1/chat/conversations/{conv}"), t).json();
            let messages = v["messages"].as_array().unwrap();
            assert_eq!(messages.len(), 6, "{v}");
            assert!(messages.iter().all(|m| m["status"] == "completed"));
            let steps = v["steps"].as_array().unwrap();
            assert!(steps.len() >= 15, "{}", steps.len());
            for s in steps {
                assert_eq!(s["status"], "completed", "{s}");
                assert!(
                    s["duration_ms"].as_i64().is_some()
                        && s["started_at"].is_string()
                        && s["finished_at"].is_string(),
                    "{s}"
                );
                assert_eq!(s["version"], 1);
            }
            let ns: Vec<i64> = steps.iter().map(|s| s["n"].as_i64().unwrap()).collect();
            assert_eq!(
                ns,
                (1..=ns.len() as i64).collect::<Vec<_>>(),
                "steps are numbered 1..n in the conversation"
            );
            let u = get(&host, "/v1/usage?period=all", t).json();
            assert_eq!(u["totals"]["cost_micros"], 0, "{u}");
            assert!(
                u["by_provider"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p["provider"] == "local"),
                "{u}"
            );
        },
    );

    c.check(
        "a local step can be edited and rerun with its dependents",
        || {
            let r = post(
                &host,
                &format!("/v1/chat/conversations/{conv}/steps/3/edit"),
                &json!({"instructions": "market values of debt and equity", "mode": "apply"}),
                t,
                "u1",
            );
            let s = parse_sse(r.status, &r.text());
            assert_eq!(s.finish()["status"], "completed", "{}", s.raw);
            let ns: Vec<i64> = s
                .of("step-start")
                .iter()
                .map(|v| v["step"].as_i64().unwrap())
                .collect();
            assert_eq!(ns, [3, 4, 5]);
        },
    );

    c.check("turns no model answered are never stored whole", || {
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM response_cache WHERE step_kind = 'turn'"
            ),
            0
        );
    });

    c.finish(Some(&host));
}
