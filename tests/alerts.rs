//! Alerts and webhooks through the real host: channels, rules and silences over the API, an
//! event routed into its group and the outbox, the dispatcher (the alert component's cron
//! export calling its own dispatch route) retrying a Standard Webhooks receiver that is
//! down, then answers 500, then 429 with `Retry-After`, then recovers; grouping,
//! deduplication and silences; inbound signed webhooks with replays; bad inputs.
//!
//! `StandardWebhooksReceiver` is a **test double of a Standard Webhooks receiver** (what any
//! customer endpoint implements): it verifies every signature and records each `webhook-id`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tessera_alerting::standard_webhooks::{self, Secret};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, TestDb, TestHost, wait_for};

const RECEIVER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PARTNER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    webhook_id: String,
    signature_valid: bool,
    answered: u16,
    body: Value,
    at: Instant,
}

/// A Standard Webhooks receiver on 127.0.0.1: answers its script of statuses in order (then
/// 200), verifying each request's signature with the channel's secret.
struct StandardWebhooksReceiver {
    state: Arc<Shared>,
}

impl StandardWebhooksReceiver {
    /// Starts listening on `addr` (a port reserved while the receiver was "down").
    fn start_on(addr: SocketAddr, script: Vec<(u16, Option<u64>)>) -> Self {
        let listener = TcpListener::bind(addr).expect("bind the receiver");
        let state = Arc::new(Mutex::new((script, Vec::new())));
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
        Self { state }
    }

    /// Answers the next request with `status`.
    fn answer_next(&self, status: u16) {
        self.state.lock().unwrap().0.push((status, None));
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().1.clone()
    }

    fn for_id(&self, id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.webhook_id == id)
            .collect()
    }
}

/// The script (status, `Retry-After` seconds) still to answer, and what was received.
type Shared = Mutex<(Vec<(u16, Option<u64>)>, Vec<Received>)>;

