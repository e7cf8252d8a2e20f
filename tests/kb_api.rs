//! The knowledge base's RAG API end to end (issue 18, item 5): listing with filters and
//! cursors, NDJSON bulk ingest, bulk delete by filter, derived titles, results grouped by
//! document, foreign tenant scopes and stop-word-only queries. The repository's spin.toml on
//! the real host, the kb component running MiniLM in wasm, real Postgres with pgvector.

use serde_json::{Value, json};
use tessera_e2e::http::{Request, encode};
use tessera_e2e::{Checks, HostCommand, Response, TestDb, TestHost};

/// The docs source's signing secret (test only).
const DOCS_SECRET: &str = "whsec_dGVzc2VyYS1rYi1kb2NzLXdlYmhvb2stMDE=";

fn start(db: &TestDb) -> TestHost {
    HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("SPIN_VARIABLE_DOCS_WEBHOOK_SECRET", DOCS_SECRET)
        .env("SPIN_VARIABLE_DOCS_WEBHOOK_TENANT", "hooks")
        .start()
}

/// A document-sync event, signed as the docs system would.
fn docs_webhook(host: &TestHost, id: &str, event: &Value) -> Response {
    use tessera_alerting::standard_webhooks::{Secret, outgoing_headers};
    let secret = Secret::parse(DOCS_SECRET).expect("secret");
    let body = event.to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut req =
        Request::new("POST", "/v1/webhooks/docs").header("content-type", "application/json");
    for (name, value) in outgoing_headers(&[secret], id, now, body.as_bytes()) {
        req = req.header(name, value);
    }
    req.body(body.as_bytes())
        .send(host.addr())
        .unwrap_or_else(|e| panic!("webhook: {e}"))
}

fn post(host: &TestHost, path: &str, body: &Value, tenant: &str) -> Response {
    Request::new("POST", path)
        .header("x-tenant-id", tenant)
        .json(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn get(host: &TestHost, path: &str, tenant: &str) -> Response {
    Request::new("GET", path)
        .header("x-tenant-id", tenant)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn bulk(host: &TestHost, body: &[u8], tenant: &str) -> Response {
    Request::new("POST", "/v1/kb/documents/bulk")
        .header("x-tenant-id", tenant)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send(host.addr())
        .unwrap_or_else(|e| panic!("bulk: {e}"))
}

fn ok(r: Response) -> Value {
    assert!(r.status == 200 || r.status == 201, "{}", r.describe());
    r.json()
}

fn assert_error(r: &Response, status: u16, field: Option<&str>) {
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

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).unwrap()[0].get::<_, i64>(0)
}

/// The BM25 statistics the kb keeps (migrations/0012_kb_text.sql) against a recount of the
/// chunks: rows that differ, either way (zero counts are rows of nothing).
fn stats_drift(db: &TestDb) -> i64 {
    count(
        db,
        "SELECT (SELECT count(*) FROM (
            (SELECT tenant_id, count(*)::bigint, sum(kb_tsv_length(tsv))::bigint FROM kb_chunks GROUP BY 1
             EXCEPT SELECT tenant_id, chunks, total_length FROM kb_text_stats WHERE chunks <> 0)
            UNION ALL
            (SELECT tenant_id, chunks, total_length FROM kb_text_stats WHERE chunks <> 0
             EXCEPT SELECT tenant_id, count(*)::bigint, sum(kb_tsv_length(tsv))::bigint FROM kb_chunks GROUP BY 1)) a)
          + (SELECT count(*) FROM (
            (SELECT tenant_id, u.lexeme, count(*)::int FROM kb_chunks, unnest(tsv) u GROUP BY 1, 2
             EXCEPT SELECT tenant_id, lexeme, chunks FROM kb_term_stats WHERE chunks <> 0)
            UNION ALL
            (SELECT tenant_id, lexeme, chunks FROM kb_term_stats WHERE chunks <> 0
             EXCEPT SELECT tenant_id, u.lexeme, count(*)::int FROM kb_chunks, unnest(tsv) u GROUP BY 1, 2)) b)",
    )
}

