//! The embedding worker end to end: the real `tessera-worker` with the real model, next to
//! the real host and kb component, on a real Postgres with pgvector.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tessera_devdb::tls::{Plaintext, TlsFront};
use tessera_e2e::http::Request;
use tessera_e2e::vectors::{cosine, floats};
use tessera_e2e::{Checks, HostCommand, TestDb, TestHost, TestWorker, WorkerCommand, toml_string};

const TOKEN: &str = "worker-test-token";

/// Vectors of an OpenAI-shaped answer, by `index`.
fn openai_vectors(answer: &Value) -> Vec<Vec<f64>> {
    let data = answer["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    let mut out = vec![Vec::new(); data.len()];
    for item in data {
        out[item["index"].as_u64().unwrap() as usize] = floats(&item["embedding"]);
    }
    out
}

/// Vectors of a Spin-shaped answer.
fn spin_vectors(answer: &Value) -> Vec<Vec<f64>> {
    answer["embeddings"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(floats)
        .collect()
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))[0].get::<_, i64>(0)
}

fn assert_error(r: &tessera_e2e::Response, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.describe());
    let j = r.json();
    assert_eq!(j["error"]["code"], code, "{j}");
    assert!(
        j["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{j}"
    );
    if let Some(field) = field {
        assert_eq!(j["error"]["field"], field, "{j}");
    }
}

/// The kb component's `/v1/embeddings` (the in-component model) and a test guest that calls
/// `llm.generate-embeddings` (forwarded by the host to `--llm-url`).
fn manifest(db: &TestDb) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "worker-e2e"

[variables]
database_url = {{ required = true, secret = true }}

[[trigger.http]]
route = "/v1/embeddings"
component = "kb"

[component.kb]
source = "WASM:kb"
allowed_outbound_hosts = ["postgres://{host}"]
files = [{{ source = {models}, destination = "/models/all-MiniLM-L6-v2" }}]
[component.kb.variables]
db_url = "{{{{ database_url }}}}"

[[trigger.http]]
route = "/llm"
component = "llm-embed"

[component.llm-embed]
source = "WASM:llm-embed"
ai_models = ["all-minilm-l6-v2", "llama2-chat"]
"#,
        host = db.host_port(),
        models = toml_string(&tessera_e2e::model_dir().to_string_lossy()),
    )
}

/// The repository's application (kb with every route) on `db`.
fn start_app(db: &TestDb) -> TestHost {
    HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start()
}