fn serve(stream: TcpStream, state: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
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
        if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(len) = get("content-length").and_then(|v| v.parse().ok()) {
            body.resize(len, 0);
            reader.read_exact(&mut body)?;
        }
        let secret = Secret::parse(RECEIVER_SECRET).unwrap();
        let now = unix_now();
        let signature_valid =
            standard_webhooks::verify(&[secret], &headers, &body, now, 300).is_ok();
        let (status, retry_after) = {
            let mut s = state.lock().unwrap();
            let next = if s.0.is_empty() {
                (200, None)
            } else {
                s.0.remove(0)
            };
            s.1.push(Received {
                path: line.split_whitespace().nth(1).unwrap_or("").to_string(),
                headers: headers.clone(),
                webhook_id: get("webhook-id").unwrap_or_default(),
                signature_valid,
                answered: next.0,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                at: Instant::now(),
            });
            next
        };
        let mut head = format!("HTTP/1.1 {status} Receiver\r\ncontent-length: 2\r\n");
        if let Some(secs) = retry_after {
            head.push_str(&format!("retry-after: {secs}\r\n"));
        }
        head.push_str("\r\n{}");
        out.write_all(head.as_bytes())?;
        out.flush()?;
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn send_json(host: &TestHost, method: &str, path: &str, body: &Value) -> tessera_e2e::Response {
    Request::new(method, path)
        .json(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Asserts a JSON 400 naming `field`.
fn assert_field_error(r: &tessera_e2e::Response, status: u16, field: &str) {
    assert_eq!(r.status, status, "{}", r.describe());
    let j = r.json();
    assert_eq!(j["error"]["field"], field, "{j}");
    assert!(
        j["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{j}"
    );
}

/// The deliveries of the alert with event id `id`, from `GET /v1/alerts`.
fn deliveries_of(host: &TestHost, id: &str) -> Vec<Value> {
    let r = host.get("/v1/alerts?limit=500");
    assert_eq!(r.status, 200, "{}", r.describe());
    r.json()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["deliveries"].as_array().unwrap().clone())
        .unwrap_or_default()
}

fn rule(
    host: &TestHost,
    name: &str,
    types: &[&str],
    channel: &str,
    group_by: &[&str],
    wait_ms: u64,
) {
    let r = host.post_json(
        "/v1/alerts/rules",
        &json!({"name": name, "event_types": types, "channels": [channel], "group_by": group_by,
                "timing": {"group_wait_ms": wait_ms, "group_interval_ms": 60000}}),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
}

#[test]
fn alerts_and_webhooks() {
    let db = TestDb::new();
    // The receiver's port, reserved and released: it is "down" until the test binds it.
    let receiver_addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-alerts"

[variables]
database_url = {{ required = true, secret = true }}

[[trigger.http]]
route = "/v1/alerts"
component = "alert"

[[trigger.http]]
route = "/v1/alerts/..."
component = "alert"

[[trigger.http]]
route = "/v1/webhooks/..."
component = "webhooks"

[[trigger.cron]]
component = "alert"
cron_expression = "*/1 * * * * *"

[component.alert]
source = "WASM:alert"
allowed_outbound_hosts = ["postgres://{db}", "http://{receiver_addr}", "http://alert.spin.internal"]
[component.alert.variables]
db_url = "{{{{ database_url }}}}"
retry_scale = "0.001"
receiver_secret = "{RECEIVER_SECRET}"
postmark_token = "pm-test-token"

[component.webhooks]
source = "WASM:webhooks"
allowed_outbound_hosts = ["postgres://{db}", "http://self"]
[component.webhooks.variables]
db_url = "{{{{ database_url }}}}"
auth_mode = "trusted-headers"
webhook_partner_scheme = "standard_webhooks"
webhook_partner_secret = "{PARTNER_SECRET}"
webhook_feed_scheme = "standard_webhooks"
webhook_feed_secret = "{PARTNER_SECRET}"
webhook_feed_tenant = "desk"
webhook_feed_accepts = "market.symbols market.bars"

[[trigger.http]]
route = "/v1/market/..."
component = "picker"

[component.picker]
source = "WASM:picker"
allowed_outbound_hosts = ["postgres://{db}"]
[component.picker.variables]
db_url = "{{{{ database_url }}}}"
auth_mode = "trusted-headers"
"#,
        db = db.host_port()
    );
    let host = HostCommand::new(&db, &manifest).start();
    let mut c = Checks::new("alerts");

    c.check("bad inputs are JSON 4xx naming the field", || {
        let ch = |body: Value| host.post_json("/v1/alerts/channels", &body);
        assert_field_error(&ch(json!({"name": "x", "kind": "pager", "url": "http://a"})), 400, "kind");
        assert_field_error(&ch(json!({"name": "x", "kind": "slack", "url": "ftp://a"})), 400, "url");
        assert_field_error(
            &ch(json!({"name": "x", "kind": "webhook", "url": "http://a"})),
            400,
            "secret_variable",
        );
        assert_field_error(
            &ch(json!({"name": "x", "kind": "email", "url": "http://a", "secret_variable": "t", "config": {"from": "a@b.c", "to": []}})),
            400,
            "config.to",
        );
        assert_field_error(&ch(json!({"kind": "slack", "url": "http://a"})), 400, "name");
        let r = host.post_json(
            "/v1/alerts/rules",
            &json!({"name": "r", "matchers": ["symbol=~\"(\""], "channels": []}),
        );
        assert_eq!(r.status, 400, "{}", r.describe());
        assert!(r.json()["error"]["field"].as_str().unwrap_or("").starts_with("matchers"), "{}", r.describe());
        assert_field_error(
            &host.post_json("/v1/alerts/rules", &json!({"name": "r", "channels": ["7d1e2c7e-0000-4000-8000-000000000000"]})),
            400,
            "channels[0]",
        );
        assert_field_error(&host.post_json("/v1/alerts/events", &json!({"severity": "info"})), 400, "type");
        assert_field_error(
            &host.post_json("/v1/alerts/events", &json!({"type": "t", "labels": {"1bad": "x"}})),
            400,
            "labels.1bad",
        );
        assert_field_error(
            &host.post_json("/v1/alerts/events", &json!({"type": "t", "severity": "loud"})),
            400,
            "severity",
        );
        assert_field_error(
            &host.post_json("/v1/alerts/silences", &json!({"matchers": ["a=\"b\""], "starts_at_ms": 2000, "ends_at_ms": 1000})),
            400,
            "ends_at_ms",
        );
        assert_field_error(
            &host.post_json("/v1/alerts/silences", &json!({"matchers": [], "duration_ms": 1000})),
            400,
            "matchers",
        );
        assert_field_error(&host.get("/v1/alerts?limit=0"), 400, "limit");
        assert_field_error(
            &host.send(Request::new("POST", "/v1/alerts/deliveries/nope/replay")),
            400,
            "id",
        );
        let r = host.send(
            Request::new("POST", "/v1/alerts/events")
                .header("content-type", "text/plain")
                .body(b"{}"),
        );
        assert_eq!(r.status, 415, "{}", r.describe());
        let r = host.send(Request::new("DELETE", "/v1/alerts/events"));
        assert_eq!(r.status, 405, "{}", r.describe());
    });

    // The channel every delivery check below uses.
    let r = host.post_json(
        "/v1/alerts/channels",
        &json!({"name": "receiver", "kind": "webhook", "url": format!("http://{receiver_addr}/hooks"),
                "secret_variable": "receiver_secret"}),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    let channel = r.json()["id"].as_str().unwrap().to_string();

    c.check(
        "channels answer the variable name, never the secret",
        || {
            let r = host.get("/v1/alerts/channels");
            assert_eq!(r.status, 200, "{}", r.describe());
            assert!(
                !r.text().contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                "{}",
                r.text()
            );
            assert_eq!(
                r.json()["channels"][0]["secret_variable"],
                "receiver_secret"
            );
            let other = host
                .send(Request::new("GET", "/v1/alerts/channels").header("x-tenant-id", "other"));
            assert_eq!(other.json()["channels"], json!([]), "{}", other.describe());
        },
    );

    let mut receiver: Option<StandardWebhooksReceiver> = None;
    let mut first_webhook_id = String::new();
    let mut first_delivery = String::new();

    c.check(
        "down, 500, 429 with Retry-After, recovered: delivered once with one webhook-id",
        || {
            rule(&host, "trades", &["trade.*"], &channel, &["symbol"], 0);
            let r = host.post_json(
                "/v1/alerts/events",
                &json!({"type": "trade.fill", "severity": "critical", "labels": {"symbol": "AAPL"},
                        "summary": "AAPL filled", "payload": {"qty": 100}}),
            );
            assert_eq!(r.status, 202, "{}", r.describe());
            let event = r.json()["id"].as_str().unwrap().to_string();
            assert_eq!(
                r.json()["deliveries"].as_array().map(Vec::len),
                Some(1),
                "{}",
                r.describe()
            );
            first_delivery = r.json()["deliveries"][0].as_str().unwrap().to_string();
            // The immediate attempt found nobody listening.
            let down = wait_for(Duration::from_secs(20), || {
                let d = deliveries_of(&host, &event);
                let d = d.first()?;
                (d["attempts"].as_i64()? >= 1 && d["last_error"].as_str()?.starts_with("transport"))
                    .then(|| d.clone())
            });
            let down = down.expect("the first attempt against the closed port was not recorded");
            assert_eq!(down["status"], "pending", "{down}");
            first_webhook_id = down["webhook_id"].as_str().unwrap().to_string();
            assert!(first_webhook_id.starts_with("msg_"), "{down}");

            let rec = StandardWebhooksReceiver::start_on(
                receiver_addr,
                vec![(500, None), (429, Some(5))],
            );
            let delivered = wait_for(Duration::from_secs(60), || {
                let d = deliveries_of(&host, &event);
                (d.first()?["status"] == "delivered").then(|| d[0].clone())
            });
            let delivered = delivered.unwrap_or_else(|| {
                panic!(
                    "not delivered: {:?} / receiver saw {:?}",
                    deliveries_of(&host, &event),
                    rec.received()
                )
            });
            let got = rec.for_id(&first_webhook_id);
            assert_eq!(
                got.iter().map(|g| g.answered).collect::<Vec<_>>(),
                vec![500, 429, 200],
                "{got:?}"
            );
            assert!(got.iter().all(|g| g.signature_valid), "{got:?}");
            assert_eq!(
                rec.received().len(),
                got.len(),
                "other webhook-ids: {:?}",
                rec.received()
            );
            // The receiver asked for 5 s; the scaled schedule alone (30 min x 0.001 = 1.8 s, +10 %
            // jitter, plus up to a 1 s cron tick) would have come back within 3 s.
            assert!(
                got[2].at.duration_since(got[1].at) >= Duration::from_secs(4),
                "{got:?}"
            );
            let attempts = delivered["attempts"].as_i64().unwrap();
            assert!(
                attempts >= 4,
                "one attempt while down and three answered: {delivered}"
            );
            assert_eq!(
                got[2].body["type"], "alert.notification",
                "{:?}",
                got[2].body
            );
            assert_eq!(got[2].body["data"]["events"][0]["labels"]["symbol"], "AAPL");
            receiver = Some(rec);
        },
    );
    let Some(receiver) = receiver else {
        c.finish(Some(&host));
        return;
    };

    c.check(
        "a later alert arrives and the first was not sent again",
        || {
            let r = host.post_json(
                "/v1/alerts/events",
                &json!({"type": "trade.fill", "labels": {"symbol": "MSFT"}}),
            );
            assert_eq!(r.status, 202, "{}", r.describe());
            let id = r.json()["id"].as_str().unwrap().to_string();
            let ok = wait_for(Duration::from_secs(30), || {
                let d = deliveries_of(&host, &id);
                (d.first()?["status"] == "delivered").then_some(())
            });
            assert!(ok.is_some(), "{:?}", deliveries_of(&host, &id));
            let first = receiver.for_id(&first_webhook_id);
            assert_eq!(
                first.iter().filter(|g| g.answered == 200).count(),
                1,
                "{first:?}"
            );
            assert_eq!(first.len(), 3, "{first:?}");
        },
    );

    c.check(
        "in order per endpoint: alerts behind a failing one wait, then arrive in order, once each",
        || {
            // The next answers: 500, then 429 asking for a second; then 200s.
            receiver.answer_next(500);
            receiver.state.lock().unwrap().0.push((429, Some(1)));
            let mut webhook_ids = Vec::new();
            for symbol in ["ORD1", "ORD2", "ORD3", "ORD4"] {
                let r = host.post_json(
                    "/v1/alerts/events",
                    &json!({"type": "trade.fill", "labels": {"symbol": symbol}}),
                );
                assert_eq!(r.status, 202, "{}", r.describe());
                let id = r.json()["id"].as_str().unwrap().to_string();
                let d = deliveries_of(&host, &id);
                webhook_ids.push(d[0]["webhook_id"].as_str().expect("webhook id").to_string());
            }
            let arrived = wait_for(Duration::from_secs(60), || {
                let ok: Vec<String> = receiver
                    .received()
                    .into_iter()
                    .filter(|r| r.answered == 200 && webhook_ids.contains(&r.webhook_id))
                    .map(|r| r.webhook_id)
                    .collect();
                (ok.len() >= webhook_ids.len()).then_some(ok)
            })
            .unwrap_or_else(|| panic!("not all delivered: {:?}", receiver.received()));
            assert_eq!(
                arrived, webhook_ids,
                "accepted in the order raised, each once"
            );
            let ours: Vec<(String, u16)> = receiver
                .received()
                .into_iter()
                .filter(|r| webhook_ids.contains(&r.webhook_id))
                .map(|r| (r.webhook_id, r.answered))
                .collect();
            // Only the first was tried while the receiver failed; the rest waited behind it.
            assert_eq!(
                ours.iter().map(|(_, status)| *status).collect::<Vec<_>>(),
                vec![500, 429, 200, 200, 200, 200],
                "{ours:?}"
            );
            assert!(
                ours[..3].iter().all(|(id, _)| id == &webhook_ids[0]),
                "{ours:?}"
            );
        },
    );

    c.check("an identical firing event is deduplicated", || {
        rule(&host, "dedupe", &["dedupe.test"], &channel, &["symbol"], 0);
        let event = json!({"type": "dedupe.test", "labels": {"symbol": "TSLA"}});
        let a = host.post_json("/v1/alerts/events", &event);
        assert_eq!(a.status, 202, "{}", a.describe());
        assert_eq!(a.json()["duplicate"], false);
        assert_eq!(a.json()["deliveries"].as_array().map(Vec::len), Some(1), "{}", a.describe());
        let b = host.post_json("/v1/alerts/events", &event);
        assert_eq!(b.status, 202, "{}", b.describe());
        assert_eq!(b.json()["duplicate"], true, "{}", b.describe());
        assert_eq!(b.json()["deliveries"], json!([]), "{}", b.describe());
        assert_eq!(a.json()["fingerprint"], b.json()["fingerprint"]);
        let rows = db
            .query("SELECT count(*) FROM alert_deliveries d JOIN alert_rules r ON r.id = d.rule_id WHERE r.name = 'dedupe'")
            .unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 1);
    });

    c.check("an idempotency key stores the event once", || {
        let event = json!({"type": "idem.test", "idempotency_key": "k-1"});
        let a = host.post_json("/v1/alerts/events", &event);
        assert_eq!(a.status, 202, "{}", a.describe());
        let b = host.post_json("/v1/alerts/events", &event);
        assert_eq!(b.status, 200, "{}", b.describe());
        assert_eq!(a.json()["id"], b.json()["id"]);
        let rows = db
            .query("SELECT count(*) FROM alert_events WHERE type = 'idem.test'")
            .unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 1);
    });

    c.check("a group gathers its alerts for group_wait into one notification", || {
        rule(&host, "desks", &["desk.*"], &channel, &["desk"], 1500);
        for symbol in ["NVDA", "AMD"] {
            let r = host.post_json(
                "/v1/alerts/events",
                &json!({"type": "desk.limit", "labels": {"desk": "chips", "symbol": symbol}}),
            );
            assert_eq!(r.status, 202, "{}", r.describe());
            assert_eq!(r.json()["deliveries"], json!([]), "waits for group_wait: {}", r.describe());
        }
        let got = wait_for(Duration::from_secs(30), || {
            receiver
                .received()
                .into_iter()
                .find(|g| g.body["data"]["group_labels"]["desk"] == "chips" && g.answered == 200)
        })
        .expect("the desk group was never notified");
        let mut symbols: Vec<&str> = got.body["data"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["labels"]["symbol"].as_str().unwrap())
            .collect();
        symbols.sort();
        assert_eq!(symbols, vec!["AMD", "NVDA"], "{:?}", got.body);
        assert!(got.signature_valid);
        let rows = db
            .query("SELECT count(*) FROM alert_deliveries d JOIN alert_rules r ON r.id = d.rule_id WHERE r.name = 'desks'")
            .unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 1);
    });

    c.check("a silence holds back matching alerts only", || {
        rule(&host, "quiet", &["quiet.test"], &channel, &["symbol"], 0);
        let s = host.post_json(
            "/v1/alerts/silences",
            &json!({"matchers": ["symbol=\"MUTED\""], "duration_ms": 3_600_000, "comment": "maintenance"}),
        );
        assert_eq!(s.status, 201, "{}", s.describe());
        assert_eq!(s.json()["active"], true, "{}", s.describe());
        let muted = host.post_json("/v1/alerts/events", &json!({"type": "quiet.test", "labels": {"symbol": "MUTED"}}));
        assert_eq!(muted.status, 202, "{}", muted.describe());
        assert_eq!(muted.json()["deliveries"], json!([]), "{}", muted.describe());
        let loud = host.post_json("/v1/alerts/events", &json!({"type": "quiet.test", "labels": {"symbol": "LOUD"}}));
        assert_eq!(loud.json()["deliveries"].as_array().map(Vec::len), Some(1), "{}", loud.describe());
        let id = loud.json()["id"].as_str().unwrap().to_string();
        let ok = wait_for(Duration::from_secs(30), || {
            (deliveries_of(&host, &id).first()?["status"] == "delivered").then_some(())
        });
        assert!(ok.is_some(), "{:?}", deliveries_of(&host, &id));
        let muted_seen = receiver.received().iter().any(|g| g.body.to_string().contains("MUTED"));
        assert!(!muted_seen, "a silenced alert reached the receiver");
    });

    c.check(
        "replay sends the delivery again under the same webhook-id",
        || {
            let before = receiver.for_id(&first_webhook_id).len();
            let r = host.send(Request::new(
                "POST",
                &format!("/v1/alerts/deliveries/{first_delivery}/replay"),
            ));
            assert_eq!(r.status, 202, "{}", r.describe());
            assert_eq!(r.json()["webhook_id"], first_webhook_id.as_str());
            let again = wait_for(Duration::from_secs(30), || {
                let got = receiver.for_id(&first_webhook_id);
                (got.len() > before).then(|| got[before].clone())
            })
            .expect("the replay never arrived");
            assert!(again.signature_valid);
            let other = host.send(
                Request::new(
                    "POST",
                    &format!("/v1/alerts/deliveries/{first_delivery}/replay"),
                )
                .header("x-tenant-id", "other"),
            );
            assert_eq!(other.status, 404, "{}", other.describe());
        },
    );

    c.check(
        "a receiver's 410 fails the delivery at once and counts against the endpoint",
        || {
            rule(&host, "gone", &["gone.test"], &channel, &[], 0);
            receiver.answer_next(410);
            let r = host.post_json("/v1/alerts/events", &json!({"type": "gone.test"}));
            assert_eq!(r.status, 202, "{}", r.describe());
            let id = r.json()["id"].as_str().unwrap().to_string();
            let failed = wait_for(Duration::from_secs(30), || {
                let d = deliveries_of(&host, &id);
                (d.first()?["status"] == "failed").then(|| d[0].clone())
            })
            .unwrap_or_else(|| panic!("{:?}", deliveries_of(&host, &id)));
            assert_eq!(failed["attempts"], 1, "{failed}");
            assert_eq!(failed["last_status"], 410, "{failed}");
            let ch = host.get(&format!("/v1/alerts/channels/{channel}"));
            assert_eq!(
                ch.json()["consecutive_failed_deliveries"],
                1,
                "{}",
                ch.describe()
            );
            assert_eq!(ch.json()["disabled"], false, "{}", ch.describe());
        },
    );

    c.check(
        "an endpoint failing 5 deliveries is disabled, operators are alerted, PUT re-enables",
        || {
            // Not among the component's allowed hosts: every attempt gives up at once.
            let r = host.post_json(
                "/v1/alerts/channels",
                &json!({"name": "broken", "kind": "slack", "url": "http://10.255.255.1:9/hook"}),
            );
            assert_eq!(r.status, 201, "{}", r.describe());
            let broken = r.json()["id"].as_str().unwrap().to_string();
            rule(&host, "operators", &["alert.endpoint_disabled"], &channel, &[], 0);
            rule(&host, "broken", &["broken.test"], &broken, &["n"], 0);
            for n in 1..=5 {
                let r = host.post_json(
                    "/v1/alerts/events",
                    &json!({"type": "broken.test", "labels": {"n": n.to_string()}}),
                );
                assert_eq!(r.status, 202, "{}", r.describe());
            }
            let disabled = wait_for(Duration::from_secs(30), || {
                let ch = host.get(&format!("/v1/alerts/channels/{broken}")).json();
                (ch["disabled"] == true).then_some(ch)
            })
            .expect("the broken channel was not disabled");
            assert_eq!(disabled["consecutive_failed_deliveries"], 5, "{disabled}");
            let notified = wait_for(Duration::from_secs(30), || {
                receiver.received().into_iter().find(|g| {
                    g.answered == 200
                        && g.body["data"]["events"][0]["type"] == "alert.endpoint_disabled"
                })
            })
            .expect("no operator alert reached the receiver");
            assert_eq!(
                notified.body["data"]["events"][0]["labels"]["channel"],
                broken.as_str()
            );
            assert!(notified.signature_valid);
            let r = send_json(
                &host,
                "PUT",
                &format!("/v1/alerts/channels/{broken}"),
                &json!({"name": "broken", "kind": "slack", "url": "http://10.255.255.1:9/hook", "disabled": false}),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            assert_eq!(r.json()["disabled"], false, "{}", r.describe());
            assert_eq!(r.json()["consecutive_failed_deliveries"], 0, "{}", r.describe());
        },
    );

    c.check(
        "Slack, Discord and Postmark channels get their wire formats",
        || {
            let mut ids = Vec::new();
            for (name, body) in [
                ("slack", json!({"kind": "slack"})),
                ("discord", json!({"kind": "discord"})),
                (
                    "email",
                    json!({"kind": "email", "secret_variable": "postmark_token",
                "config": {"from": "alerts@example.com", "to": ["desk@example.com"]}}),
                ),
            ] {
                let mut body = body;
                body["name"] = json!(format!("fmt-{name}"));
                body["url"] = json!(format!("http://{receiver_addr}/{name}"));
                let r = host.post_json("/v1/alerts/channels", &body);
                assert_eq!(r.status, 201, "{}", r.describe());
                ids.push(r.json()["id"].as_str().unwrap().to_string());
            }
            let r = host.post_json(
                "/v1/alerts/rules",
                &json!({"name": "fanout", "event_types": ["fanout.test"], "channels": ids,
                    "timing": {"group_wait_ms": 0}}),
            );
            assert_eq!(r.status, 201, "{}", r.describe());
            let r = host.post_json(
            "/v1/alerts/events",
            &json!({"type": "fanout.test", "severity": "critical", "summary": "Breaker <tripped>",
                    "labels": {"desk": "fx"}}),
        );
            assert_eq!(
                r.json()["deliveries"].as_array().map(Vec::len),
                Some(3),
                "{}",
                r.describe()
            );
            let got = |path: &str| {
                wait_for(Duration::from_secs(30), || {
                    receiver
                        .received()
                        .into_iter()
                        .find(|g| g.path == path && g.answered == 200)
                })
                .unwrap_or_else(|| panic!("nothing at {path}: {:?}", receiver.received()))
            };
            let slack = got("/slack");
            assert_eq!(
                slack.body["text"], "[CRITICAL] Breaker &lt;tripped&gt;",
                "{:?}",
                slack.body
            );
            assert_eq!(
                slack.body["blocks"][0]["type"], "header",
                "{:?}",
                slack.body
            );
            let discord = got("/discord");
            assert_eq!(
                discord.body["embeds"][0]["title"], "Breaker <tripped>",
                "{:?}",
                discord.body
            );
            assert_eq!(discord.body["allowed_mentions"]["parse"], json!([]));
            let email = got("/email");
            assert_eq!(email.body["From"], "alerts@example.com", "{:?}", email.body);
            assert_eq!(email.body["To"], "desk@example.com");
            assert!(
                email.body["HtmlBody"]
                    .as_str()
                    .unwrap()
                    .contains("Breaker &lt;tripped&gt;")
            );
            let token = email
                .headers
                .iter()
                .find(|(n, _)| n == "x-postmark-server-token")
                .map(|(_, v)| v.as_str());
            assert_eq!(token, Some("pm-test-token"), "{:?}", email.headers);
            // Only the Standard Webhooks channel carries webhook-* headers.
            assert!(slack.webhook_id.is_empty(), "{:?}", slack.headers);
        },
    );

    c.check("inbound webhooks: verified, stored once, 401 without detail", || {
        let body = br#"{"type":"bars.updated","symbol":"AAPL"}"#;
        let secret = Secret::parse(PARTNER_SECRET).unwrap();
        let signed = |id: &str, ts: i64, secret: &Secret| {
            let mut req = Request::new("POST", "/v1/webhooks/partner")
                .header("content-type", "application/json");
            for (n, v) in standard_webhooks::outgoing_headers(std::slice::from_ref(secret), id, ts, body) {
                req = req.header(n, v);
            }
            host.send(req.body(body))
        };
        let first = signed("evt_1", unix_now(), &secret);
        assert_eq!(first.status, 200, "{}", first.describe());
        assert_eq!(first.json()["duplicate"], false, "{}", first.describe());
        let replay = signed("evt_1", unix_now(), &secret);
        assert_eq!(replay.status, 200, "{}", replay.describe());
        assert_eq!(replay.json()["duplicate"], true, "{}", replay.describe());
        assert_eq!(replay.json()["id"], first.json()["id"]);
        let rows = db
            .query("SELECT count(*), min(convert_from(body, 'UTF8')) FROM webhook_events WHERE source = 'partner' AND event_id = 'evt_1'")
            .unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 1);
        assert_eq!(rows[0].get::<_, String>(1).as_bytes(), body);

        let wrong = Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let forged = signed("evt_2", unix_now(), &wrong);
        let stale = signed("evt_3", unix_now() - 3600, &secret);
        let unknown = host.send(Request::new("POST", "/v1/webhooks/nobody").body(body));
        for r in [&forged, &stale, &unknown] {
            assert_eq!(r.status, 401, "{}", r.describe());
            assert_eq!(r.json()["error"]["message"], "invalid webhook signature", "{}", r.describe());
        }
        let rows = db
            .query("SELECT count(*) FROM webhook_events WHERE event_id IN ('evt_2', 'evt_3')")
            .unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 0);
    });

    c.check(
        "inbound market data is handed to the picker once stored; refused data is kept with why",
        || {
            let secret = Secret::parse(PARTNER_SECRET).unwrap();
            let send = |id: &str, event: &Value| {
                let body = event.to_string();
                let mut req = Request::new("POST", "/v1/webhooks/feed")
                    .header("content-type", "application/json");
                for (n, v) in standard_webhooks::outgoing_headers(
                    std::slice::from_ref(&secret),
                    id,
                    unix_now(),
                    body.as_bytes(),
                ) {
                    req = req.header(n, v);
                }
                host.send(req.body(body.as_bytes()))
            };
            let symbols = send(
                "feed_1",
                &json!({"type": "market.symbols", "data": [{"ticker": "HOF", "asset_class": "stock"}]}),
            );
            assert_eq!(symbols.status, 200, "{}", symbols.describe());
            assert_eq!(symbols.json()["handoff"]["status"], "done", "{}", symbols.describe());
            let bar = json!({"symbol": "HOF", "interval": "1d", "time": 1_700_006_400i64, "open": 10,
                             "high": 11, "low": 9, "close": 10.5, "volume": 1000});
            let bars = send("feed_2", &json!({"type": "market.bars", "data": [bar]}));
            assert_eq!(bars.status, 200, "{}", bars.describe());
            assert_eq!(bars.json()["handoff"]["status"], "done", "{}", bars.describe());
            assert_eq!(bars.json()["handoff"]["detail"]["answer"]["inserted"], 1, "{}", bars.describe());
            // In the source's tenant, exactly once: a replay hands nothing on again.
            let replay = send("feed_2", &json!({"type": "market.bars", "data": [bar]}));
            assert_eq!(replay.json()["duplicate"], true, "{}", replay.describe());
            assert_eq!(replay.json()["handoff"]["status"], "done", "{}", replay.describe());
            let rows = db
                .query(
                    "SELECT tenant_id, count(*) FROM market_bars WHERE symbol = 'HOF' GROUP BY tenant_id",
                )
                .unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!((rows[0].get::<_, String>(0), rows[0].get::<_, i64>(1)), ("desk".into(), 1));
            let attempts = db
                .query("SELECT handoff_attempts FROM webhook_events WHERE event_id = 'feed_2'")
                .unwrap();
            assert_eq!(attempts[0].get::<_, i32>(0), 1, "handed on once");

            // The picker refuses a bar of an unknown symbol: stored, refused, and the sender
            // told 200 (sending it again cannot help), with the picker's reason kept.
            let mut unknown = bar.clone();
            unknown["symbol"] = json!("NOPE");
            let refused = send("feed_3", &json!({"type": "market.bars", "data": [unknown]}));
            assert_eq!(refused.status, 200, "{}", refused.describe());
            assert_eq!(refused.json()["handoff"]["status"], "rejected", "{}", refused.describe());
            let kept = db
                .query(
                    "SELECT handoff_status, handoff_result->>'status', handoff_result::text \
                     FROM webhook_events WHERE event_id = 'feed_3'",
                )
                .unwrap();
            assert_eq!(kept[0].get::<_, String>(0), "rejected");
            assert_eq!(kept[0].get::<_, String>(1), "400");
            assert!(kept[0].get::<_, String>(2).contains("symbol"), "{}", kept[0].get::<_, String>(2));
            // A type the source does not accept is stored only.
            let other = send("feed_4", &json!({"type": "document.upsert", "data": {"text": "x"}}));
            assert_eq!(other.status, 200, "{}", other.describe());
            assert!(other.json().get("handoff").is_none(), "{}", other.describe());
        },
    );

    c.finish(Some(&host));
}

