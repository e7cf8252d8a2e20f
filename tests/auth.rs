//! API keys, roles and the audit log end to end, in `keys` mode as deployed: the admin,
//! chat, feedback, validator and alert blocks of the repository's spin.toml on the real
//! host, real Postgres. No key or a bad, unknown or revoked key answers 401 (revocation
//! takes effect on the next request); identity headers a client sends with a valid key
//! change nothing; a table of routes × roles × own/other user × own/other tenant; key
//! administration (shown once, listed by prefix, rotated, revoked, the last admin key kept);
//! every write recorded in the append-only audit log.

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, Response, TempDir, TestDb, TestHost};

const A: &str = "acme";
const B: &str = "globex";

/// The manifest's head (application, variables) and the blocks of the components under
/// test, with their paths made absolute.
fn manifest() -> String {
    let root = tessera_e2e::root();
    let full = std::fs::read_to_string(root.join("spin.toml")).unwrap();
    let head = &full[..full.find("[[trigger.").expect("spin.toml has triggers")];
    let body = &full[head.len()..];
    let mut out = head.to_string();
    for name in ["chat", "feedback", "validator", "alert", "admin"] {
        let start = body
            .find(&format!("\n# {name}:"))
            .unwrap_or_else(|| panic!("spin.toml has the {name} block"));
        let rest = &body[start + 1..];
        let end = rest.find("\n\n#").map_or(rest.len(), |i| i + 1);
        out.push('\n');
        out.push_str(&rest[..end]);
    }
    out.replace(
        "source = \"target/",
        &format!("source = \"{}/target/", root.display()),
    )
}

fn host(db: &TestDb, dir: &TempDir) -> TestHost {
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest()).unwrap();
    HostCommand::with_manifest_file(db, path)
        .auth_keys()
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start()
}

/// A key made straight in the database, as `cargo xtask up` makes the first one.
fn bootstrap_key(db: &TestDb, tenant: &str, prefix: &str) -> String {
    let secret = format!("{:0>64}", tessera_e2e::random_hex());
    db.execute(&format!(
        "INSERT INTO api_keys (tenant_id, prefix, secret_hash, role, name)
         VALUES ('{tenant}', '{prefix}', encode(sha256(convert_to('{secret}', 'UTF8')), 'hex'),
                 'admin', 'bootstrap')"
    ));
    format!("tsk_{prefix}_{secret}")
}

fn send(
    host: &TestHost,
    method: &str,
    path: &str,
    key: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut r = Request::new(method, path);
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    for (n, v) in extra {
        r = r.header(n, *v);
    }
    let what = format!("{method} {path}");
    match body {
        Some(b) => r.json(b).send(host.addr()),
        None => r.send(host.addr()),
    }
    .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn call(host: &TestHost, method: &str, path: &str, key: &str, body: Option<&Value>) -> Response {
    send(host, method, path, Some(key), &[], body)
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], code, "{}", r.describe());
}

/// A key made by `admin` through the API.
fn make_key(host: &TestHost, admin: &str, role: &str, user: Option<&str>) -> (String, String) {
    let mut body = json!({ "role": role, "name": format!("{role} test key") });
    if let Some(u) = user {
        body["user_id"] = json!(u);
    }
    let r = call(host, "POST", "/v1/admin/keys", admin, Some(&body));
    assert_eq!(r.status, 201, "{}", r.describe());
    let v = r.json();
    (
        v["key"].as_str().unwrap().to_string(),
        v["prefix"].as_str().unwrap().to_string(),
    )
}

