//! The validator end to end: the validator block of the repository's spin.toml on the real
//! host, real Postgres with pgvector. Trades are approved, warned about (a wide stop, setups
//! like ones that lost before) and rejected with their numbers; no flag, header or context
//! turns a rejection into an approval; the circuit breaker trips on snapshots, rejects every
//! trade while not closed, moves to awaiting approval only when drawdown, win streak and
//! 7-day Sharpe recover, and closes on an operator's resume; a formula sheet reports its
//! cycle and a wrong claimed value; a DCF and an LBO report their findings; bad input gets a
//! JSON 4xx naming the field.

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, Response, TempDir, TestDb, TestHost};

/// The manifest's head (application, variables) and its validator block, with the
/// component's path made absolute: the host then needs no other component built.
fn manifest() -> String {
    let root = tessera_e2e::root();
    let full = std::fs::read_to_string(root.join("spin.toml")).unwrap();
    let head = &full[..full.find("[[trigger.").expect("spin.toml has triggers")];
    let start = full
        .find("# validator:")
        .expect("spin.toml has the validator block");
    let rest = &full[start..];
    // The block ends where the next component's comment starts (after a blank line).
    let end = rest.find("\n\n#").map_or(rest.len(), |i| i + 1);
    let block = rest[..end].replace(
        "source = \"target/wasm32-wasip2/release/validator.wasm\"",
        &format!(
            "source = {}",
            tessera_e2e::toml_string(&tessera_e2e::wasm("validator").to_string_lossy())
        ),
    );
    format!("{head}\n{block}")
}

fn host(db: &TestDb, dir: &TempDir) -> TestHost {
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest()).unwrap();
    HostCommand::with_manifest_file(db, path)
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start()
}

