//! Feedback end to end: the repository's spin.toml on the real host (chat in local mode, kb
//! with MiniLM in wasm, the feedback component and the feedback-report cron component), real
//! Postgres. Answers are rated with presigned tokens and trusted headers; the report clusters
//! the rated questions; a promoted correction becomes what chat retrieves first; votes per
//! persona change the persona chat answers with; the cron stores the nightly report.
//!
//! The cron trigger runs every 2 s here instead of nightly: the manifest is the repository's
//! with only its cron expression changed (and its relative paths made absolute).

use std::time::Duration;

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, Response, TempDir, TestDb, TestHost};

const KEY: &str = "test-feedback-signing-key-0123456789";
const T: &str = "fb";

fn host(db: &TestDb, dir: &TempDir) -> TestHost {
    let root = tessera_e2e::root();
    let manifest = std::fs::read_to_string(root.join("spin.toml")).unwrap();
    assert!(
        manifest.contains("cron_expression = \"0 30 2 * * *\""),
        "the nightly schedule is in spin.toml"
    );
    let manifest = manifest
        .replace(
            "cron_expression = \"0 30 2 * * *\"",
            "cron_expression = \"*/2 * * * * *\"",
        )
        .replace(
            "source = \"target/",
            &format!("source = \"{}/target/", root.display()),
        )
        .replace(
            "source = \".tessera/",
            &format!("source = \"{}/.tessera/", root.display()),
        );
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    HostCommand::with_manifest_file(db, path)
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("SPIN_VARIABLE_FEEDBACK_SIGNING_KEY", KEY)
        .start()
}

fn post(host: &TestHost, path: &str, body: &Value, user: &str) -> Response {
    Request::new("POST", path)
        .header("x-tenant-id", T)
        .header("x-user-id", user)
        .json(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// Feedback from a browser: the token and nothing else (no tenant or user headers).
fn post_with_token(host: &TestHost, message: &str, token: &str, body: &Value) -> Response {
    let path = format!("/v1/messages/{message}/feedback");
    Request::new("POST", &path)
        .header("authorization", format!("Bearer {token}"))
        .json(body)
        .send(host.addr())
        .unwrap()
}

fn rate(host: &TestHost, message: &str, body: &Value, user: &str) -> Response {
    post(
        host,
        &format!("/v1/messages/{message}/feedback"),
        body,
        user,
    )
}

fn get(host: &TestHost, path: &str) -> Value {
    let r = Request::new("GET", path)
        .header("x-tenant-id", T)
        .send(host.addr())
        .unwrap();
    assert_eq!(r.status, 200, "GET {path}: {}", r.describe());
    r.json()
}

fn assert_error(r: &Response, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.describe());
    let j = r.json();
    assert_eq!(j["error"]["code"], code, "{j}");
    assert!(j["error"]["message"].is_string(), "{j}");
    if let Some(f) = field {
        assert_eq!(j["error"]["field"], f, "{j}");
    }
}

/// One answered question: ids from the `start` event, the `finish` event, the kb results.
struct Answer {
    message: String,
    user_message: String,
    conversation: String,
    finish: Value,
    retrieved: Vec<Value>,
}

fn ask(host: &TestHost, question: &str, user: &str) -> Answer {
    let r = post(
        host,
        "/v1/chat/conversations",
        &json!({"title": "feedback test"}),
        user,
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    let conversation = r.json()["id"].as_str().unwrap().to_string();
    let r = post(
        host,
        &format!("/v1/chat/conversations/{conversation}/messages"),
        &json!({"content": question}),
        user,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let mut events: Vec<(String, Value)> = Vec::new();
    for block in r.text().split("\n\n") {
        let name = block.lines().find_map(|l| l.strip_prefix("event: "));
        let data: String = block
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        if let Some(n) = name {
            events.push((n.to_string(), serde_json::from_str(&data).unwrap()));
        }
    }
    let of = |kind: &str| {
        events
            .iter()
            .filter(|(e, _)| e == kind)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let start = of("start").pop().expect("a start event");
    let finish = of("finish").pop().expect("a finish event");
    assert_eq!(finish["status"], "completed", "{finish}");
    let retrieved = of("tool-result")
        .first()
        .map(|v| v["output"]["results"].as_array().unwrap().clone())
        .unwrap_or_default();
    Answer {
        message: start["message_id"].as_str().unwrap().to_string(),
        user_message: start["user_message_id"].as_str().unwrap().to_string(),
        conversation,
        finish,
        retrieved,
    }
}

fn token(a: &Answer) -> String {
    a.finish["feedback_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no feedback_token in {}", a.finish))
        .to_string()
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).unwrap()[0].get::<_, i64>(0)
}

fn today(db: &TestDb) -> String {
    db.query("SELECT ((now() AT TIME ZONE 'UTC')::date)::text")
        .unwrap()[0]
        .get(0)
}

fn ingest_demo(host: &TestHost, files: &[&str]) {
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
            "admin",
        );
        assert!(r.status == 201 || r.status == 200, "{f}: {}", r.describe());
    }
}

