//! The LLMPicker end to end: the picker block of the repository's spin.toml on the real host,
//! real Postgres with pgvector, MiniLM in the component, and the model providers replaced by
//! `ProviderDouble` (a local test double speaking the providers' streaming wire formats).
//!
//! A generated universe is loaded and a market snapshot is taken (moved 40 days back so the
//! index's next 5 and 20 days are known). First without a provider: the LLMPicker is skipped
//! and says so. Then, on the same database, with the double configured through the same
//! variables as chat: a valid answer is used; an invalid answer is repaired once with the
//! validation error sent back; two invalid answers, or a provider that answers 500, leave
//! the LLMPicker in error while the run still succeeds with the metric and fuzzy pickers.

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::market::{load_universe, picker_manifest, universe};
use tessera_e2e::{
    Checks, HostCommand, ProviderDouble, Recorded, Reply, Response, TempDir, TestDb, TestHost,
};

const TENANT: &str = "pick-llm";
const KEY: &str = "sk-test-picker";

fn host(db: &TestDb, dir: &TempDir, env: &[(&str, String)]) -> TestHost {
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, picker_manifest()).unwrap();
    let mut cmd = HostCommand::with_manifest_file(db, path)
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("SPIN_VARIABLE_AUTH_MODE", "trusted-headers");
    for (k, v) in env {
        cmd = cmd.env(k, v.clone());
    }
    cmd.start()
}

fn send(host: &TestHost, method: &str, path: &str, body: Option<&Value>) -> Response {
    let r = Request::new(method, path).header("x-tenant-id", TENANT);
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

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).unwrap()[0].get::<_, i64>(0)
}

/// The portfolio every run is given (its position must reach the prompt).
fn portfolio() -> Value {
    json!({"positions": [{"ticker": "HELD1", "sector": "Energy", "weight": 0.4}]})
}

/// Runs discovery; the finished run.
fn run(host: &TestHost) -> Value {
    let j = ok(
        send(
            host,
            "POST",
            "/v1/discovery/run",
            Some(&json!({"portfolio": portfolio()})),
        ),
        202,
    );
    assert_eq!(j["status"], "succeeded", "{j}");
    let id = j["run_id"].as_str().unwrap();
    ok(
        send(host, "GET", &format!("/v1/discovery/runs/{id}"), None),
        200,
    )
}

/// Every suggestion of the latest run.
fn suggestions(host: &TestHost) -> Vec<Value> {
    let s = ok(
        send(
            host,
            "GET",
            "/v1/discovery/suggestions?source=all&limit=200",
            None,
        ),
        200,
    );
    s["suggestions"].as_array().unwrap().clone()
}