/// The fixture's sentences (blank ones left out: both endpoints refuse them) and passages
/// long enough to be truncated at the model's 256 word pieces.
fn texts() -> Vec<String> {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            tessera_e2e::root().join("crates/embedder/tests/fixtures/reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut texts: Vec<String> = fixture["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .filter(|t| !t.trim().is_empty())
        .collect();
    texts.push(long_passage(60));
    texts.push(long_passage(400));
    texts
}

/// A passage of about `words` words on risk management.
fn long_passage(words: usize) -> String {
    const VOCABULARY: &[&str] = &[
        "volatility",
        "drawdown",
        "hedge",
        "exposure",
        "liquidity",
        "spread",
        "beta",
        "margin",
        "leverage",
        "duration",
        "convexity",
        "yield",
        "portfolio",
        "rebalancing",
        "correlation",
        "tail",
        "risk",
        "return",
        "position",
        "sizing",
    ];
    (0..words)
        .map(|i| VOCABULARY[(i * 7 + words) % VOCABULARY.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

const EMBED_HEADER: &str = "authorization";

/// The library `cargo xtask setup` fetched: the default worker runs on it.
fn setup_ort_dylib() -> std::path::PathBuf {
    let dylib = WorkerCommand::setup_ort_dylib();
    assert!(
        dylib.is_file(),
        "{} is missing: `cargo xtask setup` fetches it from the PyPI wheel onnxruntime",
        dylib.display()
    );
    dylib
}

/// `--backend auto` (the default) runs onnxruntime when its library loads and tract when it
/// is missing or does not load, saying which and why; both compute the same vectors.
/// With OTLP configured on both, a component's `llm.generate-embeddings` call to the worker
/// is one trace: the host's request span, its call to the worker, the worker's own span.
#[test]
fn the_worker_continues_the_hosts_trace_over_otlp() {
    setup_ort_dylib();
    let collector = tessera_e2e::TestServer::start("");
    let db = TestDb::new();
    let worker = WorkerCommand::new()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.origin())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .start();
    let host = HostCommand::new(&db, &manifest(&db))
        .arg("--no-local-models")
        .arg("--llm-url")
        .arg(worker.url())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.origin())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .start();
    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4736";
    let r = tessera_e2e::http::Request::new("POST", "/llm")
        .header("traceparent", format!("00-{trace_id}-10f067aa0ba902b7-01"))
        .json(&json!({"model": "all-minilm-l6-v2", "input": ["one trace"]}))
        .send(host.addr())
        .expect("POST /llm");
    assert_eq!(r.status, 200, "{}", r.describe());
    let spans = tessera_e2e::otlp::spans_when(&collector, |spans| {
        spans
            .iter()
            .any(|s| s.trace_id == trace_id && s.service == "tessera-worker")
            && spans
                .iter()
                .any(|s| s.trace_id == trace_id && s.service == "tessera" && s.server)
    });
    let spans: Vec<_> = spans
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let request = spans
        .iter()
        .find(|s| s.service == "tessera" && s.server)
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(request.name, "POST /llm");
    assert_eq!(request.parent, "10f067aa0ba902b7");
    let call = spans
        .iter()
        .find(|s| s.service == "tessera" && !s.server && s.parent == request.span_id)
        .unwrap_or_else(|| panic!("no call to the worker under the request: {spans:#?}"));
    assert_eq!(call.name, "POST /embed");
    let served = spans
        .iter()
        .find(|s| s.service == "tessera-worker")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert!(served.server, "{served:#?}");
    assert_eq!(served.name, "POST /embed");
    assert_eq!(
        served.parent, call.span_id,
        "the worker continues the host's call"
    );
    assert_eq!(served.attribute("http.response.status_code"), Some("200"));
}

#[test]
fn auto_backend_prefers_onnxruntime_and_falls_back_to_tract() {
    setup_ort_dylib();
    let backend_of = |w: &TestWorker| w.get("/health").json()["backend"].clone();

    let onnxruntime = WorkerCommand::new().start();
    assert_eq!(backend_of(&onnxruntime), "ort", "{}", onnxruntime.output());
    let log = onnxruntime.output();
    assert!(
        log.contains("backend auto: onnxruntime loaded")
            && log.contains(".tessera/onnxruntime/libonnxruntime.so"),
        "{log}"
    );

    let missing = "/nonexistent/libonnxruntime.so";
    let tract = WorkerCommand::new().args(["--ort-dylib", missing]).start();
    assert_eq!(backend_of(&tract), "tract", "{}", tract.output());
    let log = tract.output();
    assert!(
        log.contains("backend auto: onnxruntime not used, running tract")
            && log.contains(&format!("no onnxruntime library at {missing}")),
        "the fallback names the missing library: {log}"
    );

    // A file that is there but is no library: dlopen fails, and the reason is logged.
    let dir = tessera_e2e::TempDir::new("tessera-e2e-ort");
    let broken = dir.path().join("libonnxruntime.so");
    std::fs::write(&broken, b"not a shared library").unwrap();
    let fallback = WorkerCommand::new()
        .arg("--ort-dylib")
        .arg(broken.display().to_string())
        .start();
    assert_eq!(backend_of(&fallback), "tract", "{}", fallback.output());
    let log = fallback.output();
    assert!(
        log.contains("running tract") && log.contains(&format!("loading {}", broken.display())),
        "{log}"
    );
    drop(fallback);

    // Both backends embed every text (batched, and one at a time) to the same vector.
    let texts = texts();
    let embed = |w: &TestWorker, input: &[String]| {
        let r = w.post_json("/v1/embeddings", &json!({ "input": input }));
        assert_eq!(r.status, 200, "{}", r.describe());
        openai_vectors(&r.json())
    };
    let mut lowest = 1.0f64;
    let mut compare = |a: Vec<Vec<f64>>, b: Vec<Vec<f64>>| {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.len(), 384);
            lowest = lowest.min(cosine(x, y));
        }
    };
    compare(embed(&onnxruntime, &texts), embed(&tract, &texts));
    for text in texts.iter().take(4) {
        let one = std::slice::from_ref(text);
        compare(embed(&onnxruntime, one), embed(&tract, one));
    }
    assert!(
        lowest >= 0.9999,
        "onnxruntime and tract disagree: lowest cosine {lowest}"
    );
}

