//! Observability of the host: `/metrics` per component and manifest route, W3C trace
//! context from the client through the component to its outbound requests (external and
//! `http://self`), spans exported over OTLP to a collector double, JSON log lines with the
//! request and trace ids, and no secret in the host's output.

use serde_json::Value;
use tessera_e2e::http::{Request, encode};
use tessera_e2e::otlp::{Exported, spans_when};
use tessera_e2e::{Checks, HostCommand, TestDb, TestServer};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// `(trace id, parent id)` of a valid version-00 `traceparent`, else a panic naming it.
fn parts(traceparent: &str) -> (String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(
        fields.len() == 4
            && fields[0] == "00"
            && hex(fields[1], 32)
            && hex(fields[2], 16)
            && hex(fields[3], 2)
            && fields[1] != "0".repeat(32)
            && fields[2] != "0".repeat(16),
        "not a valid traceparent: {traceparent:?}"
    );
    (fields[1].to_string(), fields[2].to_string())
}

/// The value of the line `<series> <value>` in a metrics text, if present.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

#[test]
fn metrics_count_requests_per_route_with_latency_histograms() {
    let upstream = TestServer::start("pong");
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-metrics"

[[trigger.http]]
route = "/hello"
component = "hello"

[[trigger.http]]
route = "/users/:id"
component = "echo"

[[trigger.http]]
route = "/outbound"
component = "outbound"

[component.hello]
source = "WASM:hello"

[component.echo]
source = "WASM:echo"

[component.outbound]
source = "WASM:outbound"
allowed_outbound_hosts = ["{}"]
"#,
        upstream.origin()
    );
    let db = TestDb::new();
    // spin2 is a Spin app of its own making: it creates its table.
    let host = HostCommand::new(&db, &manifest)
        .components_as_owner()
        .start();
    let mut c = Checks::new("metrics");

    for _ in 0..3 {
        assert_eq!(host.get("/hello").status, 200);
    }
    for id in ["1", "2"] {
        assert_eq!(host.get(&format!("/users/{id}")).status, 200);
    }
    assert_eq!(host.get("/no/such/route").status, 404);
    let url = format!("{}/ping", upstream.origin());
    assert_eq!(
        host.get(&format!("/outbound?url={}", encode(&url))).status,
        200
    );
    // Denied: not in allowed_outbound_hosts.
    assert_eq!(
        host.get(&format!("/outbound?url={}", encode("http://127.0.0.1:9/x")))
            .status,
        502
    );
    let metrics = host.get("/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.describe());
    let text = metrics.text();

    c.check("requests per component, manifest route and status class", || {
        let hello = r#"component="hello",route="/hello",source="client""#;
        let users = r#"component="echo",route="/users/:id",source="client""#;
        let outbound = r#"component="outbound",route="/outbound",source="client""#;
        for (series, want) in [
            (format!(r#"tessera_http_requests_total{{{hello},status="2xx"}}"#), 3),
            (format!(r#"tessera_http_requests_total{{{users},status="2xx"}}"#), 2),
            (format!(r#"tessera_http_requests_total{{{outbound},status="2xx"}}"#), 1),
            (format!(r#"tessera_http_requests_total{{{outbound},status="5xx"}}"#), 1),
            (
                r#"tessera_http_requests_total{component="(host)",route="(none)",source="client",status="4xx"}"#
                    .to_string(),
                1,
            ),
        ] {
            assert_eq!(sample(&text, &series), Some(want), "{series} in\n{text}");
        }
        // The route pattern is the label, never the raw path.
        assert!(!text.contains("/users/1"), "{text}");
        assert!(!text.contains("/no/such/route"), "{text}");
        // /metrics itself is not counted.
        assert!(!text.contains(r#"route="/metrics""#), "{text}");
    });

    c.check(
        "latency histogram per route: cumulative buckets, +Inf = count",
        || {
            let labels = r#"component="hello",route="/hello",source="client""#;
            let prefix = format!("tessera_http_request_duration_seconds_bucket{{{labels},le=\"");
            let buckets: Vec<(String, u64)> = text
                .lines()
                .filter_map(|line| {
                    let rest = line.strip_prefix(&prefix)?;
                    let (le, value) = rest.split_once("\"} ")?;
                    Some((le.to_string(), value.parse().ok()?))
                })
                .collect();
            assert!(
                buckets.len() >= 5,
                "buckets of {labels}: {buckets:?}\n{text}"
            );
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "buckets must be cumulative: {buckets:?}"
            );
            assert_eq!(
                buckets.last(),
                Some(&("+Inf".to_string(), 3)),
                "{buckets:?}"
            );
            let count = format!("tessera_http_request_duration_seconds_count{{{labels}}}");
            assert_eq!(sample(&text, &count), Some(3), "{text}");
            let sum = format!("tessera_http_request_duration_seconds_sum{{{labels}}} ");
            assert!(text.contains(&sum), "{text}");
            assert!(
                text.contains("# TYPE tessera_http_request_duration_seconds histogram\n"),
                "{text}"
            );
        },
    );

    c.check(
        "instances created and reused add up to the requests",
        || {
            let created = sample(
                &text,
                r#"tessera_instances_created_total{component="hello"}"#,
            )
            .expect("created");
            let reused = sample(
                &text,
                r#"tessera_instances_reused_total{component="hello"}"#,
            )
            .expect("reused");
            // Every request starts on an instance, new or reused; an instance may be made for a
            // request that another then takes, so created + reused is at least the requests.
            assert!(created >= 1, "{text}");
            assert!(created + reused >= 3, "created {created} reused {reused}");
            assert!(reused <= 2, "created {created} reused {reused}");
        },
    );

    c.check("outbound calls per destination host and status class", || {
        let series = format!(
            r#"tessera_outbound_http_requests_total{{component="outbound",host="{}",status="2xx"}}"#,
            upstream.addr()
        );
        assert_eq!(sample(&text, &series), Some(1), "{series} in\n{text}");
        assert_eq!(
            sample(
                &text,
                r#"tessera_outbound_http_denied_total{component="outbound"}"#
            ),
            Some(1),
            "{text}"
        );
        // The denied destination is no label.
        assert!(!text.contains("127.0.0.1:9\""), "{text}");
    });

    c.finish(Some(&host));
}

#[test]
fn trace_context_reaches_the_component_and_its_outbound_requests() {
    let upstream = TestServer::start("pong");
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-trace"

[[trigger.http]]
route = "/echo/..."
component = "echo"

[[trigger.http]]
route = "/outbound"
component = "outbound"

[[trigger.http]]
route = "/spin2/..."
component = "spin2"

[component.echo]
source = "WASM:echo"

[component.outbound]
source = "WASM:outbound"
allowed_outbound_hosts = ["{origin}", "http://self"]

[component.spin2]
source = "WASM:spin2"
allowed_outbound_hosts = ["{origin}"]
"#,
        origin = upstream.origin()
    );
    let db = TestDb::new();
    // spin2 is a Spin app of its own making: it creates its table.
    let host = HostCommand::new(&db, &manifest)
        .components_as_owner()
        .start();
    let mut c = Checks::new("trace");
    let echoed = |traceparent: Option<&str>| -> String {
        let mut req = Request::new("GET", "/echo/x");
        if let Some(value) = traceparent {
            req = req.header("traceparent", value);
        }
        let r = host.send(req);
        assert_eq!(r.status, 200, "{}", r.describe());
        let j = r.json();
        j["headers"]["traceparent"]
            .as_str()
            .unwrap_or_else(|| panic!("the component got no traceparent: {j}"))
            .to_string()
    };

    c.check(
        "a valid traceparent from the client is continued: same trace, the host's span as parent",
        || {
            let got = echoed(Some(CLIENT_TRACEPARENT));
            let (trace, parent) = parts(&got);
            assert_eq!(trace, TRACE_ID);
            assert_ne!(parent, "00f067aa0ba902b7", "{got}");
            assert!(got.ends_with("-01"), "the sampled flag is kept: {got}");
        },
    );

    c.check("without one, the host starts a trace per request", || {
        let (a, _) = parts(&echoed(None));
        let (b, _) = parts(&echoed(None));
        assert_ne!(a, b);
    });

    c.check("an invalid traceparent is replaced", || {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "not a trace",
        ] {
            let got = echoed(Some(bad));
            let (trace, _) = parts(&got);
            assert_ne!(got, bad);
            assert_ne!(trace, TRACE_ID, "{bad:?} was kept as {got:?}");
        }
    });

    c.check(
        "the component's outbound request carries the trace, a new span",
        || {
            let url = format!("{}/traced", upstream.origin());
            let r = host.send(
                Request::new("GET", &format!("/outbound?url={}", encode(&url)))
                    .header("traceparent", CLIENT_TRACEPARENT),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let lines = upstream.requests();
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(lines[0].starts_with("GET /traced "), "{lines:?}");
            let sent = traceparents_seen(&upstream);
            assert_eq!(sent.len(), 1, "traceparent fields the server saw: {sent:?}");
            let (trace, parent) = parts(&sent[0]);
            assert_eq!(trace, TRACE_ID);
            assert_ne!(
                parent, "00f067aa0ba902b7",
                "the outbound call needs its own span id"
            );
        },
    );

    c.check(
        "so does a WASIp2 component's (fresh instance per request)",
        || {
            let url = format!("{}/traced-p2", upstream.origin());
            let r = host.send(
                Request::new("GET", &format!("/spin2/outbound?url={}", encode(&url)))
                    .header("traceparent", CLIENT_TRACEPARENT),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let sent = traceparents_seen(&upstream);
            assert_eq!(sent.len(), 2, "{sent:?}");
            let (trace, parent) = parts(&sent[1]);
            assert_eq!(trace, TRACE_ID);
            assert_ne!(parent, "00f067aa0ba902b7");
        },
    );

    c.check(
        "a self request carries the trace on to the called component",
        || {
            let r = host.send(
                Request::new(
                    "GET",
                    &format!("/outbound?url={}", encode("http://self/echo/inner")),
                )
                .header("traceparent", CLIENT_TRACEPARENT),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let outer = r.json();
            let inner: Value = serde_json::from_str(outer["body"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("echo's answer is JSON: {e}: {outer}"));
            assert_eq!(inner["path"], "/echo/inner", "{inner}");
            let (trace, parent) = parts(inner["headers"]["traceparent"].as_str().unwrap_or(""));
            assert_eq!(trace, TRACE_ID, "{inner}");
            assert_ne!(parent, "00f067aa0ba902b7", "{inner}");
        },
    );

    c.finish(Some(&host));
}

#[test]
fn spans_are_exported_over_otlp_as_one_tree() {
    let collector = TestServer::start("");
    let db = TestDb::new();
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-otlp"

[variables]
database_url = {{ required = true, secret = true }}

[[trigger.http]]
route = "/outbound"
component = "outbound"

[[trigger.http]]
route = "/roundtrip/..."
component = "roundtrip"

[component.outbound]
source = "WASM:outbound"
allowed_outbound_hosts = ["http://self"]

[component.roundtrip]
source = "WASM:roundtrip"
key_value_stores = ["default"]
allowed_outbound_hosts = ["postgres://{db}"]
[component.roundtrip.variables]
db_url = "{{{{ database_url }}}}"
"#,
        db = db.host_port()
    );
    let host = HostCommand::new(&db, &manifest)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.origin())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .start();
    let mut c = Checks::new("otlp");
    let host_spans = |spans: &[Exported]| {
        for span in spans {
            assert_eq!(span.service, "tessera", "{span:#?}");
        }
    };

    c.check(
        "a client's request, its self request and their statements form one trace",
        || {
            let r = host.send(
                Request::new(
                    "GET",
                    &format!("/outbound?url={}", encode("http://self/roundtrip/check")),
                )
                .header("traceparent", CLIENT_TRACEPARENT),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let of_trace = |spans: &[Exported]| -> Vec<Exported> {
                spans
                    .iter()
                    .filter(|s| s.trace_id == TRACE_ID)
                    .cloned()
                    .collect()
            };
            let spans = spans_when(&collector, |spans| {
                let mine = of_trace(spans);
                mine.iter().filter(|s| s.server).count() >= 2
                    && mine.iter().any(|s| s.attribute("db.system.name").is_some())
            });
            host_spans(&spans);
            let spans = of_trace(&spans);
            let outer = spans
                .iter()
                .find(|s| s.server && s.name == "GET /outbound")
                .unwrap_or_else(|| panic!("no server span for /outbound: {spans:#?}"));
            assert_eq!(
                outer.parent, "00f067aa0ba902b7",
                "the client's span is its parent"
            );
            assert_eq!(outer.attribute("http.response.status_code"), Some("200"));
            assert_eq!(outer.attribute("tessera.component"), Some("outbound"));
            let call = spans
                .iter()
                .find(|s| !s.server && s.parent == outer.span_id && s.name == "GET")
                .unwrap_or_else(|| panic!("no client span under /outbound: {spans:#?}"));
            assert_eq!(call.attribute("server.address"), Some("self"));
            let inner = spans
                .iter()
                .find(|s| s.server && s.name == "GET /roundtrip/...")
                .unwrap_or_else(|| panic!("no server span for the self request: {spans:#?}"));
            assert_eq!(
                inner.parent, call.span_id,
                "the self request continues the call"
            );
            let statements: Vec<&Exported> = spans
                .iter()
                .filter(|s| s.attribute("db.system.name") == Some("postgresql"))
                .collect();
            assert!(!statements.is_empty(), "{spans:#?}");
            for statement in &statements {
                assert_eq!(statement.parent, inner.span_id, "{statement:#?}");
                assert_eq!(statement.attribute("tessera.component"), Some("roundtrip"));
                assert!(
                    statement
                        .attribute("db.query.text")
                        .is_some_and(|q| !q.is_empty()),
                    "{statement:#?}"
                );
            }
        },
    );

    c.check("a trace the client does not sample is not exported", || {
        let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        let r = host.send(
            Request::new(
                "GET",
                &format!("/outbound?url={}", encode("http://self/roundtrip/check")),
            )
            .header("traceparent", unsampled),
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        // A sampled request after it: once its spans arrive, the unsampled one's would have
        // been queued before them.
        let later = "00-11111111111111111111111111111111-2222222222222222-01";
        let r = host.send(Request::new("GET", "/roundtrip/check").header("traceparent", later));
        assert_eq!(r.status, 200, "{}", r.describe());
        let spans = spans_when(&collector, |spans| {
            spans
                .iter()
                .any(|s| s.trace_id == "11111111111111111111111111111111" && s.server)
        });
        assert!(
            !spans
                .iter()
                .any(|s| s.trace_id == "0af7651916cd43dd8448eb211c80319c"),
            "{spans:#?}"
        );
    });

    c.finish(Some(&host));
}

#[test]
fn json_logs_carry_ids_and_no_secrets() {
    const VARIABLE_SECRET: &str = "var-secret-5c8e1f0b7a";
    const API_KEY: &str = "tsk_live_9f3b2c7d1e6a4b8c";
    const OUTBOUND_PASSWORD: &str = "outbound-pw-2d7e9a";
    const QUERY_TOKEN: &str = "query-token-6b1f4c";
    let db = TestDb::new();
    // A URL with a password: the test database's own, or one added to it (a server that
    // trusts local connections ignores it; the host must keep it out of its output either way).
    let (database_url, db_password) = match password_of(db.url()) {
        Some(password) => (db.url().to_string(), password),
        None => {
            let password = "db-pw-8e4a1c".to_string();
            let (scheme, rest) = db.url().split_once("://").expect("a URL database address");
            let (userinfo, after) = rest.split_once('@').unwrap_or(("postgres", rest));
            (
                format!("{scheme}://{userinfo}:{password}@{after}"),
                password,
            )
        }
    };
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-logs"

[variables]
database_url = {{ required = true, secret = true }}
api_token = {{ required = true, secret = true }}

[[trigger.http]]
route = "/spin2/..."
component = "spin2"

[[trigger.http]]
route = "/echo/..."
component = "echo"

[[trigger.http]]
route = "/trap"
component = "trap"

[component.spin2]
source = "WASM:spin2"
allowed_outbound_hosts = ["postgres://{db_host}"]
[component.spin2.variables]
db_url = "{{{{ database_url }}}}"
token = "{{{{ api_token }}}}"

[component.echo]
source = "WASM:echo"

[component.trap]
source = "WASM:trap"
"#,
        db_host = db.host_port(),
    );
    let mut host = HostCommand::new(&db, &manifest)
        .database_url(&database_url)
        .arg("--log-format")
        .arg("json")
        .arg("--request-id-header")
        .arg("x-request-id")
        .env("SPIN_VARIABLE_API_TOKEN", VARIABLE_SECRET)
        // As much as the host and its libraries say, short of the compiler's chatter.
        .env(
            "RUST_LOG",
            "debug,cranelift=warn,cranelift_codegen=warn,wasmtime=warn,wasmtime_cranelift=warn",
        )
        .start();
    let mut c = Checks::new("logs");

    c.check(
        "the request's JSON line carries its request and trace ids",
        || {
            let r = host.send(
                Request::new("GET", "/echo/logged")
                    .header("traceparent", CLIENT_TRACEPARENT)
                    .header("authorization", format!("Bearer {API_KEY}")),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let request_id = r.header("x-request-id").expect("x-request-id").to_string();
            let line = wait_for_line(&host, |v| {
                v["fields"]["message"] == "request" && v["fields"]["path"] == "/echo/logged"
            });
            assert_eq!(line["fields"]["trace_id"], TRACE_ID, "{line}");
            assert_eq!(line["fields"]["request_id"], request_id.as_str(), "{line}");
            assert_eq!(line["fields"]["status"], 200, "{line}");
        },
    );

    c.check(
        "lines logged during a request name it (span fields)",
        || {
            let r =
                host.send(Request::new("GET", "/trap").header("traceparent", CLIENT_TRACEPARENT));
            assert_eq!(r.status, 500, "{}", r.describe());
            let request_id = r.header("x-request-id").expect("x-request-id").to_string();
            let line = wait_for_line(&host, |v| {
                v["level"] == "ERROR" && v["span"]["request_id"] == request_id.as_str()
            });
            assert_eq!(line["span"]["trace_id"], TRACE_ID, "{line}");
        },
    );

    c.check(
        "secret variable, database password and outbound credentials in use",
        || {
            let j = host.get("/spin2/variables?name=token").json();
            assert_eq!(j["value"], VARIABLE_SECRET, "{j}");
            let j = host.get("/spin2/pg").json();
            assert_eq!(
                j["inserted"], 1,
                "the component connected with the URL: {j}"
            );
            // Its wait for a pooled connection is measured.
            let metrics = host.get("/metrics").text();
            let waits = sample(
                &metrics,
                r#"tessera_pg_pool_wait_seconds_count{component="spin2"}"#,
            );
            assert!(waits.is_some_and(|n| n >= 1), "{metrics}");
            // Denied (no such allowed host): the host logs the refusal.
            let url = format!("http://user:{OUTBOUND_PASSWORD}@10.0.0.1:81/x?token={QUERY_TOKEN}");
            let r = host.get(&format!("/spin2/outbound?url={}", encode(&url)));
            assert!(
                r.status >= 400 || r.json()["error"].is_string(),
                "{}",
                r.describe()
            );
        },
    );

    host.stop();
    let output = host.output();

    c.check("the host's lines on stderr are JSON", || {
        // Components' own stderr (the trap's panic message) passes through as they wrote it.
        let lines: Vec<&str> = output.lines().filter(|l| l.starts_with('{')).collect();
        assert!(lines.len() > 10, "{output}");
        for line in lines {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(
                v["level"].is_string() && v["timestamp"].is_string(),
                "{line}"
            );
        }
    });

    c.check("no secret appears in the host's output", || {
        assert!(
            output.contains("\"request\""),
            "the log is empty?\n{output}"
        );
        for (what, secret) in [
            ("database password", db_password.as_str()),
            ("secret variable", VARIABLE_SECRET),
            ("API key", API_KEY),
            ("outbound password", OUTBOUND_PASSWORD),
            ("outbound query token", QUERY_TOKEN),
        ] {
            assert!(
                !output.contains(secret),
                "the {what} appears in the host's output"
            );
        }
        // Statement parameters (users' data) stay out of the log even at debug.
        assert!(
            !output.contains("with parameters"),
            "statement parameters were logged"
        );
    });

    c.finish(None);
}

/// Every `traceparent` field the server received, in order.
fn traceparents_seen(server: &TestServer) -> Vec<String> {
    server
        .headers()
        .iter()
        .flat_map(|h| h.iter())
        .filter(|(name, _)| name == "traceparent")
        .map(|(_, value)| value.clone())
        .collect()
}

/// The password in `scheme://user:password@host/...`, if there is one.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_string())
}

/// The first JSON line on the host's stderr that `matches`, waiting a little for it (the
/// request line is written after the answer goes out).
fn wait_for_line(host: &tessera_e2e::TestHost, matches: impl Fn(&Value) -> bool) -> Value {
    tessera_e2e::wait_for(std::time::Duration::from_secs(60), || {
        host.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| matches(v))
    })
    .unwrap_or_else(|| panic!("no matching log line in:\n{}", host.stderr()))
}
