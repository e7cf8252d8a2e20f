//! The picker end to end: the picker block of the repository's spin.toml on the real host,
//! real Postgres with pgvector, the MiniLM model mounted as in spin.toml. A generated
//! universe (tessera-picking's `synth`, 40 symbols over 300 trading days) is bulk-loaded as
//! NDJSON; every bad bar is refused naming its row and field with nothing written; discovery
//! runs and its suggestions carry each picker's reasons; a second run while one is running is
//! refused with 409; the watchlist keeps manual entries and evicts the lowest discovered one;
//! a trade is stored with its 384-dimension embedding and then adjusts the FuzzyPicker; the
//! cron jobs (snapshot, discovery, forward returns) run through the component's internal
//! routes with chosen tick times; the scorecard reports the filled forward returns.
//!
//! The cron trigger itself is left out of the test manifest (its ticks would race the
//! checks); the test adds a route to `/internal/...`, which in spin.toml only the component's
//! own cron export reaches, to invoke the scheduled jobs deterministically.

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, Response, TempDir, TestDb, TestHost};
use tessera_picking::synth::SyntheticUniverse;

const TENANT: &str = "pick-e2e";

fn manifest() -> String {
    tessera_e2e::market::picker_manifest()
}

fn host(db: &TestDb, dir: &TempDir) -> TestHost {
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest()).unwrap();
    HostCommand::with_manifest_file(db, path)
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("SPIN_VARIABLE_AUTH_MODE", "trusted-headers")
        .start()
}

fn send(host: &TestHost, method: &str, path: &str, body: Option<&Value>) -> Response {
    let r = Request::new(method, path).header("x-tenant-id", TENANT);
    match body {
        Some(b) => r.json(b).send(host.addr()),
        None => r.send(host.addr()),
    }
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn ndjson(host: &TestHost, path: &str, lines: &[Value]) -> Response {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    Request::new("POST", path)
        .header("x-tenant-id", TENANT)
        .header("content-type", "application/x-ndjson")
        .body(body.as_bytes())
        .send(host.addr())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn ok(r: Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.describe());
    r.json()
}

fn assert_field(r: Response, status: u16, field: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.describe());
    let j = r.json();
    assert_eq!(j["error"]["field"], field, "{j}");
    assert!(j["error"]["message"].is_string(), "{j}");
    j
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).unwrap()[0].get::<_, i64>(0)
}

fn universe() -> SyntheticUniverse {
    tessera_e2e::market::universe(40, 300)
}

fn bar_json(b: &tessera_picking::market::Bar) -> Value {
    tessera_e2e::market::bar_json(b)
}