#[test]
fn worker_http_endpoints() {
    setup_ort_dylib();
    let db = TestDb::new();
    let worker = WorkerCommand::new().token(TOKEN).start();
    // No model in the host: every llm.generate-embeddings goes to the worker.
    let host = HostCommand::new(&db, &manifest(&db))
        .arg("--no-local-models")
        .arg("--llm-url")
        .arg(worker.url())
        .arg("--llm-token")
        .arg(TOKEN)
        .start();
    let mut c = Checks::new("worker");
    let texts = texts();

    // The worker's vector for every text, one request; later checks compare against it.
    let r = worker.post_json(
        "/embed",
        &json!({"model": "all-minilm-l6-v2", "input": texts}),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let reference: HashMap<String, Vec<f64>> =
        texts.iter().cloned().zip(spin_vectors(&r.json())).collect();

    c.check(
        "the worker agrees with the kb component (cosine >= 0.999 each)",
        || {
            let mut lowest = 1.0f64;
            for batch in texts.chunks(8) {
                let r = host.post_json("/v1/embeddings", &json!({"input": batch}));
                assert_eq!(r.status, 200, "{}", r.describe());
                let component = openai_vectors(&r.json());
                let r = worker.post_json(
                    "/v1/embeddings",
                    &json!({"input": batch, "model": "all-MiniLM-L6-v2"}),
                );
                assert_eq!(r.status, 200, "{}", r.describe());
                let native = openai_vectors(&r.json());
                for (i, text) in batch.iter().enumerate() {
                    assert_eq!(native[i].len(), 384);
                    for (what, theirs) in [
                        ("component", &component[i]),
                        ("worker /embed", &reference[text]),
                    ] {
                        let cos = cosine(&native[i], theirs);
                        lowest = lowest.min(cos);
                        assert!(cos >= 0.999, "{text:?}: cosine {cos} against the {what}");
                    }
                }
            }
            eprintln!("[worker] lowest cosine worker vs component: {lowest:.7}");
        },
    );

    c.check(
        "the worker agrees with sentence-transformers' reference vectors",
        || {
            let fixture: Value = serde_json::from_str(
                &std::fs::read_to_string(
                    tessera_e2e::root().join("crates/embedder/tests/fixtures/reference.json"),
                )
                .unwrap(),
            )
            .unwrap();
            for s in fixture["sentences"].as_array().unwrap() {
                let text = s["text"].as_str().unwrap();
                if let Some(ours) = reference.get(text) {
                    let cos = cosine(ours, &floats(&s["embedding"]));
                    assert!(cos >= 0.999, "{text:?}: cosine {cos}");
                }
            }
        },
    );

    c.check(
        "concurrent requests each get their own vectors, in order",
        || {
            let threads: Vec<_> = (0..12)
                .map(|t| {
                    let texts = texts.clone();
                    let addr = worker.addr();
                    std::thread::spawn(move || {
                        let mut answers = Vec::new();
                        for round in 0..3 {
                            // A different selection and order for every request.
                            let n = 1 + (t * 5 + round * 3) % 9;
                            let picked: Vec<String> = (0..n)
                                .map(|i| texts[(t * 7 + round * 11 + i * 5) % texts.len()].clone())
                                .collect();
                            let (path, body) = if (t + round) % 2 == 0 {
                                (
                                    "/embed",
                                    json!({"model": "all-minilm-l6-v2", "input": picked}),
                                )
                            } else {
                                ("/v1/embeddings", json!({"input": picked}))
                            };
                            let r = Request::new("POST", path)
                                .header(EMBED_HEADER, format!("Bearer {TOKEN}"))
                                .json(&body)
                                .send(addr)
                                .unwrap();
                            answers.push((path, picked, r));
                        }
                        answers
                    })
                })
                .collect();
            let mut requests = 0;
            for thread in threads {
                for (path, picked, r) in thread.join().unwrap() {
                    requests += 1;
                    assert_eq!(r.status, 200, "{}", r.describe());
                    let got = if path == "/embed" {
                        spin_vectors(&r.json())
                    } else {
                        openai_vectors(&r.json())
                    };
                    assert_eq!(got.len(), picked.len());
                    for (text, vector) in picked.iter().zip(&got) {
                        let own = cosine(vector, &reference[text]);
                        assert!(own >= 0.9999, "{text:?}: cosine {own} with its own vector");
                        // Not another text's vector: its own is the best match of all.
                        let best = reference
                            .iter()
                            .max_by(|a, b| cosine(vector, a.1).total_cmp(&cosine(vector, b.1)))
                            .map(|(t, _)| t)
                            .unwrap();
                        assert!(
                            best == text || reference[best] == reference[text],
                            "{text:?} got {best:?}'s vector"
                        );
                    }
                }
            }
            assert_eq!(requests, 36);
            let metrics = worker.get("/metrics").text();
            let total = metrics
                .lines()
                .find_map(|l| l.strip_prefix("tessera_worker_embeddings_total "))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap();
            assert!(total >= 36, "{metrics}");
        },
    );

    c.check(
        "the host forwards llm.generate-embeddings to the worker (--llm-url)",
        || {
            let input = vec![texts[0].clone(), texts[5].clone()];
            let r = host.post_json(
                "/llm",
                &json!({"model": "all-minilm-l6-v2", "input": input}),
            );
            assert_eq!(r.status, 200, "{}", r.describe());
            let j = r.json();
            let got = spin_vectors(&j);
            assert_eq!(got.len(), 2);
            for (text, v) in input.iter().zip(&got) {
                assert!(cosine(v, &reference[text]) >= 0.9999, "{text:?}");
            }
            assert!(j["prompt_token_count"].as_u64().unwrap() > 4, "{j}");
            let r = host.post_json("/llm", &json!({"model": "llama2-chat", "input": ["x"]}));
            assert_eq!(
                r.status,
                404,
                "the worker's 404 is Spin's model-not-supported: {}",
                r.describe()
            );
            assert_eq!(r.json()["error"]["code"], "model_not_supported");
            let r = host.post_json("/llm", &json!({"model": "all-minilm-l6-v2", "input": [""]}));
            assert_eq!(
                r.status,
                400,
                "the worker's 400 is Spin's invalid-input: {}",
                r.describe()
            );
            assert!(
                r.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("empty_input"),
                "{}",
                r.describe()
            );
        },
    );

    c.check("inputs over 256 word pieces are truncated and reported, or refused on request", || {
        let long = long_passage(400);
        for (path, body) in [
            ("/embed", json!({"model": "all-minilm-l6-v2", "input": ["short", long]})),
            ("/v1/embeddings", json!({"input": ["short", long]})),
        ] {
            let r = worker.post_json(path, &body);
            assert_eq!(r.status, 200, "{}", r.describe());
            assert_eq!(r.json()["truncated"], json!([1]), "{path}");
        }
        let r = worker.post_json("/v1/embeddings", &json!({"input": "short"}));
        assert_eq!(r.json()["truncated"], json!([]));
        for (path, body) in [
            ("/embed", json!({"model": "all-minilm-l6-v2", "input": ["short", long], "truncate": false})),
            ("/v1/embeddings", json!({"input": ["short", long], "truncate": false})),
        ] {
            assert_error(&worker.post_json(path, &body), 413, "input_too_long", Some("input[1]"));
        }
    });

    c.check(
        "bad inputs get a JSON 4xx naming the field, on both endpoints",
        || {
            let spin = |input: Value| json!({"model": "all-minilm-l6-v2", "input": input});
            let too_many = vec!["x"; 513];
            let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
                ("/embed", spin(json!([])), 400, "empty_input", "input"),
                (
                    "/v1/embeddings",
                    json!({"input": []}),
                    400,
                    "empty_input",
                    "input",
                ),
                (
                    "/embed",
                    spin(json!(["ok", ""])),
                    400,
                    "empty_input",
                    "input[1]",
                ),
                (
                    "/v1/embeddings",
                    json!({"input": ""}),
                    400,
                    "empty_input",
                    "input[0]",
                ),
                (
                    "/embed",
                    spin(json!(too_many)),
                    400,
                    "too_many_inputs",
                    "input",
                ),
                (
                    "/v1/embeddings",
                    json!({"input": too_many}),
                    400,
                    "too_many_inputs",
                    "input",
                ),
                (
                    "/embed",
                    json!({"model": "text-embedding-3-small", "input": ["x"]}),
                    404,
                    "model_not_found",
                    "model",
                ),
                (
                    "/v1/embeddings",
                    json!({"model": "text-embedding-3-small", "input": "x"}),
                    404,
                    "model_not_found",
                    "model",
                ),
                (
                    "/embed",
                    json!({"input": ["x"]}),
                    400,
                    "missing_field",
                    "model",
                ),
                (
                    "/v1/embeddings",
                    json!({"input": 7}),
                    400,
                    "invalid_type",
                    "input",
                ),
                (
                    "/v1/embeddings",
                    json!({"input": "x", "dimensions": 1536}),
                    400,
                    "invalid_value",
                    "dimensions",
                ),
                (
                    "/v1/embeddings",
                    json!({"input": "x", "encoding_format": "int8"}),
                    400,
                    "invalid_value",
                    "encoding_format",
                ),
                (
                    "/embed",
                    json!({"model": "all-minilm-l6-v2", "input": ["x"], "stream": true}),
                    400,
                    "unknown_field",
                    "stream",
                ),
            ];
            for (path, body, status, code, field) in cases {
                assert_error(&worker.post_json(path, &body), status, code, Some(field));
            }
            for path in ["/embed", "/v1/embeddings"] {
                let body = json!({"model": "all-minilm-l6-v2", "input": ["x"]});
                assert_error(
                    &worker.post_json_with(path, &body, None),
                    401,
                    "unauthorized",
                    Some("authorization"),
                );
                assert_error(
                    &worker.post_json_with(path, &body, Some("wrong")),
                    401,
                    "unauthorized",
                    Some("authorization"),
                );
                let r = Request::new("POST", path)
                    .header(EMBED_HEADER, format!("Bearer {TOKEN}"))
                    .body(b"{\"input\": ")
                    .send(worker.addr())
                    .unwrap();
                assert_error(&r, 400, "invalid_json", None);
                let r = Request::new("GET", path).send(worker.addr()).unwrap();
                assert_error(&r, 405, "method_not_allowed", None);
            }
            assert_error(&worker.get("/nothing"), 404, "not_found", None);
            // Still healthy and answering after all of that.
            let r = worker.post_json("/v1/embeddings", &json!({"input": "still fine"}));
            assert_eq!(r.status, 200, "{}", r.describe());
        },
    );

    c.check("base64 encoding matches the float answer", || {
        let floats_answer = worker
            .post_json("/v1/embeddings", &json!({"input": "hedge ratio"}))
            .json();
        let r = worker.post_json(
            "/v1/embeddings",
            &json!({"input": "hedge ratio", "encoding_format": "base64"}),
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        let bytes = base64_decode(r.json()["data"][0]["embedding"].as_str().unwrap());
        let got: Vec<f32> = bytes
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        // JSON carries the shortest decimal of each f32: read back as f32, it is exact.
        let want: Vec<f32> = openai_vectors(&floats_answer)[0]
            .iter()
            .map(|&x| x as f32)
            .collect();
        assert_eq!(got, want);
    });

    c.check("/health and /metrics", || {
        let h = worker.get("/health");
        assert_eq!(h.status, 200, "{}", h.describe());
        let h = h.json();
        assert_eq!(
            (
                h["status"].as_str(),
                h["dimensions"].as_u64(),
                h["backend"].as_str()
            ),
            (Some("ok"), Some(384), Some("ort")),
            "the default backend is onnxruntime where `cargo xtask setup` fetched it: {h}"
        );
        let m = worker.get("/metrics");
        assert_eq!(m.status, 200);
        assert!(
            m.header("content-type").unwrap().starts_with("text/plain"),
            "{}",
            m.describe()
        );
        let text = m.text();
        for family in [
            "tessera_worker_queue_depth ",
            "tessera_worker_batch_size_bucket{le=\"+Inf\"} ",
            "tessera_worker_tokens_total ",
            "tessera_worker_tokens_per_second ",
            "tessera_worker_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"+Inf\"} ",
            "tessera_worker_requests_total{endpoint=\"/embed\",status=\"401\"} ",
        ] {
            assert!(text.contains(family), "{family:?} missing:\n{text}");
        }
    });

    c.finish(Some(&host));
    drop(worker);
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    // One slow inference thread, a queue of 8 inputs: 12 concurrent requests of 8 long
    // passages cannot all be queued.
    let worker = WorkerCommand::new()
        .args([
            "--threads",
            "1",
            "--max-queue",
            "8",
            "--max-inputs",
            "8",
            "--max-batch-size",
            "2",
            "--max-batch-tokens",
            "512",
        ])
        .start();
    let passages: Vec<String> = (0..8).map(|i| long_passage(150 + i)).collect();
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let (addr, passages) = (worker.addr(), passages.clone());
            std::thread::spawn(move || {
                Request::new("POST", "/embed")
                    .json(&json!({"model": "all-minilm-l6-v2", "input": passages}))
                    .send(addr)
                    .unwrap()
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let busy: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(
        !busy.is_empty(),
        "no request was refused: {:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in &busy {
        assert_error(r, 429, "queue_full", None);
        let retry: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{}", r.describe());
    }
    for r in answers.iter().filter(|r| r.status != 429) {
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(spin_vectors(&r.json()).len(), 8);
    }
    let metrics = worker.get("/metrics").text();
    assert!(
        metrics.contains(&format!(
            "tessera_worker_queue_rejections_total {}",
            busy.len()
        )),
        "{metrics}"
    );
    // Once the queue has drained, the same request is accepted.
    let r = Request::new("POST", "/embed")
        .json(&json!({"model": "all-minilm-l6-v2", "input": passages}))
        .send(worker.addr())
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
}

/// A markdown document of `sections` sections, large enough to be queued for the worker.
fn handbook(title: &str, sections: usize) -> String {
    let mut content = format!("# {title}\n\n");
    for i in 0..sections {
        content.push_str(&format!(
            "## {title} section {i}\n\nNote {i} on {title}: {}. The desk reviews limit {i} weekly.\n\n",
            long_passage(40 + i % 7)
        ));
    }
    content
}

fn ingest(host: &TestHost, title: &str, content: &str) -> Value {
    let r = Request::new("POST", "/v1/kb/documents")
        .header("x-tenant-id", "acme")
        .json(&json!({"title": title, "content": content}))
        .send(host.addr())
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.describe());
    let j = r.json();
    assert_eq!(j["status"], "pending", "{j}");
    assert!(j["chunks"].as_i64().unwrap() > 8, "{j}");
    j
}

fn document(host: &TestHost, id: &str) -> Value {
    let r = Request::new("GET", &format!("/v1/kb/documents/{id}"))
        .header("x-tenant-id", "acme")
        .send(host.addr())
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    r.json()
}

fn wait_for_status(host: &TestHost, id: &str, status: &str, timeout: Duration) -> Value {
    let started = Instant::now();
    loop {
        let doc = document(host, id);
        if doc["status"] == status {
            return doc;
        }
        assert!(
            started.elapsed() < timeout,
            "document {id} not {status} after {timeout:?}: {doc}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stored vectors of `document` agree with the kb component's embedding of the same
/// passage text (cosine >= 0.999).
fn assert_stored_vectors_agree(db: &TestDb, host: &TestHost, document: &str) {
    let rows = db
        .query(&format!(
            "SELECT heading, content, embedding::text FROM kb_chunks WHERE document_id = '{document}' ORDER BY ordinal LIMIT 4"
        ))
        .unwrap();
    let passages: Vec<String> = rows
        .iter()
        .map(|r| tessera_retrieval::passage_text(r.get::<_, &str>(0), r.get::<_, &str>(1)))
        .collect();
    let r = host.post_json("/v1/embeddings", &json!({"input": passages}));
    assert_eq!(r.status, 200, "{}", r.describe());
    let component = openai_vectors(&r.json());
    for (row, theirs) in rows.iter().zip(&component) {
        let stored: Vec<f64> = serde_json::from_str(row.get::<_, &str>(2)).unwrap();
        let cos = cosine(&stored, theirs);
        assert!(cos >= 0.999, "stored vector vs component: cosine {cos}");
    }
}

#[test]
fn large_documents_become_ready_through_the_worker() {
    let db = TestDb::new();
    let host = start_app(&db);
    let mut c = Checks::new("worker-drain");

    // A document whose first job already used up its attempts (three workers died holding it).
    let doomed = ingest(&host, "Doomed handbook", &handbook("Doomed handbook", 12));
    let doomed_id = doomed["id"].as_str().unwrap().to_string();
    db.execute(&format!(
        "UPDATE embedding_jobs SET status = 'running', attempts = 3, worker = 'dead-worker',
                leased_until = now() - interval '1 second'
         WHERE id = (SELECT min(id) FROM embedding_jobs WHERE document_id = '{doomed_id}')"
    ));

    // No polling to speak of: only NOTIFY can wake the worker for the next document.
    let worker = WorkerCommand::new()
        .database(&db)
        .args(["--poll-ms", "600000", "--max-attempts", "3"])
        .start();

    c.check("a job out of attempts fails, and fails its document", || {
        wait_for_status(&host, &doomed_id, "failed", Duration::from_secs(120));
        let rows = db
            .query(&format!("SELECT error FROM embedding_jobs WHERE document_id = '{doomed_id}' AND status = 'failed'"))
            .unwrap();
        assert_eq!(rows.len(), 1);
        let error: &str = rows[0].get(0);
        assert!(error.contains("gave up after 3 attempts") && error.contains("dead-worker"), "{error}");
    });

    c.check("a large document ingested through kb becomes ready (woken by NOTIFY)", || {
        let doc = ingest(&host, "Liquidity handbook", &handbook("Liquidity handbook", 30));
        let id = doc["id"].as_str().unwrap();
        let ready = wait_for_status(&host, id, "ready", Duration::from_secs(120));
        assert_eq!(ready["embedded_chunks"], ready["chunks"], "{ready}");
        assert_eq!(count(&db, &format!("SELECT count(*) FROM embedding_jobs WHERE document_id = '{id}' AND status <> 'done'")), 0);
        assert_eq!(count(&db, &format!("SELECT count(*) FROM embedding_jobs WHERE document_id = '{id}' AND attempts <> 1")), 0);
        assert_stored_vectors_agree(&db, &host, id);
        // Vector search finds it by a chunk's own words.
        let r = Request::new("POST", "/v1/kb/search")
            .header("x-tenant-id", "acme")
            .json(&json!({"query": "Liquidity handbook section 17 desk reviews limit 17", "mode": "vector", "k": 3}))
            .send(host.addr())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["results"][0]["document_id"], json!(id), "{}", r.describe());
    });

    c.finish(Some(&host));
    drop(worker);
}

#[test]
fn queue_drain_with_a_killed_worker_loses_and_duplicates_nothing() {
    let db = TestDb::new();
    let host = start_app(&db);
    let docs: Vec<String> = ["Margin handbook", "Hedging handbook"]
        .iter()
        .map(|t| {
            ingest(&host, t, &handbook(t, 24))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let chunks = count(&db, "SELECT count(*) FROM kb_chunks");
    // Every committed write of a vector, per chunk: a killed worker's open transaction
    // rolls its rows back with it.
    db.execute(
        "CREATE TABLE embedding_writes (chunk_id bigint NOT NULL);
         CREATE FUNCTION count_embedding_write() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO embedding_writes VALUES (NEW.id); RETURN NEW; END $$;
         CREATE TRIGGER count_embedding_write AFTER UPDATE OF embedding ON kb_chunks
           FOR EACH ROW WHEN (NEW.embedding IS NOT NULL) EXECUTE FUNCTION count_embedding_write();",
    );
    let worker = |id: &str, claim: &str| -> TestWorker {
        WorkerCommand::new()
            .database(&db)
            .args([
                "--worker-id",
                id,
                "--claim-size",
                claim,
                "--drain-tasks",
                "1",
                "--threads",
                "1",
            ])
            .args([
                "--max-batch-size",
                "1",
                "--lease-seconds",
                "3",
                "--poll-ms",
                "500",
            ])
            .start()
    };
    let mut b = worker("worker-b", "4");
    // Kill worker A while it holds claimed jobs (tried again if it finished its batch
    // between the look and the kill).
    let mut held = Vec::new();
    for attempt in 0..3 {
        let name = format!("worker-a{attempt}");
        let mut a = worker(&name, "8");
        let started = Instant::now();
        while count(
            &db,
            &format!(
                "SELECT count(*) FROM embedding_jobs WHERE worker = '{name}' AND status = 'running'"
            ),
        ) == 0
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{name} claimed nothing:\n{}",
                a.output()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        a.kill();
        held = db
            .query(&format!(
                "SELECT id FROM embedding_jobs WHERE worker = '{name}' AND status = 'running'"
            ))
            .unwrap()
            .iter()
            .map(|r| r.get::<_, i64>(0))
            .collect();
        if !held.is_empty() {
            eprintln!("[worker-kill] {name} killed holding {} jobs", held.len());
            break;
        }
    }
    assert!(!held.is_empty(), "no worker could be killed mid-batch");

    for id in &docs {
        wait_for_status(&host, id, "ready", Duration::from_secs(180));
    }
    assert!(b.is_running(), "{}", b.output());
    assert_eq!(
        count(&db, "SELECT count(*) FROM embedding_jobs"),
        chunks,
        "one job per chunk"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM embedding_jobs WHERE status <> 'done'"
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM kb_chunks WHERE embedding IS NULL"
        ),
        0
    );
    assert_eq!(
        count(&db, "SELECT count(DISTINCT chunk_id) FROM embedding_writes"),
        chunks,
        "every chunk written"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM (SELECT chunk_id FROM embedding_writes GROUP BY chunk_id HAVING count(*) > 1) d"
        ),
        0,
        "a chunk was written twice"
    );
    let ids = held
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM embedding_jobs WHERE id IN ({ids}) AND worker = 'worker-b' AND attempts >= 2"
            )
        ),
        held.len() as i64,
        "the killed worker's jobs were reclaimed after the lease and done by worker-b"
    );
    for id in &docs {
        assert_stored_vectors_agree(&db, &host, id);
    }
    b.stop();
}

/// Standard base64 (the test's own decoder, independent of the worker's encoder).
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

/// The queue drain over TLS (issue 16, item 6): the worker reaches a Postgres that accepts
/// only TLS (devdb's TLS front, as tests/tls.rs uses it) with `sslmode=verify-full` and the CA
/// file, as for a managed database, and drains a document to `ready`; an sslmode it does not
/// know is refused at start, naming the flag.
#[test]
fn the_drain_reaches_a_tls_only_postgres() {
    let out = std::process::Command::new(tessera_e2e::worker_bin())
        .args(["--database-url", "postgres://u@h/app?sslmode=sometimes"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("running tessera-worker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("--database-url")
            && stderr.contains("sslmode=sometimes"),
        "{stderr}"
    );

    let state = tessera_e2e::root().join(".tessera");
    let install = tessera_devdb::ensure_installed(&state).expect("the embedded PostgreSQL");
    // Under .tessera/, which the server's system user can traverse (a temp dir may not be).
    let dir = tessera_e2e::TempDir::under(&state.join("test-pg"), "worker-tls");
    let server = tessera_devdb::PgServer::start(&install, &dir.path().join("data"))
        .expect("a PostgreSQL of the test's own");
    server.ensure_database("postgres").expect("pgvector");
    let db = TestDb::on(&server.admin_url());
    let front = TlsFront::start(&server, &dir.path().join("tls"), Plaintext::Refused)
        .expect("the TLS front");
    // The host talks to the server directly: it migrates and queues the jobs; the worker
    // reaches them only through the front, which refuses plain connections.
    let host = start_app(&db);
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        front.url_for("localhost", db.name()),
        front.ca_file().display()
    );
    let worker = WorkerCommand::new().arg("--database-url").arg(url).start();
    let doc = ingest(&host, "TLS handbook", &handbook("TLS handbook", 12));
    let id = doc["id"].as_str().unwrap();
    wait_for_status(&host, id, "ready", Duration::from_secs(120));
    assert_stored_vectors_agree(&db, &host, id);
    let log = worker.output();
    assert!(
        log.contains("draining embedding_jobs") && log.contains("verify-full"),
        "{log}"
    );
    assert!(!log.contains("draining embedding_jobs failed"), "{log}");
}
