//! Alerts raised by the rest of the application, through the real host: the price-move
//! monitor (minute bars in the market tables, the alert component's dispatcher tick scanning
//! them, a `price.move` event routed to a Slack channel — a local receiver as the test double —
//! options and small moves ignored, the per-symbol cooldown holding when the move goes on), and
//! the validator's rejections queued in `alert_inbox` with the validation that caused them and
//! routed like any event.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tessera_e2e::{Checks, HostCommand, TestDb, TestServer, wait_for};

const OPTION: &str = "AAPL  240119C00190000";

fn minute_now_ms() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    now - now % 60_000
}

/// Ten minute bars ending `end_minutes_ago` minutes before the current minute, the close
/// going from `from` to `to` in equal steps.
fn bars_sql(symbol: &str, from: f64, to: f64, end_minutes_ago: i64) -> String {
    let base = minute_now_ms() - (end_minutes_ago + 10) * 60_000;
    let step = (to - from) / 10.0;
    (0..10)
        .map(|i| {
            let open = from + step * i as f64;
            let close = open + step;
            let (lo, hi) = (open.min(close), open.max(close));
            format!(
                "INSERT INTO market_bars (tenant_id, symbol, interval, time, open, high, low, close, volume) \
                 VALUES ('default', '{symbol}', '1m', to_timestamp({} / 1000.0), {open}, {hi}, {lo}, {close}, 1000);",
                base + i * 60_000
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(db: &TestDb, sql: &str) -> i64 {
    let rows = db.query(sql).expect("query");
    rows[0].get::<_, i64>(0)
}

fn delivery_states(db: &TestDb) -> String {
    let rows = db
        .query("SELECT status, attempts, coalesce(last_error, ''), body FROM alert_deliveries")
        .expect("deliveries");
    rows.iter()
        .map(|r| {
            format!(
                "{} after {} ({}): {}",
                r.get::<_, String>(0),
                r.get::<_, i32>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An alert event as stored.
#[derive(Debug)]
struct StoredEvent {
    labels: Value,
    severity: String,
    summary: String,
    payload: Value,
}

/// The events of `event_type`, once there is at least one (within a minute).
fn events_of(db: &TestDb, event_type: &str) -> Option<Vec<StoredEvent>> {
    wait_for(Duration::from_secs(60), || {
        let rows = db
            .query(&format!(
                "SELECT labels::text, severity, coalesce(summary, ''), payload::text \
                 FROM alert_events WHERE type = '{event_type}' ORDER BY occurred_at, id"
            ))
            .expect("events");
        (!rows.is_empty()).then(|| {
            rows.iter()
                .map(|r| StoredEvent {
                    labels: serde_json::from_str(r.get::<_, &str>(0)).expect("labels"),
                    severity: r.get(1),
                    summary: r.get(2),
                    payload: serde_json::from_str(r.get::<_, &str>(3)).expect("payload"),
                })
                .collect()
        })
    })
}

fn scans(db: &TestDb) -> i64 {
    count(db, "SELECT scans FROM alert_monitor_clock WHERE id = 1")
}

#[test]
fn alert_triggers() {
    let db = TestDb::new();
    let receiver = TestServer::start("ok");
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-price-monitor"

[variables]
database_url = {{ required = true, secret = true }}

[[trigger.http]]
route = "/v1/alerts/..."
component = "alert"

[[trigger.http]]
route = "/v1/validate/..."
component = "validator"

[[trigger.http]]
route = "/v1/portfolio/..."
component = "validator"

[component.validator]
source = "WASM:validator"
allowed_outbound_hosts = ["postgres://{db}"]
[component.validator.variables]
db_url = "{{{{ database_url }}}}"

[[trigger.http]]
route = "/v1/discovery/..."
component = "picker"

[component.picker]
source = "WASM:picker"
allowed_outbound_hosts = ["postgres://{db}"]
[component.picker.variables]
db_url = "{{{{ database_url }}}}"

[[trigger.http]]
route = "/faults/..."
component = "faults"

[component.faults]
source = "WASM:faults"

[[trigger.cron]]
component = "alert"
cron_expression = "*/1 * * * * *"

[component.alert]
source = "WASM:alert"
allowed_outbound_hosts = ["postgres://{db}", "http://{receiver}", "http://alert.spin.internal", "http://picker.spin.internal"]
[component.alert.variables]
db_url = "{{{{ database_url }}}}"
monitor_interval_s = "0.5"
# The daily summary on every day, due from the start of the day (the test runs at any hour).
daily_summary_days = "every"
daily_summary_after_close_s = "-86400"
"#,
        db = db.host_port(),
        receiver = receiver.addr()
    );
    // A component that answers 5xx to three of its last requests (over half) is reported.
    let host = HostCommand::new(&db, &manifest)
        .arg("--report-errors-to")
        .arg("alert")
        .arg("--error-min-count")
        .arg("3")
        .arg("--error-min-rate")
        .arg("0.5")
        .start();
    let mut c = Checks::new("price_monitor");

    let r = host.post_json(
        "/v1/alerts/channels",
        &json!({"name": "desk", "kind": "slack", "url": format!("{}/hook", receiver.origin())}),
    );
    assert_eq!(r.status, 201, "{}", r.describe());
    let channel = r.json()["id"].as_str().expect("channel id").to_string();
    let r = host.post_json(
        "/v1/alerts/rules",
        &json!({"name": "moves", "event_types": ["price.move", "validation.*", "position.*"], "channels": [channel],
                "group_by": ["symbol"], "timing": {"group_wait_ms": 0, "group_interval_ms": 60000}}),
    );
    assert_eq!(r.status, 201, "{}", r.describe());

    db.execute(
        "INSERT INTO market_symbols (tenant_id, ticker, asset_class) VALUES \
         ('default', 'AAA', 'stock'), ('default', 'CCC', 'stock'), ('default', 'FLAT', 'etf');",
    );
    db.execute(&format!(
        "INSERT INTO market_symbols (tenant_id, ticker, asset_class) VALUES ('default', '{OPTION}', 'option');"
    ));
    // A year of daily bars, so the event discovery run a move asks for has a universe.
    db.execute(
        "INSERT INTO market_bars (tenant_id, symbol, interval, time, open, high, low, close, volume) \
         SELECT 'default', s.sym, '1d', d, p, p * 1.01, p * 0.99, p, 2000000 \
         FROM unnest(ARRAY['AAA', 'CCC', 'FLAT']) AS s(sym), \
           generate_series(date_trunc('day', now()) - interval '400 days', \
                           date_trunc('day', now()) - interval '1 day', interval '1 day') AS d, \
           LATERAL (SELECT 100 + 10 * sin(extract(epoch FROM d) / 86400 / 20 + length(s.sym)) AS p) AS x \
         WHERE extract(isodow FROM d) < 6",
    );
    // AAA +6.5 %, CCC +4 %, FLAT unchanged, the option +20 %: only AAA qualifies.
    db.execute(&bars_sql("AAA", 100.0, 106.5, 2));
    db.execute(&bars_sql("CCC", 100.0, 104.0, 2));
    db.execute(&bars_sql("FLAT", 50.0, 50.0, 2));
    db.execute(&bars_sql(OPTION, 5.0, 6.0, 2));

    c.check(
        "a 5 % move of a stock raises price.move and reaches the channel",
        || {
            let raised = wait_for(Duration::from_secs(60), || {
                let n = count(
                    &db,
                    "SELECT count(*) FROM alert_events WHERE type = 'price.move'",
                );
                (n > 0).then_some(n)
            });
            assert_eq!(raised, Some(1), "one price.move event");
            let rows = db
                .query("SELECT labels::text, summary FROM alert_events WHERE type = 'price.move'")
                .expect("events");
            let labels: Value = serde_json::from_str(rows[0].get::<_, &str>(0)).expect("labels");
            assert_eq!(labels["symbol"], "AAA", "{labels}");
            assert_eq!(labels["direction"], "up", "{labels}");
            let summary: String = rows[0].get(1);
            assert!(summary.contains("6.5 %"), "{summary}");
            let delivered = wait_for(Duration::from_secs(60), || {
                receiver
                    .requests()
                    .iter()
                    .any(|l| l.starts_with("POST /hook"))
                    .then_some(())
            });
            assert!(
                delivered.is_some(),
                "the Slack receiver got the alert: {:?}",
                receiver.requests()
            );
        },
    );

    c.check(
        "the move asks the picker for an event discovery run, and gets one",
        || {
            let handled = wait_for(Duration::from_secs(90), || {
                let rows = db
                    .query(
                        "SELECT symbol, reason, run_id::text, outcome::text FROM discovery_requests \
                         WHERE handled_at IS NOT NULL",
                    )
                    .expect("requests");
                (!rows.is_empty()).then(|| {
                    rows.iter()
                        .map(|r| {
                            (
                                r.get::<_, String>(0),
                                r.get::<_, String>(1),
                                r.get::<_, Option<String>>(2),
                                r.get::<_, Option<String>>(3),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .unwrap_or_else(|| {
                panic!(
                    "the request was not handled: {}",
                    host.get("/v1/discovery/requests").describe()
                )
            });
            assert_eq!(handled.len(), 1, "one request for the one move: {handled:?}");
            let (symbol, reason, run_id, outcome) = &handled[0];
            assert_eq!((symbol.as_str(), reason.as_str()), ("AAA", "price.move"));
            let run_id = run_id
                .clone()
                .unwrap_or_else(|| panic!("the request names no run: {outcome:?}"));
            let outcome: Value =
                serde_json::from_str(outcome.as_deref().unwrap_or("null")).expect("outcome");
            assert_eq!(outcome["status"], "succeeded", "{outcome}");
            let r = host.get(&format!("/v1/discovery/runs/{run_id}"));
            assert_eq!(r.status, 200, "{}", r.describe());
            let run = r.json();
            assert_eq!(run["trigger"], "event", "{run}");
            assert_eq!(run["status"], "succeeded", "{run}");
            assert_eq!(run["settings"]["event"]["reasons"], json!(["price.move"]), "{run}");
            assert!(run["settings"]["event"]["symbols"]["AAA"].is_object(), "{run}");
            let r = host.get("/v1/discovery/requests");
            assert_eq!(r.status, 200, "{}", r.describe());
            assert_eq!(r.json()["requests"][0]["run_id"], run_id.as_str(), "{}", r.describe());
        },
    );

    c.check("options, small moves and flat symbols raise nothing", || {
        let after = scans(&db) + 3;
        assert!(wait_for(Duration::from_secs(60), || (scans(&db) >= after).then_some(())).is_some());
        let others = count(
            &db,
            "SELECT count(*) FROM alert_events WHERE type = 'price.move' AND labels->>'symbol' <> 'AAA'",
        );
        assert_eq!(others, 0);
    });

    c.check("the cooldown holds while the move goes on", || {
        // A newer bar extends AAA's move (a new end, so not the same event again).
        let minute = minute_now_ms() - 60_000;
        db.execute(&format!(
            "INSERT INTO market_bars (tenant_id, symbol, interval, time, open, high, low, close, volume) \
             VALUES ('default', 'AAA', '1m', to_timestamp({} / 1000.0), 106.5, 109, 106.5, 109, 1000) \
             ON CONFLICT DO NOTHING",
            minute - 60_000
        ));
        let after = scans(&db) + 3;
        assert!(wait_for(Duration::from_secs(60), || (scans(&db) >= after).then_some(())).is_some());
        let n = count(&db, "SELECT count(*) FROM alert_events WHERE type = 'price.move'");
        assert_eq!(n, 1, "no second alert for AAA within its cooldown");
        let cooled = count(
            &db,
            "SELECT count(*) FROM alert_monitor_cooldowns WHERE tenant_id = 'default' AND symbol = 'AAA'",
        );
        assert_eq!(cooled, 1);
    });

    c.check("a rejected trade raises validation.rejected with its validation", || {
        let account = json!({"equity": 100000, "cash": 60000, "peak_equity": 100000, "positions": []});
        // 15 % of equity in one name: rejected. 5 %: approved, and raises nothing.
        let trade = |quantity: u32| {
            json!({"trade": {"symbol": "ACME", "side": "buy", "quantity": quantity, "limit_price": 100,
                             "stop": 96, "sector": "tech", "average_daily_volume": 5000000},
                   "account": account})
        };
        let approved = host.post_json("/v1/validate/trade", &trade(50));
        assert_eq!(approved.status, 200, "{}", approved.describe());
        assert_eq!(approved.json()["verdict"], "approve", "{}", approved.describe());
        let rejected = host.post_json("/v1/validate/trade", &trade(150));
        assert_eq!(rejected.status, 200, "{}", rejected.describe());
        assert_eq!(rejected.json()["verdict"], "reject", "{}", rejected.describe());
        let validation = rejected.json()["id"].as_str().expect("validation id").to_string();

        let event = events_of(&db, "validation.rejected").expect("the rejection became an alert event");
        assert_eq!(event.len(), 1, "only the rejection raises an alert: {event:?}");
        let StoredEvent { labels, summary, payload, .. } = &event[0];
        assert_eq!(labels, &json!({"kind": "trade", "symbol": "ACME"}));
        assert!(summary.starts_with("trade ACME rejected: "), "{summary}");
        assert_eq!(payload["validation_id"], validation.as_str());
        let pending = count(&db, "SELECT count(*) FROM alert_inbox WHERE routed_at IS NULL");
        assert_eq!(pending, 0, "the inbox is drained");
        let delivered = wait_for(Duration::from_secs(60), || {
            let n = receiver.requests().iter().filter(|l| l.starts_with("POST /hook")).count();
            (n >= 2).then_some(n)
        });
        assert!(delivered.is_some(), "the rejection reached the channel: {:?}", receiver.requests());
    });

    c.check(
        "the daily P&L summary is raised once per tenant and day",
        || {
            db.execute(
            "INSERT INTO portfolio_snapshots (tenant_id, equity, cash, day_pnl, taken_at) VALUES \
             ('default', 110000, 50000, 0, now() - interval '30 days'), \
             ('default', 101000, 50000, 1000, now())",
        );
            // The day may have been claimed before the snapshot existed: claim it again.
            db.execute("DELETE FROM alert_daily_summaries");
            let summary =
                wait_for(Duration::from_secs(60), || {
                    let rows = db
                .query("SELECT summary, payload::text FROM alert_events WHERE type = 'pnl.daily'")
                .expect("events");
                    (!rows.is_empty()).then(|| {
                        (
                            rows.len(),
                            rows[0].get::<_, String>(0),
                            rows[0].get::<_, String>(1),
                        )
                    })
                })
                .expect("a pnl.daily event");
            assert_eq!(summary.0, 1);
            assert!(
                summary
                    .1
                    .contains(": +1000.00 (+1.00 %), equity 101000.00, drawdown 8.18 %"),
                "{}",
                summary.1
            );
            let payload: Value = serde_json::from_str(&summary.2).expect("payload");
            assert_eq!(payload["snapshots"], 1, "{payload}");
            assert_eq!(payload["peak_equity"], 110000.0, "{payload}");
            // Claimed again: the same tenant and day are not summarised twice.
            let after = scans(&db) + 3;
            db.execute("DELETE FROM alert_daily_summaries");
            assert!(
                wait_for(Duration::from_secs(60), || (scans(&db) >= after)
                    .then_some(()))
                .is_some()
            );
            assert_eq!(
                count(
                    &db,
                    "SELECT count(*) FROM alert_events WHERE type = 'pnl.daily'"
                ),
                1
            );
            assert_eq!(count(&db, "SELECT count(*) FROM alert_daily_summaries"), 1);
        },
    );

    c.check("large position changes between snapshots raise position.large_change", || {
        let snapshot = |quantity: f64| {
            let r = host.post_json(
                "/v1/portfolio/snapshots",
                &json!({"equity": 100000, "cash": 50000, "day_pnl": 0,
                        "positions": [{"symbol": "AAA", "quantity": quantity, "price": 100},
                                      {"symbol": "BBB", "quantity": 10 + quantity as i64 / 100, "price": 10}]}),
            );
            assert_eq!(r.status, 201, "{}", r.describe());
        };
        // Opened 100 × 100 = 10 % of equity; then +100 (10 %); BBB's +1 × 10 stays below 5 %.
        snapshot(100.0);
        snapshot(200.0);
        let changes = wait_for(Duration::from_secs(60), || {
            let rows = db
                .query(
                    "SELECT labels->>'symbol', labels->>'change' FROM alert_events \
                     WHERE type = 'position.large_change' ORDER BY occurred_at, id",
                )
                .expect("events");
            (rows.len() >= 2).then(|| {
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                    .collect::<Vec<_>>()
            })
        })
        .expect("two position.large_change events");
        assert_eq!(
            changes,
            [("AAA".to_string(), "opened".to_string()), ("AAA".to_string(), "increased".to_string())]
        );
    });

    c.check(
        "a component answering 5xx is reported by the host and raises system.error",
        || {
            let r = host.post_json(
                "/v1/alerts/rules",
                &json!({"name": "system", "event_types": ["system.*"], "channels": [channel.clone()],
                        "group_by": ["component"], "timing": {"group_wait_ms": 0}}),
            );
            assert_eq!(r.status, 201, "{}", r.describe());
            for _ in 0..2 {
                assert_eq!(host.get("/faults/ok").status, 200);
            }
            for _ in 0..3 {
                assert_eq!(host.get("/faults/trap").status, 500);
            }
            let event = events_of(&db, "system.error").expect("a system.error event");
            assert_eq!(event.len(), 1, "{event:?}");
            let StoredEvent { labels, severity, payload, .. } = &event[0];
            assert_eq!(labels["component"], "faults", "{labels}");
            // 3 of 5 answers failed: over half, so critical.
            assert_eq!(severity, "critical");
            assert_eq!((payload["requests"].as_i64(), payload["errors"].as_i64()), (Some(5), Some(3)), "{payload}");
            assert_eq!(payload["statuses"]["500"], 3, "{payload}");
            // Within the cool-down, more failures are not reported again.
            for _ in 0..3 {
                assert_eq!(host.get("/faults/trap").status, 500);
            }
            let after = scans(&db) + 3;
            assert!(wait_for(Duration::from_secs(60), || (scans(&db) >= after).then_some(())).is_some());
            assert_eq!(count(&db, "SELECT count(*) FROM alert_events WHERE type = 'system.error'"), 1);
            let delivered = wait_for(Duration::from_secs(60), || {
                (count(
                    &db,
                    "SELECT count(*) FROM alert_deliveries \
                     WHERE status = 'delivered' AND body LIKE '%component faults answered%'",
                ) == 1)
                    .then_some(())
            });
            assert!(delivered.is_some(), "the alert reached the channel: {}", delivery_states(&db));
        },
    );

    c.finish(Some(&host));
}