/// A receiver that deduplicates by `webhook-id`, as the Standard Webhooks spec asks, and holds
/// (never answers) requests for `stall_symbol` while `stalling` is set: a send in flight
/// when the host is killed.
struct DedupingReceiver {
    addr: SocketAddr,
    stalling: Arc<std::sync::atomic::AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl DedupingReceiver {
    fn start(stall_symbol: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let stalling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (flag, log) = (stalling.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (flag, log) = (flag.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = Self::serve(stream, stall_symbol, &flag, &log);
                });
            }
        });
        Self {
            addr,
            stalling,
            seen,
        }
    }

    fn serve(
        stream: TcpStream,
        stall_symbol: &str,
        stalling: &std::sync::atomic::AtomicBool,
        seen: &Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut out = stream;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let (mut id, mut len, mut chunked) = (String::new(), 0usize, false);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                match n.trim().to_ascii_lowercase().as_str() {
                    "webhook-id" => id = v.trim().to_string(),
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "transfer-encoding" => chunked = v.contains("chunked"),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        while chunked {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..n]);
            chunked = n > 0;
        }
        seen.lock().unwrap().push(id);
        if String::from_utf8_lossy(&body).contains(stall_symbol) {
            while stalling.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")?;
        Ok(())
    }

    /// Every `webhook-id` received, in order (repeats included).
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// The host killed (SIGKILL) while a delivery is being sent, then started again on the same
/// database: every accepted alert is delivered, and the one cut off is sent again under the
/// same `webhook-id`, so a deduplicating receiver takes each alert exactly once.
#[test]
fn a_host_killed_mid_dispatch_loses_nothing_and_sends_nothing_twice() {
    let db = TestDb::new();
    let receiver = DedupingReceiver::start("SLOW");
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-alerts-crash"

[variables]
database_url = {{ required = true, secret = true }}

[[trigger.http]]
route = "/v1/alerts/..."
component = "alert"

[[trigger.cron]]
component = "alert"
cron_expression = "*/1 * * * * *"

[component.alert]
source = "WASM:alert"
allowed_outbound_hosts = ["postgres://{db}", "http://{receiver}", "http://alert.spin.internal"]
[component.alert.variables]
db_url = "{{{{ database_url }}}}"
retry_scale = "0.001"
lease_s = "2"
receiver_secret = "{RECEIVER_SECRET}"
"#,
        db = db.host_port(),
        receiver = receiver.addr,
    );
    let mut first = HostCommand::new(&db, &manifest).start();
    let r = send_json(
        &first,
        "POST",
        "/v1/alerts/channels",
        &json!({"name": "receiver", "kind": "webhook", "url": format!("http://{}/hooks", receiver.addr),
                "secret_variable": "receiver_secret"}),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    let channel = r.json()["id"].as_str().unwrap().to_string();
    rule(&first, "crash", &["crash.*"], &channel, &["symbol"], 0);

    let raise = |host: &TestHost, symbol: &str| {
        let r = send_json(
            host,
            "POST",
            "/v1/alerts/events",
            &json!({"type": "crash.test", "labels": {"symbol": symbol}, "summary": symbol}),
        );
        assert_eq!(r.status, 202, "{}", r.describe());
        r.json()["id"].as_str().unwrap().to_string()
    };
    let before = raise(&first, "FAST1");
    // Its first attempt is held by the receiver: answered only after the crash.
    let addr = first.addr();
    let slow = std::thread::spawn(move || {
        Request::new("POST", "/v1/alerts/events")
            .json(&json!({"type": "crash.test", "labels": {"symbol": "SLOW"}, "summary": "SLOW"}))
            .send(addr)
    });
    let in_flight = wait_for(Duration::from_secs(30), || {
        (receiver.seen().len() >= 2).then_some(())
    });
    assert!(
        in_flight.is_some(),
        "the slow delivery never reached the receiver: {:?}",
        receiver.seen()
    );
    first.kill();
    // Its answer, if any, was cut off with the host; the event itself was committed first.
    let _ = slow.join().expect("thread");
    receiver
        .stalling
        .store(false, std::sync::atomic::Ordering::Relaxed);

    let second = HostCommand::new(&db, &manifest).start();
    let after = raise(&second, "FAST2");
    let delivered = wait_for(Duration::from_secs(60), || {
        let r = second.get("/v1/alerts?limit=100");
        let alerts = r.json()["alerts"].as_array()?.clone();
        let all = alerts.len() == 3
            && alerts.iter().all(|a| {
                a["deliveries"]
                    .as_array()
                    .is_some_and(|d| d.len() == 1 && d[0]["status"] == "delivered")
            });
        all.then_some(alerts)
    });
    let alerts = delivered.unwrap_or_else(|| {
        panic!(
            "not all delivered: {} / receiver saw {:?}",
            second.get("/v1/alerts?limit=100").text(),
            receiver.seen()
        )
    });
    let ids: std::collections::BTreeSet<String> = alerts
        .iter()
        .map(|a| {
            a["deliveries"][0]["webhook_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 3, "one webhook-id per alert: {alerts:?}");
    let seen = receiver.seen();
    let unique: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique, ids,
        "what the receiver took, deduplicated, is every alert once"
    );
    assert!(
        seen.len() > unique.len(),
        "the delivery cut off by the crash was sent again under its id: {seen:?}\n{alerts:#?}"
    );
    assert!(alerts.iter().any(|a| a["id"] == before) && alerts.iter().any(|a| a["id"] == after));
}
