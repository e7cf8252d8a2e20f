//! One error shape for every fault, end to end on the repository's spin.toml and the real
//! host (issue 12): NUL characters refused up front naming the field, echoed input cut,
//! non-JSON bodies refused with 415, the same code for the same fault in kb, chat and
//! feedback, database errors answered without their internals (503 with `retry-after` when
//! the database cannot be reached), and chat turns that were cut off closed instead of
//! blocking their conversation.

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, Response, TestDb, TestHost};

/// One host at a time: the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const T: &str = "acme";

fn host(db: &TestDb) -> TestHost {
    HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start()
}

/// `method path` with a JSON body (content-type: application/json).
fn send_json(host: &TestHost, method: &str, path: &str, body: &Value) -> Response {
    Request::new(method, path)
        .header("x-tenant-id", T)
        .header("x-user-id", "u1")
        .json(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// `method path` with raw bytes and the given content type (none when `None`).
fn send_raw(
    host: &TestHost,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Response {
    let mut r = Request::new(method, path)
        .header("x-tenant-id", T)
        .header("x-user-id", "u1");
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    r.body(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn get(host: &TestHost, path: &str) -> Response {
    Request::new("GET", path)
        .header("x-tenant-id", T)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Asserts the JSON error shape, status, code and field; returns the error object.
fn assert_error(r: &Response, status: u16, code: &str, field: Option<&str>) -> Value {
    assert_eq!(r.status, status, "{}", r.describe());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{}",
        r.describe()
    );
    let e = r.json()["error"].clone();
    assert_eq!(e["code"], code, "{}", r.describe());
    assert!(e["message"].is_string(), "{e}");
    if let Some(f) = field {
        assert_eq!(e["field"], f, "{}", r.describe());
    }
    e
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).unwrap()[0].get::<_, i64>(0)
}

fn conversation(host: &TestHost) -> String {
    let r = send_json(
        host,
        "POST",
        "/v1/chat/conversations",
        &json!({"title": "errors"}),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    r.json()["id"].as_str().unwrap().to_string()
}

/// A finished exchange written straight into the database: (user message, answer).
fn answered(db: &TestDb, conv: &str) -> (String, String) {
    let rows = db
        .query(&format!(
            "WITH u AS (INSERT INTO messages (conversation_id, tenant_id, role, content)
                        VALUES ('{conv}', '{T}', 'user', 'What is a Sharpe ratio?') RETURNING id)
             INSERT INTO messages (conversation_id, tenant_id, role, content, status, reply_to)
             SELECT '{conv}', '{T}', 'assistant', 'Excess return per unit of volatility.', 'completed', id FROM u
             RETURNING reply_to::text, id::text"
        ))
        .unwrap();
    (rows[0].get(0), rows[0].get(1))
}

/// A turn left `running` `age_s` seconds ago with a running and a pending step, as a turn
/// the host's deadline cut off leaves it. Returns the assistant message's id. One
/// statement, so a sweep running meanwhile sees all of it or none (a turn whose steps were
/// not written yet would be closed alone, leaving them running).
fn running_turn(db: &TestDb, conv: &str, age_s: i64) -> String {
    let rows = db
        .query(&format!(
            "WITH u AS (INSERT INTO messages (conversation_id, tenant_id, role, content, created_at, updated_at)
                        VALUES ('{conv}', '{T}', 'user', 'cut off', now() - interval '{age_s} seconds',
                                now() - interval '{age_s} seconds') RETURNING id),
                  a AS (INSERT INTO messages (conversation_id, tenant_id, role, status, reply_to, created_at, updated_at)
                        SELECT '{conv}'::uuid, '{T}', 'assistant', 'running', id, now() - interval '{age_s} seconds',
                               now() - interval '{age_s} seconds' FROM u RETURNING id),
                  c AS (UPDATE conversations SET next_step = next_step + 2 WHERE id = '{conv}'
                        RETURNING next_step - 2 AS n),
                  s AS (INSERT INTO steps (conversation_id, message_id, tenant_id, n, ordinal, kind, status, started_at)
                        SELECT '{conv}'::uuid, a.id, '{T}', c.n, 0, 'analysis', 'running', now() - interval '{age_s} seconds'
                        FROM a, c
                        UNION ALL
                        SELECT '{conv}'::uuid, a.id, '{T}', c.n + 1, 1, 'planning', 'pending', NULL::timestamptz FROM a, c)
             SELECT id::text FROM a"
        ))
        .unwrap();
    rows[0].get(0)
}

fn status_of(db: &TestDb, message: &str) -> (String, Option<String>) {
    let rows = db
        .query(&format!(
            "SELECT status, error FROM messages WHERE id = '{message}'"
        ))
        .unwrap();
    (rows[0].get(0), rows[0].get(1))
}

fn step_statuses(db: &TestDb, message: &str) -> Vec<(String, Option<String>)> {
    db.query(&format!(
        "SELECT status, error FROM steps WHERE message_id = '{message}' ORDER BY ordinal"
    ))
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[test]
fn errors_have_one_shape() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let db = TestDb::new();
    let host = host(&db);
    let mut c = Checks::new("errors");
    let conv = conversation(&host);
    let (_, answer) = answered(&db, &conv);
    let some_id = "00000000-0000-4000-8000-000000000000";

    c.check("a NUL character anywhere is a 400 naming the field", || {
        let conversations = count(&db, "SELECT count(*) FROM conversations");
        let nul = "a\u{0}b";
        let bodies: [(&str, Value, &str); 11] = [
            ("/v1/chat/conversations", json!({"title": nul}), "title"),
            (
                "/v1/chat/conversations",
                json!({"title": "t", "context": {"project": nul}}),
                "context.project",
            ),
            (
                &format!("/v1/chat/conversations/{conv}/messages"),
                json!({"content": nul}),
                "content",
            ),
            (
                &format!("/v1/chat/conversations/{conv}/steps/1/edit"),
                json!({"instructions": nul}),
                "instructions",
            ),
            (
                &format!("/v1/messages/{answer}/feedback"),
                json!({"rating": "down", "comment": nul}),
                "comment",
            ),
            (
                &format!("/v1/messages/{answer}/feedback"),
                json!({"rating": "down", "edited_text": nul}),
                "edited_text",
            ),
            (
                &format!("/v1/feedback/{some_id}/promote"),
                json!({"title": nul}),
                "title",
            ),
            (
                "/v1/kb/search",
                json!({"query": "q", "filter": {"ticker": nul}}),
                "filter.ticker",
            ),
            (
                "/v1/kb/documents",
                json!({"title": "t", "content": nul}),
                "content",
            ),
            (
                "/v1/kb/documents",
                json!({"title": "t", "content": "c", "metadata": {"tags": ["x", nul]}}),
                "metadata.tags[1]",
            ),
            ("/v1/embeddings", json!({"input": [nul]}), "input[0]"),
        ];
        for (path, body, field) in bodies {
            let r = send_json(&host, "POST", path, &body);
            assert_error(&r, 400, "invalid_field", Some(field));
        }
        for (path, field) in [
            ("/v1/feedback/report?scope=page:/x%00y".to_string(), "scope"),
            ("/v1/usage?period=all&user=u%00".into(), "user"),
            (format!("/v1/kb/documents/{some_id}?chunks=%00"), "chunks"),
        ] {
            assert_error(&get(&host, &path), 400, "invalid_field", Some(field));
        }
        assert_eq!(
            count(&db, "SELECT count(*) FROM conversations"),
            conversations
        );
        assert_eq!(count(&db, "SELECT count(*) FROM feedback"), 0);
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents"), 0);
    });

    c.check("echoed input is cut short", || {
        // Just under the kb's 8 MiB body limit: refused for its scope, not its size.
        let huge = "s".repeat(7 << 20);
        let r = send_json(
            &host,
            "POST",
            "/v1/kb/documents",
            &json!({"title": "t", "content": "c", "scope": huge}),
        );
        let e = assert_error(&r, 400, "invalid_value", Some("scope"));
        assert!(r.body.len() < 1024, "{} bytes: {e}", r.body.len());
        let long = "m".repeat(50_000);
        for (path, body, field) in [
            (
                "/v1/kb/search".to_string(),
                json!({"query": "q", "mode": long}),
                "mode",
            ),
            (
                format!("/v1/messages/{answer}/feedback"),
                json!({"rating": long}),
                "rating",
            ),
        ] {
            let r = send_json(&host, "POST", &path, &body);
            assert_eq!(r.status, 400, "{}", r.describe());
            assert_eq!(r.json()["error"]["field"], field);
            assert!(r.body.len() < 1024, "{path}: {} bytes", r.body.len());
        }
    });

    c.check("a body that is not JSON is refused with 415", || {
        let conversations = count(&db, "SELECT count(*) FROM conversations");
        let feedback = format!("/v1/messages/{answer}/feedback");
        for (path, content_type, body) in [
            (
                "/v1/chat/conversations",
                "text/plain;charset=UTF-8",
                br#"{"title": "csrf"}"# as &[u8],
            ),
            (
                "/v1/kb/search",
                "application/x-www-form-urlencoded",
                b"query=x",
            ),
            (feedback.as_str(), "text/plain", br#"{"rating": "up"}"#),
            (
                "/v1/embeddings",
                "multipart/form-data; boundary=x",
                b"--x--",
            ),
        ] {
            let r = send_raw(&host, "POST", path, Some(content_type), body);
            assert_error(&r, 415, "unsupported_media_type", Some("content-type"));
        }
        let r = send_raw(
            &host,
            "PUT",
            "/v1/chat/profile",
            Some("text/plain"),
            br#"{"skill_level": "expert"}"#,
        );
        assert_error(&r, 415, "unsupported_media_type", Some("content-type"));
        assert_eq!(
            count(&db, "SELECT count(*) FROM conversations"),
            conversations
        );
        assert_eq!(count(&db, "SELECT count(*) FROM feedback"), 0);
        // JSON with parameters, and no content type at all (curl, scripts), are accepted.
        for content_type in [Some("application/json; charset=utf-8"), None] {
            let r = send_raw(
                &host,
                "POST",
                "/v1/chat/conversations",
                content_type,
                br#"{"title": "ok"}"#,
            );
            assert_eq!(r.status, 201, "{content_type:?}: {}", r.describe());
        }
    });

    c.check(
        "a malformed id is 400 invalid_id in every component",
        || {
            for (method, path, field) in [
                ("GET", "/v1/kb/documents/not-a-uuid", "id"),
                ("DELETE", "/v1/kb/documents/not-a-uuid", "id"),
                (
                    "GET",
                    "/v1/chat/conversations/not-a-uuid",
                    "conversation_id",
                ),
                ("GET", "/v1/messages/not-a-uuid/feedback", "message_id"),
            ] {
                let r = host.send(Request::new(method, path).header("x-tenant-id", T));
                assert_error(&r, 400, "invalid_id", Some(field));
            }
            for (path, body, field) in [
                (
                    "/v1/chat/conversations/not-a-uuid/messages",
                    json!({"content": "hi"}),
                    "conversation_id",
                ),
                (
                    "/v1/chat/conversations/not-a-uuid/steps/1/edit",
                    json!({"instructions": "x"}),
                    "conversation_id",
                ),
                (
                    "/v1/messages/not-a-uuid/feedback",
                    json!({"rating": "up"}),
                    "message_id",
                ),
                ("/v1/feedback/not-a-uuid/promote", json!({}), "feedback_id"),
            ] {
                let r = send_json(&host, "POST", path, &body);
                assert_error(&r, 400, "invalid_id", Some(field));
            }
        },
    );

    c.check("malformed JSON is invalid_json in every component", || {
        for (method, path) in [
            ("POST", "/v1/kb/search".to_string()),
            ("POST", "/v1/kb/documents".into()),
            ("POST", "/v1/embeddings".into()),
            ("POST", "/v1/chat/conversations".into()),
            ("POST", format!("/v1/chat/conversations/{conv}/messages")),
            (
                "POST",
                format!("/v1/chat/conversations/{conv}/steps/1/edit"),
            ),
            ("PUT", "/v1/chat/profile".into()),
            ("POST", format!("/v1/messages/{answer}/feedback")),
            ("POST", format!("/v1/feedback/{some_id}/promote")),
        ] {
            let r = send_raw(&host, method, &path, Some("application/json"), b"{nope");
            assert_error(&r, 400, "invalid_json", None);
        }
    });

    c.check(
        "usage and the report refuse a range that ends before it starts",
        || {
            for path in [
                "/v1/usage?from=2024-03-02&to=2024-03-01",
                "/v1/feedback/report?from=2024-03-02&to=2024-03-01",
            ] {
                assert_error(&get(&host, path), 400, "invalid_field", Some("from"));
            }
            // Not a day of the calendar: refused here, not by Postgres.
            assert_error(
                &get(&host, "/v1/usage?from=2024-02-30&to=2024-03-01"),
                400,
                "invalid_field",
                Some("from"),
            );
            let r = get(&host, "/v1/usage?from=2024-03-01&to=2024-03-01");
            assert_eq!(r.status, 200, "{}", r.describe());
        },
    );

    c.check(
        "a database error is a generic 500 naming the request; its detail is logged",
        || {
            db.execute("ALTER TABLE llm_calls RENAME TO llm_calls_hidden");
            let r = host.send(
                Request::new("GET", "/v1/usage?period=all")
                    .header("x-tenant-id", T)
                    .header("x-request-id", "errors-test-1"),
            );
            db.execute("ALTER TABLE llm_calls_hidden RENAME TO llm_calls");
            let e = assert_error(&r, 500, "internal_error", None);
            let body = r.text();
            for internal in ["llm_calls", "42P01", "relation", "SELECT"] {
                assert!(!body.contains(internal), "{internal} in {body}");
            }
            // The request id the host set (or the one sent, if the host passes it on).
            let message = e["message"].as_str().unwrap();
            let id = message
                .strip_prefix("internal error (request ")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("no request id in {message:?}"));
            let logged = tessera_e2e::wait_for(Duration::from_secs(5), || {
                host.output()
                    .lines()
                    .any(|l| l.contains(&format!("request {id}")) && l.contains("llm_calls"))
                    .then_some(())
            });
            assert!(
                logged.is_some(),
                "no log line for request {id} with the database's message"
            );
        },
    );

    c.check(
        "a turn cut off long ago is closed, and the conversation takes a new post",
        || {
            let stale = running_turn(&db, &conv, 600);
            let r = send_json(
                &host,
                "POST",
                &format!("/v1/chat/conversations/{conv}/messages"),
                &json!({"content": "What is a Sortino ratio?"}),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let text = r.text();
            assert!(
                text.contains("event: start") && text.contains("event: finish"),
                "{text}"
            );
            let (status, error) = status_of(&db, &stale);
            assert_eq!(status, "failed");
            assert!(error.is_some_and(|e| e.contains("cut off")));
            let steps = step_statuses(&db, &stale);
            let statuses: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
            assert_eq!(statuses, ["failed", "skipped"]);
            assert!(steps.iter().all(|(_, e)| e.is_some()), "{steps:?}");
        },
    );

    c.check("a step of a turn cut off long ago can be edited", || {
        let cut = conversation(&host);
        let stale = running_turn(&db, &cut, 600);
        let planning = count(
            &db,
            &format!(
                "SELECT n::int8 FROM steps WHERE message_id = '{stale}' AND kind = 'planning'"
            ),
        );
        let r = send_json(
            &host,
            "POST",
            &format!("/v1/chat/conversations/{cut}/steps/{planning}/edit"),
            &json!({"instructions": "shorter", "mode": "preview"}),
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["step"], planning);
        assert_eq!(status_of(&db, &stale).0, "failed");
    });

    c.check(
        "a turn still within the deadline keeps its conversation busy (409)",
        || {
            let busy = conversation(&host);
            let live = running_turn(&db, &busy, 1);
            let r = send_json(
                &host,
                "POST",
                &format!("/v1/chat/conversations/{busy}/messages"),
                &json!({"content": "hello?"}),
            );
            assert_error(&r, 409, "turn_running", None);
            assert_eq!(status_of(&db, &live).0, "running");
            db.execute(&format!(
                "UPDATE messages SET status = 'failed' WHERE id = '{live}'"
            ));
        },
    );

    c.finish(Some(&host));
}

/// chat-sweep closes stale turns of every conversation on its schedule (every second here),
/// and leaves a live one alone.
#[test]
fn sweep_closes_stale_turns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let db = TestDb::new();
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-sweep"

[variables]
database_url = {{ required = true, secret = true }}

[[trigger.cron]]
component = "chat-sweep"
cron_expression = "*/1 * * * * *"

[[trigger.http]]
route = "/hello"
component = "hello"

[component.chat-sweep]
source = "WASM:chat-sweep"
allowed_outbound_hosts = ["postgres://{}"]
[component.chat-sweep.variables]
db_url = "{{{{ database_url }}}}"

[component.hello]
source = "WASM:hello"
"#,
        db.host_port()
    );
    let host = HostCommand::new(&db, &manifest).start();
    let mut c = Checks::new("sweep");
    db.execute(&format!(
        "INSERT INTO conversations (id, tenant_id, user_id) VALUES
         ('00000000-0000-4000-8000-00000000000a', '{T}', 'u1'),
         ('00000000-0000-4000-8000-00000000000b', '{T}', 'u1')"
    ));
    let stale = running_turn(&db, "00000000-0000-4000-8000-00000000000a", 600);
    let live = running_turn(&db, "00000000-0000-4000-8000-00000000000b", 0);

    c.check("a stale turn is marked failed with its steps", || {
        let closed = tessera_e2e::wait_for(Duration::from_secs(10), || {
            (status_of(&db, &stale).0 == "failed").then_some(())
        });
        assert!(closed.is_some(), "still {:?}", status_of(&db, &stale));
        let steps: Vec<String> = step_statuses(&db, &stale)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(steps, ["failed", "skipped"]);
    });

    c.check("a live turn is left running", || {
        assert_eq!(status_of(&db, &live).0, "running");
        let steps: Vec<String> = step_statuses(&db, &live)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(steps, ["running", "pending"]);
    });

    c.finish(Some(&host));
}

/// With the database unreachable every component answers 503 `database_unavailable` with
/// `retry-after`, and nothing of the connection error.
#[test]
fn database_unavailable_is_503() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let db = TestDb::new();
    // A port nothing listens on: the components' database is down (the host's own
    // migrations still use the test database).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("postgres://tessera@127.0.0.1:{port}/gone");
    let host = HostCommand::with_manifest_file(&db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_URL", &down)
        .start();
    let mut c = Checks::new("database down");
    let id = "00000000-0000-4000-8000-000000000000";

    c.check("kb, chat and feedback answer 503 with retry-after", || {
        let requests = [
            Request::new(
                "GET",
                "/v1/chat/conversations/00000000-0000-4000-8000-000000000000",
            ),
            Request::new("GET", "/v1/usage"),
            Request::new(
                "GET",
                "/v1/kb/documents/00000000-0000-4000-8000-000000000000",
            ),
            Request::new("GET", "/v1/feedback/report"),
        ];
        for req in requests {
            let what = format!("{} {}", req.method, req.path);
            let r = host.send(req.header("x-tenant-id", T));
            let e = assert_error(&r, 503, "database_unavailable", None);
            assert_eq!(r.header("retry-after"), Some("1"), "{what}");
            let body = r.text();
            for internal in [port.to_string().as_str(), "refused", "gone", "tessera@"] {
                assert!(!body.contains(internal), "{what}: {internal} in {e}");
            }
        }
        let r = send_json(
            &host,
            "POST",
            &format!("/v1/messages/{id}/feedback"),
            &json!({"rating": "up"}),
        );
        assert_error(&r, 503, "database_unavailable", None);
        assert_eq!(r.header("retry-after"), Some("1"));
    });

    c.finish(Some(&host));
}