fn send(host: &TestHost, method: &str, path: &str, tenant: &str, body: Option<&Value>) -> Response {
    let r = Request::new(method, path).header("x-tenant-id", tenant);
    match body {
        Some(b) => r.json(b).send(host.addr()),
        None => r.send(host.addr()),
    }
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn ok(r: Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.describe());
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

fn account() -> Value {
    json!({
        "equity": 100000, "cash": 60000, "day_pnl": 0, "peak_equity": 100000,
        "positions": [{"symbol": "BETA", "quantity": 100, "price": 100, "sector": "energy"}]
    })
}

/// A buy of `quantity` at 100 with a stop at 96, in a liquid name.
fn trade(quantity: f64) -> Value {
    json!({
        "symbol": "ACME", "side": "buy", "quantity": quantity, "limit_price": 100,
        "stop": 96, "sector": "tech", "average_daily_volume": 5000000
    })
}

fn validate(host: &TestHost, tenant: &str, body: &Value) -> Value {
    ok(
        send(host, "POST", "/v1/validate/trade", tenant, Some(body)),
        200,
    )
}

fn codes(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

/// A unit vector along `axis`, nudged along `axis + 1` by `tilt`.
fn embedding(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0f32; 384];
    v[axis] = 1.0;
    v[axis + 1] = tilt;
    v
}

fn days_ago(days: i64) -> String {
    // Noon UTC `days` days ago, from the database's clock as the component sees it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = now.div_euclid(86_400) - days;
    let (y, m, d) = civil(day);
    format!("{y:04}-{m:02}-{d:02}T12:00:00Z")
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[test]
fn validator_end_to_end() {
    let db = TestDb::new();
    let dir = TempDir::new("tessera-validator");
    let host = host(&db, &dir);
    let mut checks = Checks::new("validator");

    checks.check("limits: defaults, a partial update, refused values", || {
        let t = "val-limits";
        let v = ok(send(&host, "GET", "/v1/validator/limits", t, None), 200);
        assert_eq!(v["default"], true, "{v}");
        assert_eq!(v["limits"]["max_position_pct"], 10.0, "{v}");
        let v = ok(
            send(&host, "PUT", "/v1/validator/limits", t,
                Some(&json!({"limits": {"max_position_pct": 12}, "breaker_rules": {"max_losing_streak": 4}}))),
            200,
        );
        assert_eq!(v["limits"]["max_position_pct"], 12.0, "{v}");
        assert_eq!(v["limits"]["max_sector_pct"], 30.0, "the rest stays: {v}");
        assert_eq!(v["breaker_rules"]["max_losing_streak"], 4, "{v}");
        let r = send(&host, "PUT", "/v1/validator/limits", t, Some(&json!({"limits": {"max_position_pct": -1}})));
        assert_error(&r, 400, "invalid_field", Some("limits.max_position_pct"));
        let r = send(&host, "PUT", "/v1/validator/limits", t, Some(&json!({"limits": {"allowed_asset_classes": []}})));
        assert_error(&r, 400, "invalid_field", Some("limits.allowed_asset_classes"));
        let r = send(&host, "PUT", "/v1/validator/limits", t, Some(&json!({"limits": {"max_position": 5}})));
        assert_eq!(r.status, 400, "{}", r.describe());
        assert!(r.text().contains("max_position"), "{}", r.text());
        let v = ok(send(&host, "GET", "/v1/validator/limits", t, None), 200);
        assert_eq!(v["limits"]["max_position_pct"], 12.0, "refused updates changed nothing: {v}");
    });

    checks.check(
        "approve, warn and reject, each with its numbers, all audited",
        || {
            let t = "val-trades";
            let v = validate(
                &host,
                t,
                &json!({"trade": trade(50.0), "account": account()}),
            );
            assert_eq!(v["verdict"], "approve", "{v}");
            assert_eq!(v["exposure"]["position_pct"], 5.0, "{v}");

            let mut wide = trade(50.0);
            wide["stop"] = json!(80);
            let v = validate(&host, t, &json!({"trade": wide, "account": account()}));
            assert_eq!(v["verdict"], "approve_with_warnings", "{v}");
            let r = &v["reasons"][0];
            assert_eq!(
                (r["code"].as_str(), r["limit"].as_f64(), r["value"].as_f64()),
                (Some("stop_too_wide"), Some(8.0), Some(20.0)),
                "{v}"
            );

            let v = validate(
                &host,
                t,
                &json!({"trade": trade(150.0), "account": account()}),
            );
            assert_eq!(v["verdict"], "reject", "{v}");
            let r = &v["reasons"][0];
            assert_eq!(
                (r["code"].as_str(), r["severity"].as_str()),
                (Some("position_limit"), Some("hard")),
                "{v}"
            );
            assert_eq!(
                (r["limit"].as_f64(), r["value"].as_f64()),
                (Some(10.0), Some(15.0)),
                "{v}"
            );
            assert!(r["message"].as_str().unwrap().contains("15.00%"), "{v}");

            let list = ok(
                send(&host, "GET", "/v1/validations?kind=trade", t, None),
                200,
            );
            let items = list["validations"].as_array().unwrap();
            let verdicts: Vec<&str> = items
                .iter()
                .map(|i| i["verdict"].as_str().unwrap())
                .collect();
            assert_eq!(
                verdicts,
                vec!["reject", "approve_with_warnings", "approve"],
                "newest first"
            );
            assert_eq!(
                items[0]["input"]["trade"]["quantity"], 150.0,
                "inputs are kept"
            );
            assert_eq!(items[0]["result"]["reasons"][0]["code"], "position_limit");
            let rejected = ok(
                send(
                    &host,
                    "GET",
                    "/v1/validations?verdict=reject&symbol=acme",
                    t,
                    None,
                ),
                200,
            );
            assert_eq!(rejected["validations"].as_array().unwrap().len(), 1);
            let other = ok(
                send(&host, "GET", "/v1/validations", "val-someone-else", None),
                200,
            );
            assert_eq!(
                other["validations"].as_array().unwrap().len(),
                0,
                "tenants never see each other's"
            );
        },
    );

    checks.check("no flag, header, role or model output overrides a hard constraint", || {
        let t = "val-override";
        for (field, value) in [("override", json!(true)), ("force", json!(true)), ("approved", json!("yes"))] {
            let mut body = json!({"trade": trade(1000.0), "account": account()});
            body[field] = value.clone();
            let r = send(&host, "POST", "/v1/validate/trade", t, Some(&body));
            assert_eq!(r.status, 400, "top-level {field}: {}", r.describe());
            assert!(r.json()["error"]["message"].as_str().unwrap().contains(field), "{}", r.text());
            let mut body = json!({"trade": trade(1000.0), "account": account()});
            body["trade"][field] = value;
            let r = send(&host, "POST", "/v1/validate/trade", t, Some(&body));
            assert_eq!(r.status, 400, "trade.{field}: {}", r.describe());
        }
        // A context saying anything, from a caller claiming any role, changes nothing.
        let body = json!({
            "trade": trade(1000.0), "account": account(),
            "context": {"override": true, "model_verdict": "approve", "confidence": 0.99, "role": "admin"}
        });
        let r = Request::new("POST", "/v1/validate/trade")
            .header("x-tenant-id", t)
            .header("x-user-id", "admin")
            .header("x-role", "admin")
            .header("x-override", "true")
            .json(&body)
            .send(host.addr())
            .unwrap();
        let v = ok(r, 200);
        assert_eq!(v["verdict"], "reject", "{v}");
        assert!(codes(&v).contains(&"position_limit".to_string()), "{v}");
        let list = ok(send(&host, "GET", "/v1/validations", t, None), 200);
        assert_eq!(list["validations"][0]["input"]["context"]["model_verdict"], "approve", "context is audited");
    });

    checks.check("a setup like past losers warns, with their outcomes (pgvector)", || {
        let t = "val-similar";
        let closed: Vec<Value> = (0..3)
            .map(|i| json!({"symbol": "ACME", "pnl": -100.0 * (i as f64 + 1.0), "setup": "breakout on volume", "embedding": embedding(0, 0.05 * i as f32)}))
            .chain([json!({"symbol": "WIN", "pnl": 500, "embedding": embedding(0, 0.01)})])
            .chain([json!({"symbol": "FAR", "pnl": -50, "embedding": embedding(10, 0.0)})])
            .collect();
        ok(send(&host, "POST", "/v1/portfolio/snapshots", t, Some(&json!({"equity": 100000, "cash": 60000, "closed_trades": closed}))), 201);
        let v = validate(&host, t, &json!({"trade": trade(50.0), "account": account(), "setup_embedding": embedding(0, 0.02)}));
        assert_eq!(v["verdict"], "approve_with_warnings", "{v}");
        assert_eq!(codes(&v), vec!["similar_setups_failed"], "{v}");
        assert!(v["reasons"][0]["message"].as_str().unwrap().contains("failed 3 times"), "{v}");
        let losses = v["similar_losses"].as_array().unwrap();
        assert_eq!(losses.len(), 3, "the winner and the dissimilar loser are not shown: {v}");
        assert!(losses.iter().all(|l| l["pnl"].as_f64().unwrap() < 0.0 && l["similarity"].as_f64().unwrap() > 0.99));
        let v = validate(&host, "val-similar-other", &json!({"trade": trade(50.0), "account": account(), "setup_embedding": embedding(0, 0.02)}));
        assert_eq!(v["verdict"], "approve", "another tenant's trades are not searched: {v}");
    });

    checks.check("the breaker trips, rejects every trade, awaits approval on recovery, and an operator closes it", || {
        let t = "val-breaker";
        let snap = |days: i64, equity: f64, day_pnl: f64, closed: Value| {
            ok(send(&host, "POST", "/v1/portfolio/snapshots", t, Some(&json!({
                "equity": equity, "cash": equity / 2.0, "day_pnl": day_pnl,
                "taken_at": days_ago(days), "closed_trades": closed
            }))), 201)
        };
        let v = snap(12, 100000.0, 0.0, json!([]));
        assert_eq!(v["circuit_breaker"]["state"], "closed", "{v}");
        let v = snap(11, 75000.0, -25000.0, json!([]));
        let b = &v["circuit_breaker"];
        assert_eq!(b["state"], "open", "{v}");
        assert_eq!(b["transition"]["trigger"], "activation", "{v}");
        let reason = b["reason"].as_str().unwrap().to_string();
        assert!(reason.contains("drawdown 25.00% ≥ 20%"), "{reason}");
        assert!(reason.contains("daily loss 25.00% ≥ 5%"), "{reason}");
        // The transition queued a critical alert for the alert component, in its transaction.
        let queued = db
            .query(&format!(
                "SELECT severity, labels->>'trigger' FROM alert_inbox \
                 WHERE tenant_id = '{t}' AND type = 'circuit_breaker.open'"
            ))
            .expect("alert inbox");
        assert_eq!(queued.len(), 1, "one circuit_breaker.open alert queued");
        assert_eq!(queued[0].get::<_, String>(0), "critical");
        assert_eq!(queued[0].get::<_, String>(1), "activation");

        let mut reducing = json!({"symbol": "BETA", "side": "sell", "quantity": 10, "limit_price": 100, "average_daily_volume": 5000000});
        reducing["stop"] = json!(104);
        for body in [json!({"trade": trade(10.0), "account": account()}), json!({"trade": reducing, "account": account()})] {
            let v = validate(&host, t, &body);
            assert_eq!(v["verdict"], "reject", "{v}");
            assert_eq!(v["reasons"][0]["code"], "circuit_breaker_open", "{v}");
            assert!(v["reasons"][0]["message"].as_str().unwrap().contains("drawdown 25.00%"), "{v}");
        }
        let r = send(&host, "POST", "/v1/system/circuit-breaker/resume", t, Some(&json!({"operator": "ops"})));
        assert_error(&r, 409, "breaker_not_awaiting_approval", None);

        // Recovery over the last week, but no winning trades yet.
        for (i, equity) in [80000.0, 82000.0, 85000.0, 86000.0, 88000.0, 90000.0].into_iter().enumerate() {
            snap(6 - i as i64, equity, 1000.0, json!([]));
        }
        let v = ok(send(&host, "GET", "/v1/system/circuit-breaker", t, None), 200);
        assert_eq!(v["state"], "open", "{v}");
        let conditions = v["resume_check"]["conditions"].as_array().unwrap();
        let named = |n: &str| conditions.iter().find(|c| c["name"] == n).unwrap().clone();
        assert_eq!(named("drawdown_recovered")["passed"], true, "{v}");
        assert_eq!(named("drawdown_recovered")["value"], 10.0, "{v}");
        assert_eq!(named("win_streak")["passed"], false, "{v}");
        assert_eq!(named("win_streak")["value"], 0.0, "{v}");
        assert!(named("sharpe_7d")["value"].as_f64().unwrap() > 0.3, "{v}");

        snap(0, 91000.0, 1000.0, json!([
            {"symbol": "A", "pnl": 100}, {"symbol": "B", "pnl": 200}, {"symbol": "C", "pnl": 50}
        ]));
        let v = ok(send(&host, "GET", "/v1/system/circuit-breaker", t, None), 200);
        assert_eq!(v["state"], "awaiting_approval", "{v}");
        assert_eq!(v["transition"]["trigger"], "auto_resume_check", "{v}");
        assert_eq!(v["resume_check"]["passed"], true, "{v}");
        let v = validate(&host, t, &json!({"trade": trade(10.0), "account": account()}));
        assert_eq!(v["reasons"][0]["code"], "circuit_breaker_open", "awaiting approval still halts: {v}");

        let r = Request::new("POST", "/v1/system/circuit-breaker/resume")
            .header("x-tenant-id", t)
            .header("x-user-id", "ops-1")
            .json(&json!({"note": "reviewed the drawdown"}))
            .send(host.addr())
            .unwrap();
        let v = ok(r, 200);
        assert_eq!(v["state"], "closed", "{v}");
        let events: Vec<(String, String)> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["trigger"].as_str().unwrap().into(), e["to"].as_str().unwrap().into()))
            .collect();
        assert_eq!(events, vec![
            ("operator_resume".to_string(), "closed".to_string()),
            ("auto_resume_check".into(), "awaiting_approval".into()),
            ("activation".into(), "open".into()),
        ]);
        assert_eq!(v["events"][0]["actor"], "ops-1");
        assert_eq!(v["events"][0]["reason"], "resumed by ops-1: reviewed the drawdown");
        let v = validate(&host, t, &json!({"trade": trade(10.0), "account": account()}));
        assert_eq!(v["verdict"], "approve", "{v}");
        let r = send(&host, "POST", "/v1/system/circuit-breaker/resume", t, Some(&json!({"operator": "ops"})));
        assert_error(&r, 409, "breaker_not_awaiting_approval", None);
    });

    checks.check("a trade against a stored snapshot uses its positions and peak", || {
        let t = "val-snapshot";
        ok(send(&host, "POST", "/v1/portfolio/snapshots", t, Some(&json!({"equity": 120000, "cash": 0}))), 201);
        let v = ok(send(&host, "POST", "/v1/portfolio/snapshots", t, Some(&json!({
            "equity": 100000, "cash": 20000, "positions": [{"symbol": "ACME", "quantity": 80, "price": 100, "sector": "tech"}]
        }))), 201);
        let id = v["id"].as_str().unwrap();
        let v = validate(&host, t, &json!({"trade": trade(30.0), "snapshot_id": id}));
        assert_eq!(v["exposure"]["position_qty_before"], 80.0, "{v}");
        assert_eq!(v["exposure"]["drawdown_pct"], 16.666667, "{v}");
        assert_eq!(v["reasons"][0]["code"], "position_limit", "80 + 30 at 100 is 11% of equity: {v}");
    });

    checks.check("a formula sheet: values in order, a cycle, a wrong claim, a parse error, limits", || {
        let t = "val-formula";
        let v = ok(send(&host, "POST", "/v1/validate/formula", t, Some(&json!({
            "cells": {
                "A1": -1000, "A2": 300, "A3": 400, "A4": 500,
                "B1": "=IRR(A1:A4)", "B2": "=NPV(B1, A2:A4) + A1", "B3": "=ROUND(PMT(0.06/12, 360, 200000), 2)",
                "C1": "=C2+1", "C2": "=C1*2", "D1": "=SUM(1,", "D2": "=Z99*2"
            },
            "sheets": {"Inputs": {"A1": 0.1}},
            "claims": {"B3": -1199.1, "B2": 0, "A4": 400, "Inputs!A1": 0.1}
        }))), 200);
        assert_eq!(v["valid"], false, "{v}");
        let cells = v["cells"].as_array().unwrap();
        let pos = |c: &str| cells.iter().position(|x| x["cell"] == c).unwrap();
        assert!(pos("Sheet1!A1") < pos("Sheet1!B1") && pos("Sheet1!B1") < pos("Sheet1!B2"), "dependency order");
        assert_eq!(v["circular"][0]["cells"], json!(["Sheet1!C1", "Sheet1!C2"]), "{v}");
        assert_eq!(v["parse_errors"][0]["cell"], "Sheet1!D1");
        assert_eq!(v["parse_errors"][0]["position"], 8);
        assert_eq!(v["empty_references"][0]["reference"], "Z99");
        let claims = v["claims"].as_array().unwrap();
        let claim = |c: &str| claims.iter().find(|x| x["cell"] == c).unwrap().clone();
        assert_eq!(claim("Sheet1!B3")["matches"], true, "{v}");
        assert_eq!(claim("Sheet1!B2")["matches"], true, "NPV at the IRR is 0: {v}");
        assert_eq!(claim("Sheet1!A4")["matches"], false, "{v}");
        assert_eq!(claim("Sheet1!A4")["difference"], 100.0, "{v}");
        assert_eq!(claim("Inputs!A1")["matches"], true, "{v}");

        let deep = format!("={}1{}", "(".repeat(100), ")".repeat(100));
        let v = ok(send(&host, "POST", "/v1/validate/formula", t, Some(&json!({"cells": {"A1": deep}}))), 200);
        assert_eq!(v["parse_errors"][0]["limit"]["limit"], "depth", "{v}");
        let many: serde_json::Map<String, Value> = (1..=20_001).map(|i| (format!("A{i}"), json!(i))).collect();
        let r = send(&host, "POST", "/v1/validate/formula", t, Some(&json!({"cells": many})));
        assert_error(&r, 422, "limit_exceeded", Some("cells"));
        let r = send(&host, "POST", "/v1/validate/formula", t, Some(&json!({"cells": {"A0": 1}})));
        assert_error(&r, 400, "invalid_field", Some("cells.A0"));
    });

    checks.check("DCF and LBO findings carry the numbers involved", || {
        let t = "val-model";
        let v = ok(send(&host, "POST", "/v1/validate/model", t, Some(&json!({
            "kind": "dcf", "discount_rate": 0.08, "convention": "end",
            "periods": [
                {"year": 2025, "cash_flow": 100, "discount_factor": 0.9622504486},
                {"year": 2026, "cash_flow": 110},
                {"year": 2028, "cash_flow": 120}
            ],
            "terminal": {"growth": 0.09},
            "bridge": {"debt": 300, "cash": 50, "equity_value": 1000}
        }))), 200);
        assert_eq!(v["valid"], false, "{v}");
        let findings = v["findings"].as_array().unwrap();
        let find = |c: &str| findings.iter().find(|f| f["code"] == c).unwrap_or_else(|| panic!("{c} in {v}")).clone();
        let g = find("terminal_growth_not_below_discount_rate");
        assert_eq!((g["numbers"]["terminal_growth"].as_f64(), g["numbers"]["discount_rate"].as_f64()), (Some(0.09), Some(0.08)));
        assert!(find("discounting_mismatch")["message"].as_str().unwrap().contains("mid-year"), "{v}");
        assert_eq!(find("periods_misaligned")["numbers"]["year"], 2028.0);
        assert!(find("equity_bridge_mismatch")["numbers"]["computed"].is_number());

        let v = ok(send(&host, "POST", "/v1/validate/model", t, Some(&json!({
            "kind": "lbo",
            "equity_flows": [{"year": 2024, "amount": -400}, {"year": 2025, "amount": 0}, {"year": 2026, "amount": 1000}],
            "exit": {"ebitda": 150, "multiple": 8, "net_debt": 200},
            "stated_irr": 0.25, "stated_moic": 2.5
        }))), 200);
        let irr = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "irr_mismatch").cloned().unwrap_or_else(|| panic!("{v}"));
        assert_eq!(irr["numbers"]["stated"], 0.25);
        assert!((irr["numbers"]["computed"].as_f64().unwrap() - (2.5f64.sqrt() - 1.0)).abs() < 1e-9);
        let list = ok(send(&host, "GET", "/v1/validations?kind=model", t, None), 200);
        assert_eq!(list["validations"].as_array().unwrap().len(), 2);
    });

    checks.check("bad input: a JSON 4xx naming the field", || {
        let t = "val-bad";
        let post = |path: &str, body: Value| send(&host, "POST", path, t, Some(&body));
        let mut no_qty = trade(1.0);
        no_qty.as_object_mut().unwrap().remove("quantity");
        assert_error(
            &post(
                "/v1/validate/trade",
                json!({"trade": no_qty, "account": account()}),
            ),
            400,
            "missing_field",
            Some("trade.quantity"),
        );
        assert_error(
            &post(
                "/v1/validate/trade",
                json!({"trade": trade(-5.0), "account": account()}),
            ),
            400,
            "invalid_field",
            Some("trade.quantity"),
        );
        let mut bad_stop = trade(5.0);
        bad_stop["stop"] = json!(101);
        assert_error(
            &post(
                "/v1/validate/trade",
                json!({"trade": bad_stop, "account": account()}),
            ),
            400,
            "invalid_field",
            Some("trade.stop"),
        );
        let mut bad_side = trade(5.0);
        bad_side["side"] = json!("hold");
        assert_error(
            &post(
                "/v1/validate/trade",
                json!({"trade": bad_side, "account": account()}),
            ),
            400,
            "invalid_field",
            Some("trade.side"),
        );
        assert_error(
            &post("/v1/validate/trade", json!({"trade": trade(5.0)})),
            400,
            "missing_field",
            Some("account"),
        );
        let mut zero = account();
        zero["equity"] = json!(0);
        assert_error(
            &post(
                "/v1/validate/trade",
                json!({"trade": trade(5.0), "account": zero}),
            ),
            400,
            "invalid_field",
            Some("account.equity"),
        );
        assert_error(
            &post(
                "/v1/validate/trade",
                json!({"trade": trade(5.0), "snapshot_id": "nope"}),
            ),
            400,
            "invalid_id",
            Some("snapshot_id"),
        );
        assert_error(
            &post(
                "/v1/validate/trade",
                json!({"trade": trade(5.0), "snapshot_id": "00000000-0000-0000-0000-000000000000"}),
            ),
            404,
            "snapshot_not_found",
            Some("snapshot_id"),
        );
        assert_error(
            &post(
                "/v1/validate/trade",
                json!({"trade": trade(5.0), "account": account(), "setup_embedding": [1.0, 2.0]}),
            ),
            400,
            "invalid_field",
            Some("setup_embedding"),
        );
        assert_error(
            &post(
                "/v1/portfolio/snapshots",
                json!({"equity": 100, "cash": 1, "taken_at": "yesterday"}),
            ),
            400,
            "invalid_field",
            Some("taken_at"),
        );
        assert_error(
            &post("/v1/portfolio/snapshots", json!({"equity": -1, "cash": 1})),
            400,
            "invalid_field",
            Some("equity"),
        );
        assert_error(
            &post("/v1/validate/model", json!({"kind": "npv"})),
            400,
            "invalid_field",
            Some("kind"),
        );
        assert_error(
            &post(
                "/v1/validate/model",
                json!({"kind": "dcf", "discount_rate": 0.1, "periods": []}),
            ),
            400,
            "invalid_field",
            Some("periods"),
        );
        assert_error(
            &post(
                "/v1/validate/formula",
                json!({"cells": {"A1": 1}, "tolerance": -1}),
            ),
            400,
            "invalid_field",
            Some("tolerance"),
        );
        assert_error(
            &send(&host, "GET", "/v1/validations?limit=0", t, None),
            400,
            "invalid_field",
            Some("limit"),
        );
        assert_error(
            &send(&host, "GET", "/v1/validations?kind=poem", t, None),
            400,
            "invalid_field",
            Some("kind"),
        );
        let r = Request::new("POST", "/v1/validate/trade")
            .header("x-tenant-id", t)
            .header("content-type", "application/json")
            .body(b"{\"trade\": ")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 400, "invalid_json", None);
        let r = send(&host, "GET", "/v1/validate/trade", t, None);
        assert_eq!(r.status, 405, "{}", r.describe());
        assert_eq!(r.header("allow"), Some("POST"));
        let r = send(
            &host,
            "POST",
            "/v1/validate/trade",
            "bad tenant!",
            Some(&json!({})),
        );
        assert_error(&r, 400, "invalid_header", Some("x-tenant-id"));
    });

    checks.finish(Some(&host));
}