const CORRECTION: &str = "WACC weights the cost of equity and the after-tax cost of debt by their market values: \
    WACC = E/V x Re + D/V x Rd x (1 - Tc). Use target weights when the capital structure is changing.";

#[test]
fn feedback_reports_and_learning() {
    let db = TestDb::new();
    let dir = TempDir::new("tessera-feedback");
    let host = host(&db, &dir);
    ingest_demo(
        &host,
        &[
            "wacc.md",
            "capm-cost-of-equity.md",
            "sharpe-ratio.md",
            "sortino-ratio.md",
            "dcf-basics.md",
            "terminal-value.md",
            "drawdown.md",
        ],
    );
    let mut c = Checks::new("feedback");

    let wacc = ask(&host, "What is the weighted average cost of capital?", "u1");
    let wacc2 = ask(
        &host,
        "How is the weighted average cost of capital (WACC) calculated?",
        "u1",
    );
    let sharpe = ask(&host, "What does the Sharpe ratio measure?", "u1");
    let sharpe2 = ask(&host, "Explain the Sharpe ratio of a portfolio.", "u1");

    c.check(
        "each answer carries a presigned feedback token, in the stream and in the conversation",
        || {
            let t = token(&wacc);
            assert!(t.starts_with(&format!("fb1.{}.", wacc.message)), "{t}");
            let v = get(
                &host,
                &format!("/v1/chat/conversations/{}", wacc.conversation),
            );
            let messages = v["messages"].as_array().unwrap();
            let answer = messages.iter().find(|m| m["role"] == "assistant").unwrap();
            assert!(
                answer["feedback_token"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("fb1.{}.", wacc.message)),
                "{answer}"
            );
            let question = messages.iter().find(|m| m["role"] == "user").unwrap();
            assert!(question["feedback_token"].is_null(), "{question}");
        },
    );

    let mut first_id = String::new();
    c.check(
        "a browser rates an answer with its token alone; the rater is the conversation's owner",
        || {
            let r = post_with_token(
                &host,
                &wacc.message,
                &token(&wacc),
                &json!({"rating": "up", "score": 0.9}),
            );
            assert_eq!(r.status, 201, "{}", r.describe());
            let v = r.json();
            assert_eq!(
                (
                    v["rating"].as_str(),
                    v["via"].as_str(),
                    v["user_id"].as_str()
                ),
                (Some("up"), Some("token"), Some("u1")),
                "{v}"
            );
            assert!(v["replaced"].is_null());
            first_id = v["id"].as_str().unwrap().to_string();
            // The token also goes in the body, for clients that cannot set headers (sendBeacon).
            let r = Request::new("POST", &format!("/v1/messages/{}/feedback", wacc2.message))
                .json(&json!({"rating": "down", "token": token(&wacc2), "tags": ["Wrong-Formula"]}))
                .send(host.addr())
                .unwrap();
            assert_eq!(r.status, 201, "{}", r.describe());
            assert_eq!(r.json()["tags"], json!(["wrong-formula"]));
        },
    );

    let mut correction_id = String::new();
    c.check("a later rating replaces the earlier one and the earlier one stays as history", || {
        let r = rate(&host, &wacc.message, &json!({"rating": "down", "edited_text": CORRECTION, "comment": "missing the tax shield", "tags": ["incomplete"]}), "u1");
        assert_eq!(r.status, 200, "{}", r.describe());
        let v = r.json();
        assert_eq!(v["replaced"], first_id.as_str(), "{v}");
        correction_id = v["id"].as_str().unwrap().to_string();
        let all = get(&host, &format!("/v1/messages/{}/feedback", wacc.message));
        let current = all["feedback"].as_array().unwrap();
        assert_eq!(current.len(), 1, "{all}");
        assert_eq!((current[0]["rating"].as_str(), current[0]["edited_text"].as_str()), (Some("down"), Some(CORRECTION)));
        let history = all["history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "{all}");
        assert_eq!((history[0]["id"].as_str(), history[0]["current"].as_bool()), (Some(first_id.as_str()), Some(false)));
        assert!(history[0]["superseded_at"].is_string());
    });

    c.check("bad input: each a JSON 4xx naming the field", || {
        let m = &wacc.message;
        assert_error(
            &rate(
                &host,
                "00000000-0000-4000-8000-000000000000",
                &json!({"rating": "up"}),
                "u1",
            ),
            404,
            "message_not_found",
            Some("message_id"),
        );
        assert_error(
            &rate(&host, "not-a-uuid", &json!({"rating": "up"}), "u1"),
            400,
            "invalid_id",
            Some("message_id"),
        );
        assert_error(
            &rate(&host, &wacc.user_message, &json!({"rating": "up"}), "u1"),
            400,
            "not_an_answer",
            Some("message_id"),
        );
        assert_error(
            &rate(&host, m, &json!({"rating": "meh"}), "u1"),
            400,
            "invalid_field",
            Some("rating"),
        );
        assert_error(
            &rate(&host, m, &json!({"comment": "no rating"}), "u1"),
            400,
            "missing_field",
            Some("rating"),
        );
        assert_error(
            &rate(&host, m, &json!({"rating": "up", "score": 7}), "u1"),
            400,
            "invalid_field",
            Some("score"),
        );
        assert_error(
            &rate(&host, m, &json!({"rating": "up", "stars": 5}), "u1"),
            400,
            "invalid_field",
            None,
        );
        assert_error(
            &rate(
                &host,
                m,
                &json!({"rating": "up", "comment": "x".repeat(2_001)}),
                "u1",
            ),
            413,
            "too_large",
            Some("comment"),
        );
        assert_error(
            &rate(
                &host,
                m,
                &json!({"rating": "up", "tags": ["ok", "<script>"]}),
                "u1",
            ),
            400,
            "invalid_field",
            Some("tags[1]"),
        );
        // Another tenant cannot see the message at all.
        let r = Request::new("POST", &format!("/v1/messages/{m}/feedback"))
            .header("x-tenant-id", "other")
            .json(&json!({"rating": "up"}))
            .send(host.addr())
            .unwrap();
        assert_error(&r, 404, "message_not_found", Some("message_id"));
        // Tokens: another message's, expired, forged, malformed.
        assert_error(
            &post_with_token(&host, m, &token(&sharpe), &json!({"rating": "up"})),
            403,
            "token_wrong_message",
            Some("authorization"),
        );
        let r = Request::new("POST", &format!("/v1/messages/{m}/feedback"))
            .json(&json!({"rating": "up", "token": token(&sharpe)}))
            .send(host.addr())
            .unwrap();
        assert_error(&r, 403, "token_wrong_message", Some("token"));
        let expired = tessera_feedback::token::sign(KEY.as_bytes(), m, 1_000_000);
        assert_error(
            &post_with_token(&host, m, &expired, &json!({"rating": "up"})),
            401,
            "token_expired",
            Some("authorization"),
        );
        let forged =
            tessera_feedback::token::sign(b"not the deployment's key at all", m, 4_000_000_000);
        assert_error(
            &post_with_token(&host, m, &forged, &json!({"rating": "up"})),
            401,
            "invalid_token",
            Some("authorization"),
        );
        assert_error(
            &post_with_token(&host, m, "garbage", &json!({"rating": "up"})),
            401,
            "invalid_token",
            Some("authorization"),
        );
        // Nothing above was stored.
        assert_eq!(
            count(
                &db,
                &format!("SELECT count(*) FROM feedback WHERE message_id = '{m}'")
            ),
            2
        );
    });

    c.check(
        "concurrent ratings of one message leave exactly one current row",
        || {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (addr, m) = (host.addr(), sharpe.message.clone());
                    std::thread::spawn(move || {
                        Request::new("POST", &format!("/v1/messages/{m}/feedback"))
                            .header("x-tenant-id", T)
                            .header("x-user-id", "u1")
                            .json(&json!({"rating": "up", "comment": format!("attempt {i}")}))
                            .send(addr)
                            .unwrap()
                    })
                })
                .collect();
            for h in handles {
                let r = h.join().unwrap();
                assert!(r.status == 200 || r.status == 201, "{}", r.describe());
            }
            let m = &sharpe.message;
            assert_eq!(
                count(
                    &db,
                    &format!("SELECT count(*) FROM feedback WHERE message_id = '{m}' AND current")
                ),
                1
            );
            assert_eq!(
                count(
                    &db,
                    &format!("SELECT count(*) FROM feedback WHERE message_id = '{m}'")
                ),
                8
            );
            let r = rate(&host, &sharpe2.message, &json!({"rating": "up"}), "u1");
            assert_eq!(r.status, 201, "{}", r.describe());
        },
    );

    c.check(
        "the report clusters the rated questions, worst feedback first",
        || {
            let day = today(&db);
            let v = get(&host, &format!("/v1/feedback/report?from={day}&to={day}"));
            assert_eq!(
                (v["source"].as_str(), v["messages"].as_i64()),
                (Some("computed"), Some(4)),
                "{v}"
            );
            let clusters = v["clusters"].as_array().unwrap();
            assert_eq!(clusters.len(), 2, "{v}");
            let worst = &clusters[0];
            assert_eq!(
                (
                    worst["size"].as_i64(),
                    worst["down"].as_i64(),
                    worst["down_share"].as_f64()
                ),
                (Some(2), Some(2), Some(1.0)),
                "{worst}"
            );
            assert!(
                worst["representative"]
                    .as_str()
                    .unwrap()
                    .contains("weighted average cost of capital"),
                "{worst}"
            );
            assert!(
                worst["models"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .all(|m| m.starts_with("local/")),
                "{worst}"
            );
            assert!(
                worst["steps"]["synthesis"].as_i64().unwrap() >= 2,
                "{worst}"
            );
            assert_eq!(worst["tags"], json!({"incomplete": 1, "wrong-formula": 1}));
            assert_eq!(clusters[1]["down_share"], 0.0);
            assert!(
                clusters[1]["representative"]
                    .as_str()
                    .unwrap()
                    .contains("Sharpe"),
                "{}",
                clusters[1]
            );
            let patterns = v["patterns"].as_array().unwrap();
            assert!(
                !patterns.is_empty() && patterns.iter().all(|p| p["down"].as_i64().unwrap() > 0),
                "{v}"
            );
            assert!(
                patterns.iter().any(|p| p["pattern"]
                    .as_str()
                    .unwrap()
                    .starts_with("steps: analysis → planning")),
                "{v}"
            );
            // Only `from`: through today.
            assert_eq!(
                get(&host, &format!("/v1/feedback/report?from={day}"))["messages"],
                4
            );
            // One rater's scope; another page's scope has nothing.
            assert_eq!(
                get(
                    &host,
                    &format!("/v1/feedback/report?from={day}&to={day}&scope=user:u1")
                )["messages"],
                4
            );
            assert_eq!(
                get(
                    &host,
                    &format!("/v1/feedback/report?from={day}&to={day}&scope=page:/nowhere")
                )["messages"],
                0
            );
        },
    );

    c.check(
        "bad report parameters are JSON 400s naming the parameter",
        || {
            let bad = |q: &str, field: &str| {
                let r = Request::new("GET", &format!("/v1/feedback/report?{q}"))
                    .header("x-tenant-id", T)
                    .send(host.addr())
                    .unwrap();
                assert_error(&r, 400, "invalid_field", Some(field));
            };
            bad("from=2025-02-30", "from");
            bad("to=tomorrow", "to");
            bad("from=2025-03-02&to=2025-03-01", "from");
            bad("from=2020-01-01&to=2025-01-01", "from");
            bad("scope=everyone", "scope");
            bad("threshold=2", "threshold");
        },
    );

    let mut curated_doc = String::new();
    c.check(
        "an operator promotes a correction into the curated knowledge base",
        || {
            assert_error(
                &post(
                    &host,
                    &format!("/v1/feedback/{first_id}/promote"),
                    &json!({}),
                    "ops",
                ),
                409,
                "feedback_superseded",
                None,
            );
            let plain = db
                .query(&format!(
                    "SELECT id::text FROM feedback WHERE message_id = '{}' AND current",
                    sharpe2.message
                ))
                .unwrap()[0]
                .get::<_, String>(0);
            assert_error(
                &post(
                    &host,
                    &format!("/v1/feedback/{plain}/promote"),
                    &json!({}),
                    "ops",
                ),
                400,
                "nothing_to_promote",
                Some("edited_text"),
            );
            assert_error(
                &post(
                    &host,
                    "/v1/feedback/00000000-0000-4000-8000-000000000000/promote",
                    &json!({}),
                    "ops",
                ),
                404,
                "feedback_not_found",
                None,
            );
            let r = post(
                &host,
                &format!("/v1/feedback/{correction_id}/promote"),
                &json!({}),
                "ops",
            );
            assert_eq!(r.status, 201, "{}", r.describe());
            curated_doc = r.json()["document_id"].as_str().unwrap().to_string();
            let again = post(
                &host,
                &format!("/v1/feedback/{correction_id}/promote"),
                &json!({}),
                "ops",
            );
            assert_eq!(
                (again.status, again.json()["document_id"].as_str()),
                (200, Some(curated_doc.as_str())),
                "{}",
                again.describe()
            );
            let doc = get(&host, &format!("/v1/kb/documents/{curated_doc}"));
            assert_eq!(doc["scope"], "curated", "{doc}");
            assert_eq!(
                doc["metadata"]["feedback_id"],
                correction_id.as_str(),
                "{doc}"
            );
        },
    );

    c.check(
        "after promotion the same question retrieves the curated answer first",
        || {
            let again = ask(&host, "What is the weighted average cost of capital?", "u3");
            assert_eq!(
                again.retrieved[0]["document_id"],
                curated_doc.as_str(),
                "{:?}",
                again.retrieved
            );
            // It is the turn's source 1, as stored with the answer.
            let v = get(
                &host,
                &format!("/v1/chat/conversations/{}", again.conversation),
            );
            let answer = v["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["role"] == "assistant")
                .unwrap()
                .clone();
            assert_eq!(
                (
                    answer["sources"][0]["n"].as_i64(),
                    answer["sources"][0]["document_id"].as_str()
                ),
                (Some(1), Some(curated_doc.as_str())),
                "{answer}"
            );
            // Before promotion it was the demo document.
            assert_ne!(wacc.retrieved[0]["document_id"], curated_doc.as_str());
            // A question the correction does not answer is not led by it.
            let other = ask(&host, "What is a maximum drawdown?", "u3");
            assert_ne!(
                other.retrieved[0]["document_id"],
                curated_doc.as_str(),
                "{:?}",
                other.retrieved
            );
        },
    );

    c.check("votes per persona change the persona chat answers with", || {
        let profile = |body: Value| {
            let r = Request::new("PUT", "/v1/chat/profile").header("x-tenant-id", T).header("x-user-id", "u1").json(&body).send(host.addr()).unwrap();
            assert_eq!(r.status, 200, "{}", r.describe());
            r.json()
        };
        // u1's intermediate answers so far: 2 up, 2 down. Beginner answers all get up-votes.
        profile(json!({"skill_level": "beginner"}));
        for q in ["What is the Sortino ratio?", "What is a discounted cash flow model?", "How does CAPM give the cost of equity?"] {
            let a = ask(&host, q, "u1");
            let r = post_with_token(&host, &a.message, &token(&a), &json!({"rating": "up"}));
            assert_eq!(r.status, 201, "{}", r.describe());
        }
        let p = profile(json!({"skill_level": "intermediate"}));
        assert_eq!(p["feedback_stats"]["personas"]["beginner"], json!({"up": 3, "down": 0}), "{p}");
        assert_eq!(p["feedback_stats"]["personas"]["intermediate"], json!({"up": 2, "down": 2}), "{p}");
        assert_eq!(p["persona"], "beginner", "{p}");
        let a = ask(&host, "What is terminal value in a DCF?", "u1");
        let persona: Option<String> = db.query(&format!("SELECT persona FROM messages WHERE id = '{}'", a.message)).unwrap()[0].get(0);
        assert_eq!(persona.as_deref(), Some("beginner"));
        // Another user with no votes keeps the configured persona.
        let other: Option<String> = db.query("SELECT persona FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = 'u3' AND m.role = 'assistant' LIMIT 1").unwrap()[0].get(0);
        assert_eq!(other.as_deref(), Some("intermediate"));
    });

    c.check("the cron stores the nightly report, and the endpoint serves it", || {
        // Move the feedback into the stored window (the 30 complete days before today).
        db.execute("UPDATE feedback SET created_at = created_at - interval '2 days'");
        let stored = tessera_e2e::wait_for(Duration::from_secs(20), || {
            let rows = db.query(&format!("SELECT (report->>'messages')::int8 FROM feedback_reports WHERE tenant_id = '{T}' AND scope = 'all'")).ok()?;
            rows.first().map(|r| r.get::<_, i64>(0)).filter(|n| *n == 7)
        });
        assert_eq!(stored, Some(7), "the cron did not store the report: {:?}", db.query("SELECT tenant_id, from_day::text, to_day::text, report::text FROM feedback_reports").map(|r| r.len()));
        let v = get(&host, "/v1/feedback/report");
        assert_eq!((v["source"].as_str(), v["messages"].as_i64()), (Some("stored"), Some(7)), "{v}");
        assert_eq!(v["clusters"][0]["down"], 2, "the WACC answers lead: {v}");
        // Another complete range is computed once, then stored.
        let day = |offset: i64| db.query(&format!("SELECT ((now() AT TIME ZONE 'UTC')::date + {offset})::text")).unwrap()[0].get::<_, String>(0);
        let q = format!("/v1/feedback/report?from={}&to={}", day(-5), day(-1));
        let first = get(&host, &q);
        assert_eq!((first["source"].as_str(), first["messages"].as_i64()), (Some("computed"), Some(7)), "{first}");
        assert_eq!(get(&host, &q)["source"], "stored");
        // Today's range is always computed: nothing was rated today any more.
        let today = today(&db);
        let now = get(&host, &format!("/v1/feedback/report?from={today}&to={today}"));
        assert_eq!((now["source"].as_str(), now["messages"].as_i64()), (Some("computed"), Some(0)), "{now}");
    });

    c.finish(Some(&host));
}
