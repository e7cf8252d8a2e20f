//! The knowledge base end to end: the repository's spin.toml on the real host, the kb
//! component running MiniLM in wasm, real Postgres with pgvector.

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, TestDb, TestHost};

fn start(db: &TestDb) -> TestHost {
    HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start()
}

fn post(host: &TestHost, path: &str, body: &Value, tenant: &str) -> tessera_e2e::Response {
    Request::new("POST", path)
        .header("x-tenant-id", tenant)
        .json(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn ingest(host: &TestHost, body: Value) -> Value {
    let r = post(host, "/v1/kb/documents", &body, "acme");
    assert!(r.status == 201 || r.status == 200, "{}", r.describe());
    r.json()
}

fn search(host: &TestHost, body: Value) -> Value {
    let r = post(host, "/v1/kb/search", &body, "acme");
    assert_eq!(r.status, 200, "{body} -> {}", r.describe());
    r.json()
}

fn titles(result: &Value) -> Vec<String> {
    result["results"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| r["title"].as_str().unwrap_or("").to_string())
        .collect()
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
    if let Some(field) = field {
        assert_eq!(j["error"]["field"], field, "{j}");
    }
}

const SORTINO: &str = "# Sortino ratio\n\nThe Sortino ratio divides excess return by downside \
deviation, so only harmful volatility is penalised.\n\n## Formula\n\n(R - T) / DD where DD is the \
downside deviation below the target return T.";
const WACC: &str = "# Weighted average cost of capital\n\nWACC blends the cost of equity and the \
after-tax cost of debt by their market-value weights. It is the discount rate of a DCF.";
const SPREAD: &str = "# Bid-ask spread\n\nThe spread is the gap between the best bid and the best \
offer. Wide spreads signal poor liquidity and raise trading costs.";

#[test]
fn knowledge_base() {
    let db = TestDb::new();
    let host = start(&db);
    let mut c = Checks::new("kb");

    let sortino = ingest(
        &host,
        json!({"title": "Sortino ratio", "content": SORTINO, "metadata": {"topic": "risk"}}),
    );
    let wacc = ingest(
        &host,
        json!({"title": "WACC", "content": WACC, "metadata": {"topic": "valuation"}}),
    );
    let spread = ingest(
        &host,
        json!({"title": "Bid-ask spread", "content": SPREAD, "scope": "page:/trading", "metadata": {"topic": "trading"}}),
    );

    c.check(
        "ingest answers id, status and chunks; small documents are embedded inline",
        || {
            assert_eq!(sortino["status"], "ready", "{sortino}");
            assert_eq!(sortino["embedded"], "inline", "{sortino}");
            assert!(sortino["chunks"].as_u64().unwrap() >= 1, "{sortino}");
            let id = sortino["id"].as_str().unwrap();
            let r = Request::new("GET", &format!("/v1/kb/documents/{id}?chunks=true"))
                .header("x-tenant-id", "acme")
                .send(host.addr())
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.describe());
            let j = r.json();
            assert_eq!(j["title"], "Sortino ratio");
            assert_eq!(j["embedded_chunks"], j["chunks"], "{j}");
            let first = &j["chunk_list"][0];
            assert_eq!(first["embedded"], true, "{j}");
            assert!(
                first["heading"].as_str().unwrap().contains("Sortino"),
                "{j}"
            );
        },
    );

    c.check("hybrid, vector and text search find the right document", || {
        for mode in ["hybrid", "vector", "text"] {
            let r = search(&host, json!({"query": "downside deviation ratio", "mode": mode, "k": 3}));
            assert_eq!(titles(&r).first().map(String::as_str), Some("Sortino ratio"), "{mode}: {r}");
            assert_eq!(r["mode"], mode);
        }
        // A paraphrase with no shared keyword: only the vector side can find it.
        let r = search(&host, json!({"query": "which rate should discount a company's future cash flows?", "mode": "vector", "k": 1}));
        assert_eq!(titles(&r), vec!["WACC"], "{r}");
        let hit = &r["results"][0];
        assert!(hit["matched"]["vector"]["rank"] == 1, "{r}");
        assert!(hit["document_id"] == wacc["id"], "{r}");
    });

    c.check(
        "text ranks by BM25: rare terms outweigh repeated common ones, short passages long ones",
        || {
            let t = "bm25-co";
            for (title, content) in [
                (
                    "Market diary",
                    "The market rose. The market fell. The market rose again as the market closed.",
                ),
                ("Quokka note", "A quokka was seen near the office."),
                ("Market one", "Market breadth narrowed."),
                ("Market two", "The market priced a cut."),
                (
                    "Long zeta",
                    &format!(
                        "Zeta appears once here. {}",
                        "Filler words pad this passage about unrelated ledgers and audits. "
                            .repeat(12)
                    ),
                ),
                ("Short zeta", "Zeta appears once."),
            ] {
                let r = post(
                    &host,
                    "/v1/kb/documents",
                    &json!({"title": title, "content": content}),
                    t,
                );
                assert_eq!(r.status, 201, "{}", r.describe());
            }
            let r = post(
                &host,
                "/v1/kb/search",
                &json!({"query": "quokka market", "mode": "text", "k": 5}),
                t,
            )
            .json();
            assert_eq!(
                titles(&r).first().map(String::as_str),
                Some("Quokka note"),
                "{r}"
            );
            let r = post(
                &host,
                "/v1/kb/search",
                &json!({"query": "zeta", "mode": "text", "k": 5}),
                t,
            )
            .json();
            assert_eq!(titles(&r), ["Short zeta", "Long zeta"], "{r}");
            assert!(
                r["results"][0]["matched"]["text"]["score"]
                    .as_f64()
                    .unwrap()
                    > r["results"][1]["matched"]["text"]["score"]
                        .as_f64()
                        .unwrap(),
                "{r}"
            );
        },
    );

    c.check("scopes and metadata filters apply", || {
        let r = search(
            &host,
            json!({"query": "spread liquidity", "scope": ["global"], "k": 5}),
        );
        assert!(!titles(&r).contains(&"Bid-ask spread".to_string()), "{r}");
        let r = search(
            &host,
            json!({"query": "spread liquidity", "scope": ["page:/trading"], "k": 5}),
        );
        assert_eq!(titles(&r), vec!["Bid-ask spread"], "{r}");
        let r = search(
            &host,
            json!({"query": "ratio", "filter": {"topic": "valuation"}, "k": 5}),
        );
        assert_eq!(titles(&r), vec!["WACC"], "{r}");
    });

    c.check("tenants never see each other's documents", || {
        let r = post(
            &host,
            "/v1/kb/search",
            &json!({"query": "Sortino downside"}),
            "other-co",
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["results"], json!([]), "{}", r.describe());
        let id = sortino["id"].as_str().unwrap();
        let r = Request::new("GET", &format!("/v1/kb/documents/{id}"))
            .header("x-tenant-id", "other-co")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 404, None);
    });

    c.check("re-ingesting the same content is idempotent", || {
        let again = post(&host, "/v1/kb/documents", &json!({"title": "Sortino ratio", "content": SORTINO}), "acme");
        assert_eq!(again.status, 200, "{}", again.describe());
        let j = again.json();
        assert_eq!(j["id"], sortino["id"], "{j}");
        assert_eq!(j["duplicate"], true, "{j}");
        let id = sortino["id"].as_str().unwrap();
        assert_eq!(count(&db, &format!("SELECT count(*) FROM kb_documents WHERE content_hash = (SELECT content_hash FROM kb_documents WHERE id = '{id}')")), 1);
    });

    c.check("delete removes the document and its chunks", || {
        let id = spread["id"].as_str().unwrap();
        let r = Request::new("DELETE", &format!("/v1/kb/documents/{id}"))
            .header("x-tenant-id", "acme")
            .send(host.addr())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(
            count(
                &db,
                &format!("SELECT count(*) FROM kb_chunks WHERE document_id = '{id}'")
            ),
            0
        );
        let r = Request::new("DELETE", &format!("/v1/kb/documents/{id}"))
            .header("x-tenant-id", "acme")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 404, None);
        let r = search(&host, json!({"query": "bid ask spread liquidity", "k": 5}));
        assert!(!titles(&r).contains(&"Bid-ask spread".to_string()), "{r}");
    });

    c.check("a large document is queued for the worker, and text search finds it already", || {
        let mut content = String::from("# Liquidity handbook\n\n");
        for i in 0..40 {
            content.push_str(&format!(
                "## Section {i}\n\nMarket depth note {i}: order books thin out near the close, \
                 and a large order walks the book, paying the quarterly zebracorn premium {i}.\n\n"
            ));
        }
        let j = ingest(&host, json!({"title": "Liquidity handbook", "content": content}));
        assert_eq!(j["status"], "pending", "{j}");
        assert_eq!(j["embedded"], "queued", "{j}");
        let id = j["id"].as_str().unwrap();
        let chunks = j["chunks"].as_i64().unwrap();
        assert!(chunks > 8, "{j}");
        assert_eq!(count(&db, &format!("SELECT count(*) FROM embedding_jobs WHERE document_id = '{id}' AND status = 'pending'")), chunks);
        assert_eq!(count(&db, &format!("SELECT count(*) FROM kb_chunks WHERE document_id = '{id}' AND embedding IS NULL")), chunks);
        let r = search(&host, json!({"query": "zebracorn premium", "mode": "text", "k": 3}));
        assert_eq!(titles(&r).first().map(String::as_str), Some("Liquidity handbook"), "{r}");
    });

    c.check(
        "bad documents get a JSON 4xx naming the field and store nothing",
        || {
            let before = count(&db, "SELECT count(*) FROM kb_documents");
            for (body, status, field) in [
                (
                    json!({"title": "t", "content": "   \n "}),
                    400,
                    Some("content"),
                ),
                (json!({"title": "t"}), 400, Some("content")),
                (json!({"title": " ", "content": "x"}), 400, Some("title")),
                (
                    json!({"title": "t", "content": "x", "scope": "planet:x"}),
                    400,
                    Some("scope"),
                ),
                (
                    json!({"title": "t", "content": "x", "format": "pdf"}),
                    400,
                    Some("format"),
                ),
                (
                    json!({"title": "t", "content": "x", "metadata": [1]}),
                    400,
                    Some("metadata"),
                ),
            ] {
                let r = post(&host, "/v1/kb/documents", &body, "acme");
                assert_error(&r, status, field);
            }
            let big = "a".repeat(5 * 1024 * 1024 + 1);
            let r = post(
                &host,
                "/v1/kb/documents",
                &json!({"title": "big", "content": big}),
                "acme",
            );
            assert_error(&r, 413, Some("content"));
            let r = Request::new("POST", "/v1/kb/documents")
                .body(b"{\"title\": \"t\", \"content\": \"\xff\xfe\"}")
                .send(host.addr())
                .unwrap();
            assert_error(&r, 400, None);
            assert_eq!(r.json()["error"]["code"], "invalid_utf8");
            let r = Request::new("POST", "/v1/kb/documents")
                .body(b"{\"title\": ")
                .send(host.addr())
                .unwrap();
            assert_error(&r, 400, None);
            let r = Request::new("POST", "/v1/kb/documents")
                .header("x-tenant-id", "bad tenant!")
                .json(&json!({"title": "t", "content": "x"}))
                .send(host.addr())
                .unwrap();
            assert_error(&r, 400, Some("x-tenant-id"));
            assert_eq!(count(&db, "SELECT count(*) FROM kb_documents"), before);
        },
    );

    c.check("a failure while storing chunks leaves no partial document", || {
        // A trigger in the real database makes the chunk insert fail mid-transaction.
        db.execute(
            "CREATE FUNCTION fail_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.content LIKE '%FAIL-INSERT%' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER fail_chunk BEFORE INSERT ON kb_chunks FOR EACH ROW EXECUTE FUNCTION fail_chunk();",
        );
        let before = count(&db, "SELECT count(*) FROM kb_documents");
        let r = post(&host, "/v1/kb/documents", &json!({"title": "doomed", "content": "Text that says FAIL-INSERT."}), "acme");
        assert_error(&r, 500, None);
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents"), before);
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents WHERE title = 'doomed'"), 0);
        db.execute("DROP TRIGGER fail_chunk ON kb_chunks; DROP FUNCTION fail_chunk();");
    });

    c.check("bad searches get a JSON 400 naming the field", || {
        for (body, field) in [
            (json!({"query": "x", "k": 0}), "k"),
            (json!({"query": "x", "k": 51}), "k"),
            (json!({"query": "x", "mode": "fuzzy"}), "mode"),
            (json!({"query": ""}), "query"),
            (json!({"k": 3}), "query"),
            (json!({"query": "x", "scope": ["nowhere"]}), "scope"),
            (json!({"query": "x", "mdoe": "text"}), "mdoe"),
        ] {
            let r = post(&host, "/v1/kb/search", &body, "acme");
            assert_error(&r, 400, Some(field));
        }
        let r = Request::new("POST", "/v1/kb/search")
            .body(b"{nope")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 400, None);
    });

    c.check("documents: bad ids, unknown routes and methods", || {
        let r = Request::new("GET", "/v1/kb/documents/not-a-uuid")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 400, Some("id"));
        let r = Request::new(
            "GET",
            "/v1/kb/documents/00000000-0000-4000-8000-000000000000",
        )
        .send(host.addr())
        .unwrap();
        assert_error(&r, 404, None);
        let r = Request::new("PUT", "/v1/kb/search")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 405, None);
        let r = Request::new("GET", "/v1/kb/nothing")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 404, None);
    });

    c.finish(Some(&host));
}