/// The picker names among a suggestion's contributions.
fn pickers_of(s: &Value) -> Vec<String> {
    s["pickers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["picker"].as_str().unwrap().to_string())
        .collect()
}

/// A schema-valid answer scoring `tickers`.
fn answer(tickers: &[String], score: f64) -> String {
    let picks: Vec<Value> = tickers
        .iter()
        .map(|t| json!({"symbol": t, "score": score, "reasons": [format!("model view on {t}")]}))
        .collect();
    json!({ "picks": picks }).to_string()
}

/// The text of every message of a recorded Chat Completions request, in order.
fn messages(r: &Recorded) -> Vec<(String, String)> {
    r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The double's catalog with only its OpenAI Chat Completions provider (its Responses
/// provider shares the key variable and would otherwise be routed to as well).
fn openai_only(double: &ProviderDouble) -> String {
    let mut catalog: Value = serde_json::from_str(&double.catalog_json()).unwrap();
    catalog["providers"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["id"] == "openai");
    catalog.to_string()
}

fn picker_calls(db: &TestDb, status: &str) -> i64 {
    count(
        db,
        &format!(
            "SELECT count(*) FROM llm_calls WHERE tenant_id = '{TENANT}' AND step_kind = 'picker' \
             AND user_id = 'picker' AND status = '{status}'"
        ),
    )
}

#[test]
fn llm_picker_against_the_provider_double() {
    let db = TestDb::new();
    let dir = TempDir::new("tessera-picker-llm");
    let u = universe(40, 300);
    let mut top_fuzzy: Vec<String> = Vec::new();
    let mut snapshot_day = String::new();

    // Without a provider.
    let mut plain = host(&db, &dir, &[]);
    let mut c = Checks::new("picker-llm (no provider)");
    c.check("data loads and a snapshot is stored 40 days back", || {
        load_universe(&plain, TENANT, &u);
        let j = ok(
            send(
                &plain,
                "POST",
                &format!("/internal/jobs/snapshot?tenant={TENANT}"),
                None,
            ),
            200,
        );
        assert!(j.to_string().contains("description"), "{j}");
        db.execute(
            "UPDATE market_snapshots SET as_of = as_of - 40, \
                 conditions = jsonb_set(conditions, '{as_of}', to_jsonb((as_of - 40)::text))",
        );
        let rows = db
            .query("SELECT as_of::text, conditions->>'as_of' FROM market_snapshots")
            .unwrap();
        assert_eq!(rows.len(), 1);
        let day: String = rows[0].get(0);
        assert_eq!(rows[0].get::<_, String>(1), day);
        snapshot_day = day;
    });
    c.check("no provider: the LLMPicker is skipped and says so", || {
        let run = run(&plain);
        assert_eq!(run["pickers"]["llm"]["status"], "skipped", "{run}");
        assert_eq!(
            run["pickers"]["llm"]["reason"], "no provider configured",
            "{run}"
        );
        assert_eq!(run["pickers"]["fuzzy"]["status"], "ran", "{run}");
        assert_eq!(picker_calls(&db, "ok"), 0);
        let fuzzy = ok(
            send(
                &plain,
                "GET",
                "/v1/discovery/suggestions?source=fuzzy&limit=3",
                None,
            ),
            200,
        );
        top_fuzzy = fuzzy["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ticker"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(top_fuzzy.len(), 3, "{fuzzy}");
    });
    plain.stop();
    c.finish(Some(&plain));

    // With the provider double, through chat's variables.
    let double = ProviderDouble::start();
    let with = host(
        &db,
        &dir,
        &[
            ("SPIN_VARIABLE_LLM_CATALOG", openai_only(&double)),
            ("SPIN_VARIABLE_LLM_LOCAL_HOST", "127.0.0.1:*".into()),
            ("SPIN_VARIABLE_OPENAI_API_KEY", KEY.into()),
            ("SPIN_VARIABLE_LLM_RETRY_BASE_MS", "5".into()),
            ("SPIN_VARIABLE_LLM_MAX_ATTEMPTS", "2".into()),
        ],
    );
    let mut c = Checks::new("picker-llm (provider double)");

    c.check(
        "a valid answer: ran, its scores and reasons in the suggestions, an llm_calls row",
        || {
            double.clear_scripts();
            double.script("openai", [Reply::Text(answer(&top_fuzzy, 0.93))]);
            let before = double.hits("openai");
            let run = run(&with);
            let llm = &run["pickers"]["llm"];
            assert_eq!(llm["status"], "ran", "{run}");
            assert_eq!(llm["scored"], 3, "{run}");
            assert_eq!(llm["calls"], 1, "{run}");
            assert_eq!(llm["repaired"], false, "{run}");
            assert_eq!(llm["provider"], "openai", "{run}");
            assert_eq!(llm["similar_conditions"], 1, "{run}");
            assert_eq!(double.hits("openai"), before + 1);

            let req = double.requests().pop().unwrap();
            assert_eq!(
                req.header("authorization"),
                Some(format!("Bearer {KEY}").as_str())
            );
            let msgs = messages(&req);
            let user = &msgs.iter().find(|(r, _)| r == "user").unwrap().1;
            assert!(
                user.contains("- HELD1 (Energy): 40.0% of portfolio"),
                "{user}"
            );
            assert!(user.contains("## Market on "), "{user}");
            assert!(
                user.contains(&format!("- {snapshot_day} (similarity ")),
                "{user}"
            );
            // 40 calendar days back, both horizons are inside the bars known on the day.
            let follow = user
                .lines()
                .find(|l| l.starts_with(&format!("- {snapshot_day}")))
                .unwrap();
            assert!(follow.contains("over 5 days"), "{follow}");
            assert!(!follow.contains("unknown over"), "{follow}");
            for t in &top_fuzzy {
                assert!(user.contains(&format!("- {t} (")), "{t} in {user}");
            }

            let list = suggestions(&with);
            for t in &top_fuzzy {
                let s = list
                    .iter()
                    .find(|s| s["ticker"] == t.as_str())
                    .unwrap_or_else(|| panic!("{t} suggested: {list:?}"));
                let p = s["pickers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["picker"] == "llm")
                    .unwrap_or_else(|| panic!("llm contribution for {t}: {s}"));
                assert_eq!(p["score"], 0.93, "{p}");
                assert_eq!(
                    p["reasons"][0]["message"],
                    format!("model view on {t}"),
                    "{p}"
                );
                assert!(p["weight"].as_f64().unwrap() > 0.0, "{p}");
                assert!(
                    s["sources"].as_array().unwrap().iter().any(|x| x == "llm"),
                    "{s}"
                );
            }
            assert_eq!(picker_calls(&db, "ok"), 1);
            let row = db
                .query(
                    "SELECT provider, model, input_tokens, cost_micros, finish_reason \
                     FROM llm_calls WHERE step_kind = 'picker'",
                )
                .unwrap();
            assert_eq!(row[0].get::<_, String>(0), "openai");
            assert!(row[0].get::<_, i64>(2) > 0, "input tokens billed");
            assert!(row[0].get::<_, i64>(3) > 0, "cost recorded");
            assert_eq!(
                row[0].get::<_, Option<String>>(4).as_deref(),
                Some("complete")
            );
        },
    );

    c.check(
        "an invalid answer is repaired once with the validation error sent back",
        || {
            let repaired: Vec<String> = top_fuzzy[..2].to_vec();
            double.clear_scripts();
            double.script(
                "openai",
                [
                    Reply::Text("Sure! I like these stocks a lot.".into()),
                    Reply::Text(answer(&repaired, 0.81)),
                ],
            );
            let before = double.hits("openai");
            let run = run(&with);
            let llm = &run["pickers"]["llm"];
            assert_eq!(llm["status"], "ran", "{run}");
            assert_eq!(llm["repaired"], true, "{run}");
            assert_eq!(llm["calls"], 2, "{run}");
            assert_eq!(llm["scored"], 2, "{run}");
            assert!(
                llm["first_answer_error"]
                    .as_str()
                    .unwrap()
                    .contains("$: not valid JSON"),
                "{run}"
            );
            assert_eq!(double.hits("openai"), before + 2);
            let second = double.requests().pop().unwrap();
            let msgs = messages(&second);
            let n = msgs.len();
            assert_eq!(msgs[n - 2].0, "assistant", "{msgs:?}");
            assert_eq!(msgs[n - 2].1, "Sure! I like these stocks a lot.");
            assert_eq!(msgs[n - 1].0, "user", "{msgs:?}");
            assert!(
                msgs[n - 1]
                    .1
                    .contains("did not match the required JSON schema"),
                "{msgs:?}"
            );
            assert!(msgs[n - 1].1.contains("- $: not valid JSON"), "{msgs:?}");
            let list = suggestions(&with);
            let llm_scored: Vec<&Value> = list
                .iter()
                .flat_map(|s| s["pickers"].as_array().unwrap())
                .filter(|p| p["picker"] == "llm")
                .collect();
            assert_eq!(llm_scored.len(), 2, "{list:?}");
            assert!(llm_scored.iter().all(|p| p["score"] == 0.81), "{list:?}");
            assert_eq!(picker_calls(&db, "ok"), 3);
        },
    );

    c.check(
        "invalid twice: the LLMPicker errors, the run succeeds on metric and fuzzy",
        || {
            let bad =
                json!({"picks": [{"symbol": "NOPE", "score": 0.5, "reasons": ["x"]}]}).to_string();
            double.clear_scripts();
            double.script("openai", [Reply::Text(bad.clone()), Reply::Text(bad)]);
            let before = double.hits("openai");
            let run = run(&with);
            let llm = &run["pickers"]["llm"];
            assert_eq!(llm["status"], "error", "{run}");
            assert_eq!(llm["calls"], 2, "{run}");
            let reason = llm["reason"].as_str().unwrap();
            assert!(reason.contains("after one repair"), "{reason}");
            assert!(
                reason.contains("`NOPE` is not one of the candidates"),
                "{reason}"
            );
            assert_eq!(double.hits("openai"), before + 2);
            assert_eq!(run["pickers"]["metric"]["status"], "ran", "{run}");
            assert_eq!(run["pickers"]["fuzzy"]["status"], "ran", "{run}");
            let list = suggestions(&with);
            assert!(!list.is_empty());
            for s in &list {
                assert!(!pickers_of(s).contains(&"llm".to_string()), "{s}");
                assert!(
                    !s["sources"].as_array().unwrap().iter().any(|x| x == "llm"),
                    "{s}"
                );
            }
        },
    );

    c.check(
        "a provider answering 500: the LLMPicker errors, the run succeeds without it",
        || {
            double.clear_scripts();
            double.script("openai", (0..8).map(|_| Reply::status(500)));
            let before = double.hits("openai");
            let failed_before = picker_calls(&db, "provider_error");
            let run = run(&with);
            let llm = &run["pickers"]["llm"];
            assert_eq!(llm["status"], "error", "{run}");
            let reason = llm["reason"].as_str().unwrap();
            assert!(reason.contains("HTTP 500"), "{reason}");
            let calls = llm["calls"].as_i64().unwrap();
            // Two attempts per model (llm_max_attempts = 2), each a row.
            assert!(calls >= 2, "{run}");
            assert_eq!((double.hits("openai") - before) as i64, calls);
            assert_eq!(picker_calls(&db, "provider_error") - failed_before, calls);
            assert_eq!(run["pickers"]["metric"]["status"], "ran", "{run}");
            assert!(!suggestions(&with).is_empty());
            double.clear_scripts();
        },
    );

    c.finish(Some(&with));
}