/// Every page of a listing, following `next_cursor`.
fn all_pages(host: &TestHost, query: &str, tenant: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/kb/documents?{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", encode(c)));
        }
        let j = ok(get(host, &path, tenant));
        pages.push(j["documents"].as_array().unwrap().clone());
        match j["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages.len() < 50, "pagination does not end");
    }
    pages
}

fn ids(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

fn section(topic: &str, n: usize) -> String {
    format!(
        "## {topic} part {n}\n\n{}\n\n",
        format!(
            "The {topic} discussion number {n} walks through assumptions, inputs and \
             checks that an analyst reviews before trusting the {topic} figure. "
        )
        .repeat(6)
    )
}

#[test]
fn rag_api() {
    let db = TestDb::new();
    let host = start(&db);
    let mut c = Checks::new("kb_api");

    // Seven documents for listing, in a known creation order, across scopes and metadata.
    let mut created: Vec<Value> = Vec::new();
    for i in 0..7 {
        let scope = if i % 2 == 0 { "global" } else { "page:/desk" };
        let topic = if i < 3 { "risk" } else { "valuation" };
        created.push(ok(post(
            &host,
            "/v1/kb/documents",
            &json!({"title": format!("Doc {i}"), "content": format!("Listing document number {i} about {topic}."),
                    "scope": scope, "metadata": {"topic": topic, "n": i}}),
            "acme",
        )));
    }
    // Another tenant's document never shows.
    ok(post(
        &host,
        "/v1/kb/documents",
        &json!({"title": "Other", "content": "Another tenant's note."}),
        "other-co",
    ));

    c.check(
        "list pages newest first through an opaque cursor, ending with null",
        || {
            let pages = all_pages(&host, "limit=3", "acme");
            assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
            let listed: Vec<String> = pages
                .concat()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string())
                .collect();
            let mut expected = ids(&created);
            expected.reverse();
            assert_eq!(listed, expected);
            let first = &pages[0][0];
            assert_eq!(first["title"], "Doc 6");
            assert_eq!(first["status"], "ready");
            assert!(
                first["created_at"].as_str().unwrap().ends_with('Z'),
                "{first}"
            );
            // A page exactly as long as what is left has no next page.
            let j = ok(get(&host, "/v1/kb/documents?limit=7", "acme"));
            assert_eq!(j["documents"].as_array().unwrap().len(), 7);
            assert_eq!(j["next_cursor"], Value::Null);
            let j = ok(get(&host, "/v1/kb/documents", "other-co"));
            assert_eq!(j["documents"].as_array().unwrap().len(), 1, "{j}");
        },
    );

    c.check(
        "list filters: scope, metadata, status, created range",
        || {
            let scoped: Vec<Value> = all_pages(&host, "scope=page:/desk&limit=2", "acme").concat();
            assert_eq!(
                scoped
                    .iter()
                    .map(|d| d["title"].as_str().unwrap())
                    .collect::<Vec<_>>(),
                ["Doc 5", "Doc 3", "Doc 1"]
            );
            let filter = encode(r#"{"topic":"risk"}"#);
            let risk = all_pages(&host, &format!("filter={filter}"), "acme").concat();
            assert_eq!(risk.len(), 3);
            let both = all_pages(
                &host,
                &format!(
                    "filter={}&scope=global",
                    encode(r#"{"topic":"valuation","n":4}"#)
                ),
                "acme",
            )
            .concat();
            assert_eq!(ids(&both), [created[4]["id"].as_str().unwrap()]);
            assert_eq!(all_pages(&host, "status=pending", "acme").concat().len(), 0);
            assert_eq!(all_pages(&host, "status=ready", "acme").concat().len(), 7);
            assert_eq!(
                all_pages(&host, "created_after=2000-01-01", "acme")
                    .concat()
                    .len(),
                7
            );
            assert_eq!(
                all_pages(&host, "created_before=2000-01-01T00:00:00Z", "acme")
                    .concat()
                    .len(),
                0
            );
            assert_eq!(
                all_pages(
                    &host,
                    &format!("created_after={}", encode("2999-01-01T00:00:00+02:00")),
                    "acme"
                )
                .concat()
                .len(),
                0
            );
        },
    );

    c.check(
        "bad list parameters are a JSON 400 naming the parameter",
        || {
            for (query, field) in [
                ("limit=0", "limit"),
                ("limit=101", "limit"),
                ("limit=x", "limit"),
                ("cursor=bm90LWEtY3Vyc29y", "cursor"),
                ("cursor=%%%", "cursor"),
                ("status=done", "status"),
                ("scope=planet:x", "scope"),
                ("scope=tenant:other-co", "scope"),
                ("filter=%7B", "filter"),
                ("created_after=yesterday", "created_after"),
                ("created_before=2026-02-30", "created_before"),
                ("sort=asc", "sort"),
            ] {
                let r = get(&host, &format!("/v1/kb/documents?{query}"), "acme");
                assert_error(&r, 400, Some(field));
            }
            let r = get(&host, "/v1/kb/documents?scope=tenant:acme", "acme");
            assert_eq!(r.status, 200, "{}", r.describe());
        },
    );

    c.check("a missing title is derived from the content", || {
        let j = ok(post(&host, "/v1/kb/documents", &json!({"content": "Lead-in sentence.\n\n# Kelly criterion\n\nBet a fraction of bankroll."}), "acme"));
        assert_eq!(j["title"], "Kelly criterion", "{j}");
        let j = ok(post(&host, "/v1/kb/documents", &json!({"content": "---\ntitle: From front matter\n---\n# Heading\n\nBody text."}), "acme"));
        assert_eq!(j["title"], "From front matter", "{j}");
        let j = ok(post(&host, "/v1/kb/documents", &json!({"content": "\n  First line wins.\nSecond line.", "format": "text"}), "acme"));
        assert_eq!(j["title"], "First line wins.", "{j}");
        let id = j["id"].as_str().unwrap();
        assert_eq!(ok(get(&host, &format!("/v1/kb/documents/{id}"), "acme"))["title"], "First line wins.");
    });

    c.check(
        "a scope naming another tenant is a 400 naming scope",
        || {
            let r = post(
                &host,
                "/v1/kb/search",
                &json!({"query": "risk", "scope": ["global", "tenant:other-co"]}),
                "acme",
            );
            assert_error(&r, 400, Some("scope"));
            assert_eq!(r.json()["error"]["code"], "foreign_tenant");
            let r = post(
                &host,
                "/v1/kb/documents",
                &json!({"content": "x", "scope": "tenant:other-co"}),
                "acme",
            );
            assert_error(&r, 400, Some("scope"));
            let r = post(
                &host,
                "/v1/kb/documents/delete",
                &json!({"scope": "tenant:other-co"}),
                "acme",
            );
            assert_error(&r, 400, Some("scope"));
            let r = post(
                &host,
                "/v1/kb/search",
                &json!({"query": "risk", "scope": "tenant:acme"}),
                "acme",
            );
            assert_eq!(r.status, 200, "{}", r.describe());
        },
    );

    c.check("a stop-word-only query says so; others do not", || {
        for mode in ["text", "hybrid"] {
            let j = ok(post(
                &host,
                "/v1/kb/search",
                &json!({"query": "What is it, and which?", "mode": mode}),
                "acme",
            ));
            assert_eq!(j["notice"], "query_has_only_stop_words", "{mode}: {j}");
            assert!(j["notice_message"].is_string(), "{j}");
            assert!(j["timing"].get("text_ms").is_none(), "{j}");
        }
        let j = ok(post(
            &host,
            "/v1/kb/search",
            &json!({"query": "what is it", "mode": "text"}),
            "acme",
        ));
        assert_eq!(j["results"], json!([]), "{j}");
        let j = ok(post(
            &host,
            "/v1/kb/search",
            &json!({"query": "what is it", "mode": "vector"}),
            "acme",
        ));
        assert!(j.get("notice").is_none(), "{j}");
        let j = ok(post(
            &host,
            "/v1/kb/search",
            &json!({"query": "what is the Kelly criterion", "mode": "text"}),
            "acme",
        ));
        assert!(j.get("notice").is_none(), "{j}");
        assert!(!j["results"].as_array().unwrap().is_empty(), "{j}");
    });

    c.check("group_by document: one result per document, best chunk with its neighbours", || {
        let mut content = String::from("# Duration handbook\n\n");
        for n in 0..4 {
            content.push_str(&section("duration", n));
        }
        content.push_str("## Convexity\n\nConvexity measures how duration changes as yields move; the zanzibar adjustment corrects for it.\n\n");
        for n in 4..6 {
            content.push_str(&section("duration", n));
        }
        let doc = ok(post(&host, "/v1/kb/documents", &json!({"title": "Duration handbook", "content": content}), "acme"));
        let chunks = doc["chunks"].as_i64().unwrap();
        assert!((3..=8).contains(&chunks), "{doc}");
        for mode in ["text", "hybrid"] {
            let j = ok(post(&host, "/v1/kb/search", &json!({"query": "duration convexity zanzibar adjustment", "mode": mode, "k": 5, "group_by": "document"}), "acme"));
            assert_eq!(j["group_by"], "document");
            let results = j["results"].as_array().unwrap();
            let docs: Vec<&str> = results.iter().map(|r| r["document_id"].as_str().unwrap()).collect();
            let mut distinct = docs.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), docs.len(), "{mode}: one result per document: {j}");
            let top = &results[0];
            assert_eq!(top["document_id"], doc["id"], "{mode}: {j}");
            assert!(top["content"].as_str().unwrap().contains("zanzibar"), "{mode}: {top}");
            assert!(top["matched_chunks"].as_u64().unwrap() >= 2, "{mode}: {top}");
            let ordinal = top["ordinal"].as_i64().unwrap();
            assert!(ordinal > 0 && ordinal < chunks - 1, "{top}");
            assert_eq!(top["context"]["before"]["ordinal"], ordinal - 1, "{top}");
            assert_eq!(top["context"]["after"]["ordinal"], ordinal + 1, "{top}");
            assert!(top["context"]["before"]["content"].as_str().unwrap().contains("duration"), "{top}");
        }
        // Ungrouped, the same document fills several places.
        let j = ok(post(&host, "/v1/kb/search", &json!({"query": "duration analyst figure", "mode": "text", "k": 5}), "acme"));
        let same = j["results"].as_array().unwrap().iter().filter(|r| r["document_id"] == doc["id"]).count();
        assert!(same >= 2, "{j}");
        // The first and last chunk have one side of context only.
        let r = post(&host, "/v1/kb/search", &json!({"query": "x", "group_by": "pages"}), "acme");
        assert_error(&r, 400, Some("group_by"));
    });

    c.check("bulk ingest: per-line results in order, bad lines reported, others stored and queued", || {
        let before = count(&db, "SELECT count(*) FROM kb_documents WHERE tenant_id = 'acme'");
        let existing = "Listing document number 0 about risk.";
        let body = format!(
            "{}\n{}\n\n{}\n{}\n{}\r\n",
            json!({"title": "Bulk one", "content": "Bulk ingested note about the quokka spread.", "metadata": {"batch": "b1"}}),
            json!({"title": "Doc 0", "content": existing, "scope": "global"}),
            json!({"title": 3, "content": "bad title type"}),
            "{not json",
            json!({"content": "# Bulk two\n\nA second quokka note, titled by its heading.", "scope": "page:/desk", "metadata": {"batch": "b1"}}),
        );
        let r = bulk(&host, body.as_bytes(), "acme");
        assert_eq!(r.status, 200, "{}", r.describe());
        let j = r.json();
        assert_eq!((j["created"].as_u64(), j["duplicates"].as_u64(), j["failed"].as_u64()), (Some(2), Some(1), Some(2)), "{j}");
        let results = j["results"].as_array().unwrap();
        let lines: Vec<u64> = results.iter().map(|r| r["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, [1, 2, 4, 5, 6]);
        assert_eq!(results[0]["status_code"], 201);
        assert_eq!(results[0]["status"], "pending", "bulk chunks go to the worker: {j}");
        assert_eq!(results[0]["embedded"], "queued");
        assert_eq!(results[1]["status_code"], 200);
        assert_eq!(results[1]["duplicate"], true);
        assert_eq!(results[1]["id"], created[0]["id"]);
        assert_eq!(results[2]["status_code"], 400);
        assert_eq!(results[2]["error"]["field"], "title");
        assert_eq!(results[3]["status_code"], 400);
        assert_eq!(results[3]["error"]["code"], "invalid_json");
        assert_eq!(results[4]["title"], "Bulk two");
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents WHERE tenant_id = 'acme'"), before + 2);
        let id = results[0]["id"].as_str().unwrap();
        assert_eq!(count(&db, &format!("SELECT count(*) FROM embedding_jobs WHERE document_id = '{id}'")), results[0]["chunks"].as_i64().unwrap());
        // Text search finds them before the worker runs.
        let s = ok(post(&host, "/v1/kb/search", &json!({"query": "quokka", "mode": "text"}), "acme"));
        assert_eq!(s["results"].as_array().unwrap().len(), 2, "{s}");
        // The same file again: every good line is a duplicate, nothing new is stored.
        let again = bulk(&host, body.as_bytes(), "acme").json();
        assert_eq!((again["created"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(3)), "{again}");
        assert_eq!(again["results"][0]["id"], results[0]["id"]);
        assert!(count(&db, "SELECT count(*) FROM kb_term_stats WHERE chunks > 0") > 10);
        assert_eq!(stats_drift(&db), 0, "BM25 statistics follow every ingest");
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents WHERE tenant_id = 'acme'"), before + 2);
    });

    c.check("bulk limits and bad bodies", || {
        let line = json!({"content": "tiny"}).to_string() + "\n";
        let r = bulk(&host, line.repeat(1001).as_bytes(), "acme");
        assert_error(&r, 413, Some("body"));
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1000"),
            "{}",
            r.describe()
        );
        let big = vec![b' '; (16 << 20) + 1];
        let r = bulk(&host, &big, "acme");
        assert_error(&r, 413, None);
        let r = bulk(&host, b"\n \n", "acme");
        assert_error(&r, 400, Some("body"));
        let r = Request::new("POST", "/v1/kb/documents/bulk")
            .header("content-type", "text/csv")
            .body(b"a,b\n")
            .send(host.addr())
            .unwrap();
        assert_error(&r, 415, Some("content-type"));
        let r = bulk(
            &host,
            format!("{}\n", json!({"content": "x", "scope": "tenant:other-co"})).as_bytes(),
            "acme",
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["results"][0]["error"]["field"], "scope");
        let r = get(&host, "/v1/kb/documents/bulk", "acme");
        assert_error(&r, 405, None);
    });

    c.check("bulk delete by filter: refuses an empty filter, counts, takes chunks along", || {
        for (body, field) in [
            (json!({}), "filter"),
            (json!({"filter": {}}), "filter"),
            (json!({"all": "yes"}), "all"),
            (json!({"status": "gone"}), "status"),
            (json!({"filter": {"batch": ["b1"]}}), "filter.batch"),
            (json!({"ids": ["x"]}), "ids"),
        ] {
            assert_error(&post(&host, "/v1/kb/documents/delete", &body, "acme"), 400, Some(field));
        }
        let acme_docs = count(&db, "SELECT count(*) FROM kb_documents WHERE tenant_id = 'acme'");
        let j = ok(post(&host, "/v1/kb/documents/delete", &json!({"filter": {"batch": "b1"}}), "acme"));
        assert_eq!(j["deleted"], 2, "{j}");
        assert_eq!(count(&db, "SELECT count(*) FROM kb_chunks c WHERE c.metadata @> '{\"batch\":\"b1\"}'"), 0);
        assert_eq!(count(&db, "SELECT count(*) FROM embedding_jobs j LEFT JOIN kb_documents d ON d.id = j.document_id WHERE d.id IS NULL"), 0);
        let j = ok(post(&host, "/v1/kb/documents/delete", &json!({"scope": "page:/desk", "filter": {"topic": "risk"}}), "acme"));
        assert_eq!(j["deleted"], 1, "{j}"); // Doc 1
        let j = ok(post(&host, "/v1/kb/documents/delete", &json!({"filter": {"batch": "b1"}}), "acme"));
        assert_eq!(j["deleted"], 0, "{j}");
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents WHERE tenant_id = 'acme'"), acme_docs - 3);
        let j = ok(post(&host, "/v1/kb/documents/delete", &json!({"all": true}), "acme"));
        assert_eq!(j["deleted"].as_i64().unwrap(), acme_docs - 3, "{j}");
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents WHERE tenant_id = 'acme'"), 0);
        assert_eq!(count(&db, "SELECT count(*) FROM kb_chunks WHERE tenant_id = 'acme'"), 0);
        assert_eq!(stats_drift(&db), 0, "BM25 statistics follow every delete");
        assert_eq!(count(&db, "SELECT chunks FROM kb_text_stats WHERE tenant_id = 'acme'"), 0);
        // The other tenant keeps its document.
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents WHERE tenant_id = 'other-co'"), 1);
    });

    c.check("the curated scope is written by operators and admins only", || {
        // Trusted-headers mode: the gateway's role header; none means admin.
        let as_role = |method: &str, path: &str, body: &Value, role: &str| {
            Request::new(method, path)
                .header("x-tenant-id", "curators")
                .header("x-tessera-role", role)
                .json(body)
                .send(host.addr())
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        };
        let doc = json!({"title": "Approved answer", "content": "WACC is the weighted average cost of capital.",
                         "scope": "curated"});
        assert_error(&as_role("POST", "/v1/kb/documents", &doc, "member"), 403, Some("scope"));
        let line = format!("{}\n", doc);
        let r = Request::new("POST", "/v1/kb/documents/bulk")
            .header("x-tenant-id", "curators")
            .header("x-tessera-role", "member")
            .header("content-type", "application/x-ndjson")
            .body(line.as_bytes())
            .send(host.addr())
            .unwrap_or_else(|e| panic!("bulk: {e}"));
        let j = r.json();
        assert_eq!(j["results"][0]["error"]["code"], "forbidden", "{}", r.describe());
        let created = as_role("POST", "/v1/kb/documents", &doc, "operator");
        assert_eq!(created.status, 201, "{}", created.describe());
        let id = created.json()["id"].as_str().unwrap().to_string();
        // A member's delete-all and delete by id leave the curated document alone.
        let j = ok(as_role("POST", "/v1/kb/documents/delete", &json!({"all": true}), "member"));
        assert_eq!(j["deleted"], 0, "{j}");
        assert_error(
            &as_role("POST", "/v1/kb/documents/delete", &json!({"scope": "curated"}), "member"),
            403,
            Some("scope"),
        );
        let r = as_role("DELETE", &format!("/v1/kb/documents/{id}"), &json!({}), "member");
        assert_eq!(r.status, 404, "{}", r.describe());
        let r = as_role("DELETE", &format!("/v1/kb/documents/{id}"), &json!({}), "operator");
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(count(&db, "SELECT count(*) FROM kb_documents WHERE tenant_id = 'curators'"), 0);
    });

    c.check(
        "document sync by webhook: upserts and deletes reach the knowledge base of the source's tenant",
        || {
            let r = docs_webhook(
                &host,
                "doc_evt_1",
                &json!({"type": "document.upsert", "data": {"title": "Synced runbook",
                        "content": "Restart the settlement batch after the clearing file arrives."}}),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let handoff = &r.json()["handoff"];
            assert_eq!(handoff["status"], "done", "{}", r.describe());
            let id = handoff["detail"]["answer"]["id"].as_str().expect("document id").to_string();
            let j = ok(get(&host, &format!("/v1/kb/documents/{id}"), "hooks"));
            assert_eq!(j["title"], "Synced runbook", "{j}");
            assert_eq!(get(&host, &format!("/v1/kb/documents/{id}"), "acme").status, 404);
            // The same event again: stored once, nothing ingested twice.
            let again = docs_webhook(
                &host,
                "doc_evt_1",
                &json!({"type": "document.upsert", "data": {"title": "Synced runbook",
                        "content": "Restart the settlement batch after the clearing file arrives."}}),
            );
            assert_eq!(again.json()["duplicate"], true, "{}", again.describe());
            let j = ok(get(&host, "/v1/kb/documents", "hooks"));
            assert_eq!(j["documents"].as_array().map(Vec::len), Some(1), "{j}");
            let r = docs_webhook(
                &host,
                "doc_evt_2",
                &json!({"type": "document.delete", "data": {"id": id}}),
            );
            assert_eq!(r.json()["handoff"]["status"], "done", "{}", r.describe());
            assert_eq!(get(&host, &format!("/v1/kb/documents/{id}"), "hooks").status, 404);
        },
    );

    c.finish(Some(&host));
}