#[test]
fn embeddings_endpoint_matches_the_reference_model() {
    let db = TestDb::new();
    let host = start(&db);
    let mut c = Checks::new("embeddings");
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            tessera_e2e::root().join("crates/embedder/tests/fixtures/reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // The endpoint refuses blank inputs (as OpenAI's does); the native reference test
    // covers those.
    let sentences: Vec<Value> = fixture["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["text"].as_str().unwrap().trim().is_empty())
        .cloned()
        .collect();

    c.check(
        "in-component embeddings agree with sentence-transformers (cosine >= 0.999)",
        || {
            // Batches of 8: the endpoint's per-call limit is far above, and smaller calls keep
            // each request short.
            for batch in sentences.chunks(8) {
                let inputs: Vec<&str> = batch.iter().map(|s| s["text"].as_str().unwrap()).collect();
                let r = host.post_json(
                    "/v1/embeddings",
                    &json!({"input": inputs, "model": "all-MiniLM-L6-v2"}),
                );
                assert_eq!(r.status, 200, "{}", r.describe());
                let j = r.json();
                assert_eq!(j["object"], "list");
                for (i, s) in batch.iter().enumerate() {
                    let got: Vec<f64> = j["data"][i]["embedding"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect();
                    let want: Vec<f64> = s["embedding"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect();
                    assert_eq!(got.len(), 384);
                    let dot: f64 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
                    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
                    let cosine = dot / (norm(&got) * norm(&want));
                    assert!(cosine >= 0.999, "{:?}: cosine {cosine}", s["text"]);
                }
                assert!(j["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{j}");
            }
        },
    );

    c.check("base64 encoding and a single string input", || {
        let r = host.post_json(
            "/v1/embeddings",
            &json!({"input": "hello", "encoding_format": "base64"}),
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        let b64 = r.json()["data"][0]["embedding"]
            .as_str()
            .unwrap()
            .to_string();
        let floats = host
            .post_json("/v1/embeddings", &json!({"input": "hello"}))
            .json();
        let want: Vec<f32> = floats["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let got: Vec<f32> = base64_decode(&b64)
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(got, want);
    });

    c.check(
        "bad embedding requests get a JSON 4xx naming the field",
        || {
            for (body, status, field) in [
                (json!({"input": []}), 400, "input"),
                (json!({"input": [""]}), 400, "input[0]"),
                (
                    json!({"input": "x", "model": "text-embedding-3-large"}),
                    404,
                    "model",
                ),
                (
                    json!({"input": "x", "encoding_format": "int8"}),
                    400,
                    "encoding_format",
                ),
                (json!({"input": "x", "dimensions": 1536}), 400, "dimensions"),
                (json!({"input": vec!["x"; 65]}), 400, "input"),
                (json!({"input": 42}), 400, "input"),
                (json!({"model": "all-MiniLM-L6-v2"}), 400, "input"),
            ] {
                let r = host.post_json("/v1/embeddings", &body);
                assert_error(&r, status, Some(field));
            }
        },
    );

    c.finish(Some(&host));
}

/// Standard base64 (the test's own decoder, independent of the component's encoder).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for group in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in group.iter().enumerate() {
            n |= u32::from(value(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..group.len()]);
    }
    out
}