#[test]
fn picker_end_to_end() {
    let db = TestDb::new();
    let dir = TempDir::new("tessera-picker");
    let host = host(&db, &dir);
    let u = universe();
    let mut c = Checks::new("picker");

    c.check("symbols load as JSON, re-posting changes nothing", || {
        let mut symbols: Vec<Value> = u.symbols.iter().map(|s| json!(s)).collect();
        symbols.push(json!(u.index));
        let j = ok(
            send(&host, "POST", "/v1/market/symbols", Some(&json!(symbols))),
            200,
        );
        assert_eq!(
            (j["inserted"].as_i64(), j["rejected"].as_i64()),
            (Some(41), Some(0)),
            "{j}"
        );
        let j = ok(
            send(&host, "POST", "/v1/market/symbols", Some(&json!(symbols))),
            200,
        );
        assert_eq!(
            (j["inserted"].as_i64(), j["unchanged"].as_i64()),
            (Some(0), Some(41)),
            "{j}"
        );
        assert_field(
            send(
                &host,
                "POST",
                "/v1/market/symbols",
                Some(&json!([{"ticker": "OK1"}, {"ticker": "X", "avg_spread": 2}])),
            ),
            400,
            "rows[1].avg_spread",
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM market_symbols WHERE ticker = 'OK1'"
            ),
            0
        );
    });

    c.check(
        "bars load as NDJSON; an identical reload is unchanged, an edit updates",
        || {
            let mut lines: Vec<Value> = u.bars.iter().flatten().map(bar_json).collect();
            lines.extend(u.index_bars.iter().map(bar_json));
            let total = lines.len() as i64;
            let j = ok(ndjson(&host, "/v1/market/bars", &lines), 200);
            assert_eq!(j["inserted"].as_i64(), Some(total), "{j}");
            assert_eq!(count(&db, "SELECT count(*) FROM market_bars"), total);
            let mut again = lines[..50].to_vec();
            again[0]["volume"] = json!(123.0);
            let j = ok(
                send(&host, "POST", "/v1/market/bars", Some(&json!(again))),
                200,
            );
            assert_eq!(
                (
                    j["inserted"].as_i64(),
                    j["updated"].as_i64(),
                    j["unchanged"].as_i64()
                ),
                (Some(0), Some(1), Some(49)),
                "{j}"
            );
        },
    );

    c.check(
        "every bad bar is refused naming its row and field; nothing is written",
        || {
            let good = bar_json(&u.bars[0][10]);
            let with = |field: &str, v: Value| {
                let mut b = good.clone();
                b[field] = v;
                b
            };
            let low = good["low"].as_f64().unwrap();
            let cases = [
                (with("close", json!("NaN")), "close"),
                (with("open", json!("Infinity")), "open"),
                (with("low", json!(-1.0)), "low"),
                (with("high", json!(low / 2.0)), "high"),
                (with("interval", json!("5m")), "interval"),
                (
                    with("time", json!(good["time"].as_i64().unwrap() + 3600)),
                    "time",
                ),
                (with("symbol", json!("NOPE")), "symbol"),
            ];
            let before = count(&db, "SELECT count(*) FROM market_bars");
            for (bad, field) in &cases {
                let mut fresh = good.clone();
                fresh["time"] = json!(good["time"].as_i64().unwrap() + 10 * 86_400 * 365);
                let body = json!([fresh, bad]);
                let j = assert_field(
                    send(&host, "POST", "/v1/market/bars", Some(&body)),
                    400,
                    &format!("rows[1].{field}"),
                );
                assert!(
                    j["error"]["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("row 1:"),
                    "{j}"
                );
            }
            assert_eq!(
                count(&db, "SELECT count(*) FROM market_bars"),
                before,
                "nothing written"
            );
            // Skipping bad rows writes the good one and counts the rest.
            let mut fresh = good.clone();
            fresh["time"] = json!(good["time"].as_i64().unwrap() + 10 * 86_400 * 365);
            let mut body = vec![fresh];
            body.extend(cases.iter().map(|(b, _)| b.clone()));
            let j = ok(
                send(
                    &host,
                    "POST",
                    "/v1/market/bars?on_error=skip",
                    Some(&json!(body)),
                ),
                200,
            );
            assert_eq!(
                (j["inserted"].as_i64(), j["rejected"].as_i64()),
                (Some(1), Some(7)),
                "{j}"
            );
            let fields: Vec<&str> = j["rejections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["field"].as_str().unwrap())
                .collect();
            assert_eq!(
                fields,
                ["close", "open", "low", "high", "interval", "time", "symbol"]
            );
            db.execute(&format!(
                "DELETE FROM market_bars WHERE time = to_timestamp({})",
                good["time"].as_i64().unwrap() + 10 * 86_400 * 365
            ));
            assert_field(
                send(&host, "POST", "/v1/market/bars", Some(&json!({"a": 1}))),
                400,
                "rows",
            );
            assert_field(
                send(
                    &host,
                    "POST",
                    "/v1/market/bars?on_error=maybe",
                    Some(&json!([])),
                ),
                400,
                "on_error",
            );
        },
    );

    c.check("bars read back by symbol and range", || {
        let t = &u.bars[3];
        let path = format!(
            "/v1/market/bars?symbol={}&interval=1d&from={}&to={}",
            t[0].symbol,
            t[5].date(),
            t[9].date()
        );
        let j = ok(send(&host, "GET", &path, None), 200);
        let bars = j["bars"].as_array().unwrap();
        assert_eq!(bars.len(), 5, "{j}");
        assert_eq!(bars[0]["close"].as_f64(), Some(t[5].close));
        assert_field(
            send(&host, "GET", "/v1/market/bars?symbol=X&interval=1h", None),
            400,
            "interval",
        );
        assert_field(send(&host, "GET", "/v1/market/bars", None), 400, "symbol");
        // A multi-byte character across the date's tenth byte (found by the fuzzer, which
        // made the picker panic on it): a 400 naming the parameter.
        assert_field(
            send(
                &host,
                "GET",
                "/v1/market/bars?symbol=X&interval=1d&to=2024-01-0%C3%81T00:00:00Z",
                None,
            ),
            400,
            "to",
        );
    });

    c.check(
        "a run while another is running is refused with 409; a stale one is expired",
        || {
            db.execute(&format!(
                "INSERT INTO discovery_runs (tenant_id, trigger) VALUES ('{TENANT}', 'api')"
            ));
            let j = ok(send(&host, "POST", "/v1/discovery/run", None), 409);
            assert_eq!(j["error"]["code"], "run_in_progress", "{j}");
            let s = ok(send(&host, "GET", "/v1/discovery/status", None), 200);
            assert_eq!(s["running"]["status"], "running", "{s}");
            // Cut off long ago (a crash): the next run expires it instead of being refused.
            db.execute(
                "UPDATE discovery_runs SET started_at = now() - interval '10 minutes' \
             WHERE status = 'running'",
            );
        },
    );

    c.check(
        "settings: a watchlist of three; bad settings name the field",
        || {
            ok(
                send(
                    &host,
                    "PUT",
                    "/v1/discovery/settings",
                    Some(&json!({"watchlist_max_size": 3, "suggestions": 10, "index": "SYNIDX"})),
                ),
                200,
            );
            assert_field(
                send(
                    &host,
                    "PUT",
                    "/v1/discovery/settings",
                    Some(&json!({"weights": {"metric": -1}})),
                ),
                400,
                "weights.metric",
            );
            assert_field(
                send(
                    &host,
                    "PUT",
                    "/v1/discovery/settings",
                    Some(&json!({"suggestions": 0})),
                ),
                400,
                "suggestions",
            );
        },
    );

    let as_of = u.days[260].to_string();
    c.check(
        "discovery runs and suggestions carry each picker's reasons",
        || {
            let j = ok(
                send(
                    &host,
                    "POST",
                    "/v1/discovery/run",
                    Some(&json!({"as_of": as_of})),
                ),
                202,
            );
            assert_eq!(j["status"], "succeeded", "{j}");
            let id = j["run_id"].as_str().unwrap().to_string();
            let run = ok(
                send(&host, "GET", &format!("/v1/discovery/runs/{id}"), None),
                200,
            );
            assert_eq!(run["as_of"], as_of.as_str(), "{run}");
            assert_eq!(run["symbols"], 40, "{run}");
            let stale = db
                .query("SELECT status, error FROM discovery_runs WHERE started_at < now() - interval '5 minutes'")
                .unwrap();
            assert_eq!(stale.len(), 1);
            assert_eq!(stale[0].get::<_, String>(0), "failed");
            assert!(stale[0].get::<_, String>(1).contains("did not finish"));
            assert_eq!(run["pickers"]["llm"]["status"], "skipped", "{run}");
            assert_eq!(run["pickers"]["metric"]["status"], "ran", "{run}");
            assert!(
                run["pickers"]["metric"]["unavailable"].as_i64().unwrap() > 0,
                "unknown fundamentals reported: {run}"
            );
            let s = ok(send(&host, "GET", "/v1/discovery/suggestions", None), 200);
            assert_eq!(s["run_id"], id.as_str());
            let list = s["suggestions"].as_array().unwrap();
            assert_eq!(list.len(), 10, "{s}");
            let ranks: Vec<i64> = list.iter().map(|x| x["rank"].as_i64().unwrap()).collect();
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
            for x in list {
                assert!(x["rejected_by"].as_array().unwrap().is_empty(), "{x}");
                let pickers: Vec<&str> = x["pickers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["picker"].as_str().unwrap())
                    .collect();
                assert_eq!(pickers, ["metric", "fuzzy"], "{x}");
                for p in x["pickers"].as_array().unwrap() {
                    assert!(!p["reasons"].as_array().unwrap().is_empty(), "{p}");
                }
            }
            let fuzzy = ok(
                send(
                    &host,
                    "GET",
                    "/v1/discovery/suggestions?source=fuzzy&limit=5",
                    None,
                ),
                200,
            );
            assert!(
                fuzzy["suggestions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|x| x["sources"].as_array().unwrap().contains(&json!("fuzzy")))
            );
            assert_field(
                send(&host, "GET", "/v1/discovery/suggestions?source=magic", None),
                400,
                "source",
            );
            assert_field(
                send(
                    &host,
                    "POST",
                    "/v1/discovery/run",
                    Some(&json!({"as_of": "someday"})),
                ),
                400,
                "as_of",
            );
            assert_eq!(
                send(&host, "GET", "/v1/discovery/runs/not-a-uuid", None).status,
                400
            );
        },
    );

    c.check(
        "watchlist: discovered entries capped, manual kept, eviction and removal recorded",
        || {
            let w = ok(send(&host, "GET", "/v1/discovery/watchlist", None), 200);
            let entries = w["entries"].as_array().unwrap();
            assert_eq!(entries.len(), 3, "{w}");
            assert!(entries.iter().all(|e| e["origin"] == "discovered"), "{w}");
            let lowest = entries
                .iter()
                .min_by(|a, b| {
                    a["score"]
                        .as_f64()
                        .unwrap()
                        .total_cmp(&b["score"].as_f64().unwrap())
                })
                .unwrap()["ticker"]
                .clone();
            let manual = u
                .symbols
                .iter()
                .map(|s| s.ticker.clone())
                .find(|t| entries.iter().all(|e| e["ticker"] != t.as_str()))
                .unwrap();
            let j = ok(
                send(
                    &host,
                    "POST",
                    "/v1/discovery/watchlist/add",
                    Some(&json!({"ticker": manual})),
                ),
                200,
            );
            let kinds: Vec<(&str, &str)> = j["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["ticker"].as_str().unwrap(), c["kind"].as_str().unwrap()))
                .collect();
            assert!(kinds.contains(&(manual.as_str(), "added")), "{j}");
            assert!(
                kinds.contains(&(lowest.as_str().unwrap(), "evicted")),
                "{j}"
            );
            let w = ok(send(&host, "GET", "/v1/discovery/watchlist", None), 200);
            assert_eq!(w["entries"].as_array().unwrap().len(), 3, "{w}");
            ok(
                send(
                    &host,
                    "POST",
                    "/v1/discovery/watchlist/remove",
                    Some(&json!({"ticker": manual})),
                ),
                200,
            );
            let j = ok(
                send(
                    &host,
                    "POST",
                    "/v1/discovery/watchlist/remove",
                    Some(&json!({"ticker": manual})),
                ),
                404,
            );
            assert_eq!(j["error"]["code"], "not_on_watchlist");
            assert_field(
                send(
                    &host,
                    "POST",
                    "/v1/discovery/watchlist/add",
                    Some(&json!({"ticker": "NOPE"})),
                ),
                400,
                "ticker",
            );
            let kinds = db
                .query("SELECT kind FROM watchlist_changes ORDER BY id")
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>();
            assert_eq!(
                kinds,
                ["added", "added", "added", "added", "evicted", "removed"],
                "{kinds:?}"
            );
            // Each change queued a `watchlist.changed` alert in its own transaction.
            let alerted = db
                .query(
                    "SELECT labels->>'change' FROM alert_inbox \
                     WHERE type = 'watchlist.changed' ORDER BY id",
                )
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>();
            assert_eq!(alerted, kinds, "one alert per watchlist change");
        },
    );

    c.check(
        "a trade is stored with its embedding, and its outcome adjusts the FuzzyPicker",
        || {
            let top = u.symbols[0].ticker.clone();
            let j = ok(
                send(
                    &host,
                    "POST",
                    "/v1/trades",
                    Some(&json!({
                        "symbol": top, "side": "buy", "quantity": 100, "price": 40.5,
                        "reasoning": "momentum breakout", "executed_at": u.days[200].to_string()
                    })),
                ),
                201,
            );
            assert_eq!(j["embedding_dimensions"], 384, "{j}");
            assert!(
                j["description"]
                    .as_str()
                    .unwrap()
                    .contains("momentum breakout"),
                "{j}"
            );
            let id = j["id"].as_str().unwrap().to_string();
            assert_eq!(
                count(
                    &db,
                    "SELECT vector_dims(embedding)::int8 FROM picker_trades"
                ),
                384
            );
            let e = ok(
                send(
                    &host,
                    "POST",
                    &format!("/v1/trades/{id}/exit"),
                    Some(&json!({"exit_price": 44.55, "outcome": "target hit"})),
                ),
                200,
            );
            assert!(
                (e["return_pct"].as_f64().unwrap() - 0.1).abs() < 1e-9,
                "{e}"
            );
            assert_field(
                send(
                    &host,
                    "POST",
                    "/v1/trades",
                    Some(&json!({"symbol": "A", "side": "hold", "quantity": 1, "price": 1})),
                ),
                400,
                "side",
            );
            assert_field(
                send(
                    &host,
                    "POST",
                    "/v1/trades",
                    Some(&json!({"symbol": "A", "side": "buy", "quantity": -1, "price": 1})),
                ),
                400,
                "quantity",
            );
            let j = ok(
                send(
                    &host,
                    "POST",
                    "/v1/discovery/run",
                    Some(&json!({"as_of": u.days[265].to_string()})),
                ),
                202,
            );
            let run = ok(
                send(
                    &host,
                    "GET",
                    &format!("/v1/discovery/runs/{}", j["run_id"].as_str().unwrap()),
                    None,
                ),
                200,
            );
            assert!(
                run["pickers"]["fuzzy"]["adjusted_by_similar_trades"]
                    .as_i64()
                    .unwrap()
                    > 0,
                "{run}"
            );
            let s = ok(
                send(
                    &host,
                    "GET",
                    "/v1/discovery/suggestions?source=all&limit=200",
                    None,
                ),
                200,
            );
            let adjusted = s["suggestions"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|x| x["pickers"].as_array().unwrap().clone())
                .filter(|p| p["picker"] == "fuzzy")
                .any(|p| {
                    p["reasons"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["code"].as_str().unwrap_or("").contains("similar"))
                });
            assert!(adjusted, "a fuzzy reason shows the adjustment: {s}");
        },
    );

    c.check(
        "setup embeddings are stored once: a new host reads them, and the adjustment is \
         identical to a run that embeds them again; pruning keeps what a run uses",
        || {
            // Runs as of the day the previous check ran: its setups were embedded then.
            let as_of = json!({"as_of": u.days[265].to_string()});
            let run_on = |h: &TestHost| {
                let j = ok(send(h, "POST", "/v1/discovery/run", Some(&as_of)), 202);
                assert_eq!(j["status"], "succeeded", "{j}");
                let run = ok(
                    send(
                        h,
                        "GET",
                        &format!("/v1/discovery/runs/{}", j["run_id"].as_str().unwrap()),
                        None,
                    ),
                    200,
                );
                let s = ok(
                    send(
                        h,
                        "GET",
                        "/v1/discovery/suggestions?source=all&limit=200",
                        None,
                    ),
                    200,
                );
                (run["pickers"]["fuzzy"].clone(), s["suggestions"].clone())
            };
            let stored = count(
                &db,
                &format!(
                    "SELECT count(*) FROM setup_embeddings \
                     WHERE tenant_id = '{TENANT}' AND vector_dims(embedding) = 384"
                ),
            );
            assert!(stored > 0, "the earlier run stored its setups' embeddings");
            let (fuzzy, suggestions) = run_on(&host);
            assert_eq!(fuzzy["setup_embeddings"]["embedded"], 0, "{fuzzy}");
            let setups = fuzzy["setup_embeddings"]["stored"].as_i64().unwrap();
            assert!(setups > 0 && setups <= stored, "{fuzzy}");

            // Another host: new instances, nothing in memory; the vectors come from Postgres.
            let other_dir = TempDir::new("tessera-picker-other");
            let other = self::host(&db, &other_dir);
            let (fuzzy_other, suggestions_other) = run_on(&other);
            assert_eq!(
                fuzzy_other["setup_embeddings"]["embedded"], 0,
                "{fuzzy_other}"
            );
            assert_eq!(
                suggestions_other, suggestions,
                "same suggestions and reasons"
            );
            assert_eq!(
                fuzzy_other["adjusted_by_similar_trades"],
                fuzzy["adjusted_by_similar_trades"]
            );

            // Nothing stored: the run embeds every setup again, and ranks exactly the same.
            db.execute("DELETE FROM setup_embeddings");
            let (fuzzy_fresh, suggestions_fresh) = run_on(&other);
            assert_eq!(
                fuzzy_fresh["setup_embeddings"]["embedded"].as_i64(),
                Some(setups),
                "{fuzzy_fresh}"
            );
            assert_eq!(
                fuzzy_fresh["setup_embeddings"]["stored"], 0,
                "{fuzzy_fresh}"
            );
            assert_eq!(
                fuzzy_fresh["setup_embeddings"]["source"], "host",
                "spin.toml grants the picker the host's model: {fuzzy_fresh}"
            );
            assert_eq!(
                suggestions_fresh, suggestions,
                "same suggestions and reasons"
            );
            assert_eq!(count(&db, "SELECT count(*) FROM setup_embeddings"), setups);

            // Rows older than a week go when a run writes new ones, except those it uses: all
            // aged, an unrelated old one added, 5 of the run's own removed (so it embeds).
            assert!(setups > 5, "{fuzzy}");
            db.execute("UPDATE setup_embeddings SET created_at = now() - interval '8 days'");
            db.execute(
                "INSERT INTO setup_embeddings (tenant_id, text_hash, embedding, created_at) \
                 SELECT tenant_id, sha256('not a setup'::bytea), embedding, \
                   now() - interval '30 days' FROM setup_embeddings LIMIT 1",
            );
            db.execute(
                "DELETE FROM setup_embeddings WHERE text_hash IN (SELECT text_hash \
                 FROM setup_embeddings WHERE text_hash <> sha256('not a setup'::bytea) \
                 ORDER BY text_hash LIMIT 5)",
            );
            let (fuzzy_mixed, suggestions_mixed) = run_on(&other);
            assert_eq!(
                fuzzy_mixed["setup_embeddings"]["embedded"], 5,
                "{fuzzy_mixed}"
            );
            assert_eq!(
                fuzzy_mixed["setup_embeddings"]["stored"].as_i64(),
                Some(setups - 5),
                "{fuzzy_mixed}"
            );
            assert_eq!(
                suggestions_mixed, suggestions,
                "same suggestions and reasons"
            );
            assert_eq!(count(&db, "SELECT count(*) FROM setup_embeddings"), setups);
            assert_eq!(
                count(
                    &db,
                    "SELECT count(*) FROM setup_embeddings \
                     WHERE text_hash = sha256('not a setup'::bytea)"
                ),
                0,
                "the unrelated old row is pruned"
            );

            // A host that runs no model, nothing stored: the component embeds the setups
            // itself and keys them apart from the host's vectors (the two differ in their
            // last bits).
            db.execute("DELETE FROM setup_embeddings");
            let bare_dir = TempDir::new("tessera-picker-bare");
            let path = bare_dir.path().join("spin.toml");
            std::fs::write(&path, manifest()).unwrap();
            let bare = HostCommand::with_manifest_file(&db, path)
                .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
                .env("SPIN_VARIABLE_AUTH_MODE", "trusted-headers")
                .arg("--no-local-models")
                .start();
            let (fuzzy_bare, _) = run_on(&bare);
            assert_eq!(
                (
                    &fuzzy_bare["setup_embeddings"]["source"],
                    fuzzy_bare["setup_embeddings"]["embedded"].as_i64()
                ),
                (&json!("component"), Some(setups)),
                "{fuzzy_bare}"
            );
            // The host's runs never take the component's vectors: the same ranking as before.
            let (fuzzy_after, suggestions_after) = run_on(&other);
            assert_eq!(
                fuzzy_after["setup_embeddings"]["source"], "host",
                "{fuzzy_after}"
            );
            assert_eq!(
                suggestions_after, suggestions,
                "same suggestions and reasons"
            );
        },
    );

    c.check(
        "cron: a Saturday tick takes only the snapshot, with its embedding",
        || {
            // 2022-03-12 12:00 UTC, a Saturday.
            let j = ok(
                send(&host, "POST", "/internal/cron?ts=1647086400", None),
                200,
            );
            assert_eq!(
                j["due"],
                json!({"snapshot": true, "discovery": false, "forward_returns": false}),
                "{j}"
            );
            assert!(j["tenants"][TENANT]["snapshot"]["id"].is_string(), "{j}");
            assert_eq!(
                count(
                    &db,
                    "SELECT count(*) FROM market_snapshots WHERE vector_dims(embedding) = 384"
                ),
                1
            );
        },
    );

    c.check(
        "cron: a tick in a session's first hour runs discovery",
        || {
            // Wednesday 2022-03-16 14:05 UTC = 10:05 New York (daylight time): 35 min after the open.
            let j = ok(
                send(&host, "POST", "/internal/cron?ts=1647439500", None),
                200,
            );
            assert_eq!(j["due"]["discovery"], true, "{j}");
            assert_eq!(
                j["tenants"][TENANT]["discovery"]["status"], "succeeded",
                "{j}"
            );
            let id = j["tenants"][TENANT]["discovery"]["run_id"]
                .as_str()
                .unwrap();
            let run = ok(
                send(&host, "GET", &format!("/v1/discovery/runs/{id}"), None),
                200,
            );
            assert_eq!(run["trigger"], "cron", "{run}");
        },
    );

    c.check(
        "forward returns fill, and the scorecard reports them per source",
        || {
            let j = ok(
                send(&host, "POST", "/internal/jobs/forward-returns", None),
                200,
            );
            let filled = j["tenants"][TENANT]["forward-returns"]["filled"]
                .as_i64()
                .unwrap();
            assert!(filled > 0, "{j}");
            // No look-ahead: a return of the first run (as of day 260) is entered at the close
            // of day 261 and exits h trading days later, from the generated closes.
            let rows = db
                .query(&format!(
                    "SELECT s.ticker, r.horizon, r.forward_return FROM suggestion_returns r \
                     JOIN discovery_suggestions s ON s.id = r.suggestion_id \
                     WHERE s.suggested_on = '{}' ORDER BY s.ticker, r.horizon",
                    u.days[260]
                ))
                .unwrap();
            assert!(!rows.is_empty());
            for row in &rows {
                let ticker: String = row.get(0);
                let h: i32 = row.get(1);
                let got: f64 = row.get(2);
                let k = u.symbols.iter().position(|s| s.ticker == ticker).unwrap();
                let closes = &u.bars[k];
                let want = closes[261 + h as usize].close / closes[261].close - 1.0;
                assert!((got - want).abs() < 1e-9, "{ticker} h={h}: {got} vs {want}");
            }
            let p = ok(
                send(&host, "GET", "/v1/discovery/performance?horizon=5", None),
                200,
            );
            let sources: Vec<&str> = p["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["source"].as_str().unwrap())
                .collect();
            assert!(
                sources.contains(&"ensemble")
                    && sources.contains(&"metric")
                    && sources.contains(&"fuzzy"),
                "{p}"
            );
            let ensemble = p["sources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["source"] == "ensemble")
                .unwrap();
            assert!(ensemble["count"].as_i64().unwrap() >= 10, "{p}");
            assert!(
                p["pending"].as_i64().unwrap() > 0,
                "the latest runs have no later bars yet: {p}"
            );
            assert_eq!(p["paper_vs_actual"]["trades"][0]["count"], 1, "{p}");
            assert_field(
                send(&host, "GET", "/v1/discovery/performance?horizon=3", None),
                400,
                "horizon",
            );
            let again = ok(
                send(&host, "POST", "/internal/jobs/forward-returns", None),
                200,
            );
            assert_eq!(
                again["tenants"][TENANT]["forward-returns"]["filled"], 0,
                "{again}"
            );
        },
    );

    c.finish(Some(&host));
}