#[test]
fn api_keys_roles_and_audit() {
    let db = TestDb::new();
    let dir = TempDir::new("auth");
    let host = host(&db, &dir);
    let admin = bootstrap_key(&db, A, "a0a0a0a0a0a0");
    let admin_b = bootstrap_key(&db, B, "b0b0b0b0b0b0");
    let mut c = Checks::new("auth");

    c.check(
        "no key, a malformed key, an unknown or wrong key: 401 naming authorization",
        || {
            for (method, path) in [
                ("GET", "/v1/validator/limits"),
                ("POST", "/v1/chat/conversations"),
                ("GET", "/v1/admin/keys"),
                ("GET", "/v1/alerts/rules"),
                ("GET", "/v1/feedback/report"),
            ] {
                let r = send(
                    &host,
                    method,
                    path,
                    None,
                    &[("x-tenant-id", A)],
                    Some(&json!({})),
                );
                assert_error(&r, 401, "unauthorized");
                assert_eq!(
                    r.json()["error"]["field"],
                    "authorization",
                    "{}",
                    r.describe()
                );
            }
            let wrong_secret = format!(
                "{}{}",
                &admin[..admin.len() - 1],
                if admin.ends_with('0') { "1" } else { "0" }
            );
            for bad in [
                "tsk_nothex",
                "tsk_a0a0a0a0a0a0_short",
                "tsk_ffffffffffff_0000000000000000000000000000000000000000000000000000000000000000",
                wrong_secret.as_str(),
            ] {
                let r = call(&host, "GET", "/v1/validator/limits", bad, None);
                assert_error(&r, 401, "unauthorized");
            }
            let r = send(
                &host,
                "GET",
                "/v1/validator/limits",
                None,
                &[("authorization", "Basic YTpi")],
                None,
            );
            assert_error(&r, 401, "unauthorized");
        },
    );

    // Keys of tenant A made through the API; tenant B's member.
    let (alice, alice_prefix) = make_key(&host, &admin, "member", Some("alice"));
    let (bob, bob_prefix) = make_key(&host, &admin, "member", Some("bob"));
    let (service, _) = make_key(&host, &admin, "service", None);
    let (operator, _) = make_key(&host, &admin, "operator", Some("olga"));
    let (carol, _) = make_key(&host, &admin_b, "member", Some("carol"));

    c.check(
        "a key is shown once: the list has prefixes, roles and users, never a secret",
        || {
            let r = call(&host, "GET", "/v1/admin/keys", &admin, None);
            assert_eq!(r.status, 200, "{}", r.describe());
            let text = r.text();
            for key in [&alice, &bob, &service, &operator] {
                let secret = key.rsplit('_').next().unwrap();
                assert!(!text.contains(secret), "a secret is listed: {text}");
            }
            let keys = r.json()["keys"].as_array().unwrap().clone();
            assert_eq!(keys.len(), 5, "{text}");
            assert!(
                keys.iter()
                    .all(|k| k.get("key").is_none() && k.get("secret_hash").is_none())
            );
            let a = keys
                .iter()
                .find(|k| k["prefix"] == alice_prefix.as_str())
                .unwrap();
            assert_eq!(a["role"], "member");
            assert_eq!(a["user_id"], "alice");
            // Tenant B's admin sees only B's keys.
            let r = call(&host, "GET", "/v1/admin/keys", &admin_b, None);
            let listed = r.json()["keys"].as_array().unwrap().len();
            assert_eq!(listed, 2, "{}", r.describe());
            let stored = db
                .query(&format!(
                    "SELECT secret_hash FROM api_keys WHERE prefix = '{alice_prefix}'"
                ))
                .unwrap();
            let hash: String = stored[0].get(0);
            assert!(!alice.contains(&hash) && hash.len() == 64);
        },
    );

    c.check("bad key requests are 4xx naming the field", || {
        let r = call(
            &host,
            "POST",
            "/v1/admin/keys",
            &admin,
            Some(&json!({"role": "root"})),
        );
        assert_error(&r, 400, "invalid_field");
        assert_eq!(r.json()["error"]["field"], "role");
        let r = call(
            &host,
            "POST",
            "/v1/admin/keys",
            &admin,
            Some(&json!({"role": "member", "user_id": "a b"})),
        );
        assert_eq!(r.json()["error"]["field"], "user_id", "{}", r.describe());
        let r = call(&host, "DELETE", "/v1/admin/keys/XYZ", &admin, None);
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_eq!(r.json()["error"]["field"], "prefix");
        let r = call(&host, "DELETE", "/v1/admin/keys/ffffffffffff", &admin, None);
        assert_error(&r, 404, "key_not_found");
        let r = call(&host, "GET", "/v1/admin/audit?limit=0", &admin, None);
        assert_eq!(r.json()["error"]["field"], "limit", "{}", r.describe());
    });

    // Alice's conversation, made with forged identity headers.
    let forged = [
        ("x-tenant-id", B),
        ("x-user-id", "bob"),
        ("x-tessera-role", "admin"),
    ];
    let r = send(
        &host,
        "POST",
        "/v1/chat/conversations",
        Some(&alice),
        &forged,
        Some(&json!({"title": "mine"})),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    let conv = r.json()["id"].as_str().unwrap().to_string();
    let rows = db
        .query(&format!(
            "WITH u AS (INSERT INTO messages (conversation_id, tenant_id, role, content)
                        VALUES ('{conv}', '{A}', 'user', 'What is a Sharpe ratio?') RETURNING id)
             INSERT INTO messages (conversation_id, tenant_id, role, content, status, reply_to)
             SELECT '{conv}', '{A}', 'assistant', 'Excess return per unit of volatility.', 'completed', id FROM u
             RETURNING id::text"
        ))
        .unwrap();
    let msg: String = rows[0].get(0);

    c.check(
        "identity headers sent with a valid key change nothing",
        || {
            let rows = db
                .query(&format!(
                    "SELECT tenant_id, user_id FROM conversations WHERE id = '{conv}'"
                ))
                .unwrap();
            assert_eq!(rows[0].get::<_, String>(0), A);
            assert_eq!(rows[0].get::<_, String>(1), "alice");
            // A member claiming to be an admin of another tenant is still a member of A.
            let r = send(&host, "GET", "/v1/admin/keys", Some(&alice), &forged, None);
            assert_error(&r, 403, "forbidden");
            let r = send(
                &host,
                "PUT",
                "/v1/chat/profile",
                Some(&alice),
                &forged,
                Some(&json!({"tier": "enterprise", "monthly_budget_usd": 1000000})),
            );
            assert_error(&r, 403, "forbidden");
            // Bob's key with alice's name in the header does not reach alice's conversation.
            let r = send(
                &host,
                "GET",
                &format!("/v1/chat/conversations/{conv}"),
                Some(&bob),
                &[("x-user-id", "alice")],
                None,
            );
            assert_eq!(r.status, 404, "{}", r.describe());
        },
    );

    c.check(
        "routes × roles × own/other user × own/other tenant",
        || {
            let conv_path = format!("/v1/chat/conversations/{conv}");
            let fb_path = format!("/v1/messages/{msg}/feedback");
            // (who, key) — "other tenant" is tenant B's member, whose admin role would not help either.
            let who: [(&str, &str); 6] = [
                ("alice (member, owner)", &alice),
                ("bob (member, other user)", &bob),
                ("service", &service),
                ("operator", &operator),
                ("admin", &admin),
                ("carol (member, other tenant)", &carol),
            ];
            let b_admin = admin_b.as_str();
            // Expected status per caller, in the order of `who`; `OK`: allowed (not 401/403/5xx).
            const OK: u16 = 0;
            let table: Vec<(&str, String, Option<Value>, [u16; 6])> = vec![
                (
                    "GET",
                    conv_path.clone(),
                    None,
                    [200, 404, 404, 200, 200, 404],
                ),
                ("GET", fb_path.clone(), None, [200, 404, 404, 200, 200, 404]),
                (
                    "POST",
                    fb_path.clone(),
                    Some(json!({"rating": "up"})),
                    [OK, 404, 404, OK, OK, 404],
                ),
                (
                    "PUT",
                    "/v1/chat/profile".into(),
                    Some(json!({"skill_level": "expert"})),
                    [200, 200, 200, 200, 200, 200],
                ),
                (
                    "PUT",
                    "/v1/chat/profile".into(),
                    Some(json!({"tier": "enterprise"})),
                    [403, 403, 403, 200, 200, 403],
                ),
                (
                    "GET",
                    "/v1/usage".into(),
                    None,
                    [200, 200, 200, 200, 200, 200],
                ),
                (
                    "GET",
                    "/v1/usage?user=alice".into(),
                    None,
                    [200, 403, 403, 200, 200, 403],
                ),
                (
                    "GET",
                    "/v1/validator/limits".into(),
                    None,
                    [200, 200, 200, 200, 200, 200],
                ),
                (
                    "PUT",
                    "/v1/validator/limits".into(),
                    Some(json!({})),
                    [403, 403, 403, OK, OK, 403],
                ),
                (
                    "POST",
                    "/v1/system/circuit-breaker/resume".into(),
                    Some(json!({})),
                    [403, 403, 403, OK, OK, 403],
                ),
                (
                    "POST",
                    "/v1/portfolio/snapshots".into(),
                    Some(json!({})),
                    [403, 403, OK, OK, OK, 403],
                ),
                (
                    "GET",
                    "/v1/alerts/rules".into(),
                    None,
                    [200, 200, 200, 200, 200, 200],
                ),
                (
                    "POST",
                    "/v1/alerts/rules".into(),
                    Some(json!({})),
                    [403, 403, 403, OK, OK, 403],
                ),
                (
                    "POST",
                    "/v1/alerts/channels".into(),
                    Some(json!({})),
                    [403, 403, 403, OK, OK, 403],
                ),
                (
                    "POST",
                    "/v1/alerts/events".into(),
                    Some(json!({})),
                    [403, 403, OK, OK, OK, 403],
                ),
                (
                    "GET",
                    "/v1/feedback/report".into(),
                    None,
                    [403, 403, 403, OK, OK, 403],
                ),
                (
                    "POST",
                    "/v1/feedback/00000000-0000-4000-8000-000000000001/promote".into(),
                    Some(json!({})),
                    [403, 403, 403, OK, OK, 403],
                ),
                (
                    "GET",
                    "/v1/admin/keys".into(),
                    None,
                    [403, 403, 403, 403, 200, 403],
                ),
                (
                    "GET",
                    "/v1/admin/audit".into(),
                    None,
                    [403, 403, 403, 403, 200, 403],
                ),
            ];
            let mut wrong = Vec::new();
            for (method, path, body, expected) in &table {
                for ((name, key), want) in who.iter().zip(expected) {
                    let r = call(&host, method, path, key, body.as_ref());
                    let fine = match *want {
                        // Past authentication and the role check (the handler may still refuse
                        // the body or find nothing).
                        OK => ![401, 403].contains(&r.status) && r.status < 500,
                        s => r.status == s,
                    };
                    if !fine {
                        wrong.push(format!(
                            "{method} {path} as {name}: want {want} got {}",
                            r.describe()
                        ));
                    }
                }
            }
            // Tenant B's admin: everything of tenant A is invisible.
            for path in [conv_path.clone(), fb_path.clone()] {
                let r = call(&host, "GET", &path, b_admin, None);
                if r.status != 404 {
                    wrong.push(format!("GET {path} as B's admin: {}", r.describe()));
                }
            }
            assert!(
                wrong.is_empty(),
                "{} wrong:\n{}",
                wrong.len(),
                wrong.join("\n")
            );
        },
    );

    c.check(
        "revocation takes effect on the next request; rotation replaces the key",
        || {
            let r = call(&host, "GET", "/v1/usage", &bob, None);
            assert_eq!(r.status, 200, "{}", r.describe());
            let r = call(
                &host,
                "DELETE",
                &format!("/v1/admin/keys/{bob_prefix}"),
                &admin,
                None,
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            assert!(r.json()["revoked_at"].is_string());
            let r = call(&host, "GET", "/v1/usage", &bob, None);
            assert_error(&r, 401, "unauthorized");
            let r = call(
                &host,
                "DELETE",
                &format!("/v1/admin/keys/{bob_prefix}"),
                &admin,
                None,
            );
            assert_error(&r, 409, "key_revoked");

            let r = call(
                &host,
                "POST",
                &format!("/v1/admin/keys/{alice_prefix}/rotate"),
                &admin,
                None,
            );
            assert_eq!(r.status, 201, "{}", r.describe());
            let v = r.json();
            let new_key = v["key"].as_str().unwrap().to_string();
            assert_eq!(v["role"], "member");
            assert_eq!(v["user_id"], "alice");
            assert_eq!(v["rotated_from"], alice_prefix.as_str());
            assert_error(
                &call(&host, "GET", "/v1/usage", &alice, None),
                401,
                "unauthorized",
            );
            let r = call(
                &host,
                "GET",
                &format!("/v1/chat/conversations/{conv}"),
                &new_key,
                None,
            );
            assert_eq!(
                r.status,
                200,
                "the rotated key is still alice: {}",
                r.describe()
            );
        },
    );

    c.check(
        "a key past its requests per minute gets 429 with Retry-After and RateLimit-*",
        || {
            let body = json!({"role": "member", "user_id": "rl", "rate_limit_per_minute": 3});
            let r = call(&host, "POST", "/v1/admin/keys", &admin, Some(&body));
            assert_eq!(r.status, 201, "{}", r.describe());
            assert_eq!(r.json()["rate_limit_per_minute"], 3);
            let limited = r.json()["key"].as_str().unwrap().to_string();
            // 7 requests: however a minute boundary splits them, one minute holds at least 4.
            let answers: Vec<Response> = (0..7)
                .map(|_| call(&host, "GET", "/v1/usage", &limited, None))
                .collect();
            for r in &answers[..3] {
                assert_eq!(r.status, 200, "{}", r.describe());
            }
            let refused = answers
                .iter()
                .find(|r| r.status == 429)
                .unwrap_or_else(|| panic!("no 429 in 7 requests at 3 per minute"));
            assert_error(refused, 429, "rate_limited");
            let retry: u32 = refused.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "{}", refused.describe());
            assert_eq!(refused.header("ratelimit-limit"), Some("3"));
            assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
            assert_eq!(
                refused.header("ratelimit-reset"),
                Some(retry.to_string().as_str())
            );
            // Other keys are not limited by it.
            assert_eq!(call(&host, "GET", "/v1/usage", &operator, None).status, 200);
            let r = call(
                &host,
                "POST",
                "/v1/admin/keys",
                &admin,
                Some(&json!({"role": "member", "rate_limit_per_minute": 0})),
            );
            assert_eq!(
                r.json()["error"]["field"],
                "rate_limit_per_minute",
                "{}",
                r.describe()
            );
        },
    );

    c.check("the tenant's last admin key cannot be revoked", || {
        let r = call(
            &host,
            "DELETE",
            "/v1/admin/keys/b0b0b0b0b0b0",
            &admin_b,
            None,
        );
        assert_error(&r, 409, "last_admin_key");
        let r = call(&host, "DELETE", "/v1/admin/keys/b0b0b0b0b0b0", &admin, None);
        assert_error(&r, 404, "key_not_found");
    });

    c.check(
        "writes are audited with key, tenant, route, target and result; reads are not",
        || {
            let r = call(
                &host,
                "GET",
                &format!("/v1/admin/audit?key_prefix={alice_prefix}"),
                &admin,
                None,
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let entries = r.json()["entries"].as_array().unwrap().clone();
            assert!(entries.iter().all(|e| e["method"] != "GET"), "{entries:?}");
            let created = entries
                .iter()
                .find(|e| e["route"] == "/v1/chat/conversations" && e["method"] == "POST")
                .unwrap_or_else(|| panic!("no audit row for the conversation: {entries:?}"));
            assert_eq!(created["status"], 201);
            assert_eq!(created["user_id"], "alice");
            assert_eq!(created["role"], "member");
            assert!(created["request_id"].is_string(), "{created}");
            let refused = entries
                .iter()
                .find(|e| e["route"] == "/v1/chat/profile" && e["status"] == 403)
                .unwrap_or_else(|| {
                    panic!("no audit row for the refused profile change: {entries:?}")
                });
            assert_eq!(refused["method"], "PUT");
            // Revocation names the key it revoked.
            let r = call(
                &host,
                "GET",
                "/v1/admin/audit?method=DELETE&status=200",
                &admin,
                None,
            );
            let entries = r.json()["entries"].as_array().unwrap().clone();
            assert!(
                entries
                    .iter()
                    .any(|e| e["target_id"] == bob_prefix.as_str()),
                "{entries:?}"
            );
            // Tenant B's audit holds none of A's rows.
            let r = call(
                &host,
                "GET",
                "/v1/admin/audit?route=/v1/chat",
                &admin_b,
                None,
            );
            let entries = r.json()["entries"].as_array().unwrap().clone();
            assert!(
                entries.iter().all(|e| e["user_id"] != "alice"),
                "{entries:?}"
            );
            // Append-only, for the application's own role too.
            assert!(db.query("UPDATE audit_log SET status = 200").is_err());
            assert!(db.query("DELETE FROM audit_log").is_err());
        },
    );

    c.finish(Some(&host));
}

/// Behind an authenticating gateway (`auth_mode = "trusted-headers"`) the headers decide,
/// `x-tessera-role` included; a component whose manifest does not declare `auth_mode` at all
/// fails closed to keys.
#[test]
fn trusted_headers_mode_and_failing_closed() {
    let db = TestDb::new();
    let dir = TempDir::new("auth-trusted");
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest()).unwrap();
    let trusted = HostCommand::with_manifest_file(&db, path)
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start();
    let mut c = Checks::new("auth-trusted");
    c.check(
        "trusted headers: the role header decides, admin when absent",
        || {
            let put = |role: Option<&str>| {
                let mut h = vec![("x-tenant-id", A)];
                if let Some(r) = role {
                    h.push(("x-tessera-role", r));
                }
                send(
                    &trusted,
                    "PUT",
                    "/v1/validator/limits",
                    None,
                    &h,
                    Some(&json!({})),
                )
            };
            assert_error(&put(Some("member")), 403, "forbidden");
            assert!(
                put(Some("member")).json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("operator")
            );
            assert!(![401, 403].contains(&put(Some("operator")).status));
            assert!(![401, 403].contains(&put(None).status));
            let r = put(Some("root"));
            assert_eq!(r.status, 400, "{}", r.describe());
            assert_eq!(r.json()["error"]["field"], "x-tessera-role");
        },
    );
    c.finish(Some(&trusted));
    drop(trusted);

    // The validator block alone, without the auth_mode mapping.
    let undeclared = format!(
        r#"spin_manifest_version = 2
[application]
name = "undeclared"
[variables]
database_url = {{ required = true, secret = true }}
[[trigger.http]]
route = "/v1/validator/..."
component = "validator"
[component.validator]
source = "WASM:validator"
allowed_outbound_hosts = ["postgres://{}"]
[component.validator.variables]
db_url = "{{{{ database_url }}}}"
"#,
        db.host_port()
    );
    let host = HostCommand::new(&db, &undeclared).auth_keys().start();
    let mut c = Checks::new("auth-undeclared");
    c.check("a component without auth_mode requires keys", || {
        let r = send(
            &host,
            "GET",
            "/v1/validator/limits",
            None,
            &[("x-tenant-id", A)],
            None,
        );
        assert_error(&r, 401, "unauthorized");
    });
    c.finish(Some(&host));
}
