//! Spin's `llm.generate-embeddings` answered by the host itself: all-minilm-l6-v2 runs in
//! the host process from the model files `cargo xtask setup` prepared (no worker, no
//! network hop), only for components whose `ai_models` grant it, with the vectors of
//! sentence-transformers. Also: the repository's kb and picker take that path.

use serde_json::{Value, json};
use tessera_e2e::vectors::{cosine, floats};
use tessera_e2e::{Checks, HostCommand, TestDb};

/// The test guest that calls `llm.generate-embeddings` (tests/guests/llm-embed), once with
/// the model granted and once without, and no `--llm-url`.
const MANIFEST: &str = r#"spin_manifest_version = 2
[application]
name = "llm-local"

[[trigger.http]]
route = "/llm"
component = "granted"

[component.granted]
source = "WASM:llm-embed"
ai_models = ["all-minilm-l6-v2", "llama2-chat"]

[[trigger.http]]
route = "/denied"
component = "denied"

[component.denied]
source = "WASM:llm-embed"
"#;

/// sentence-transformers' vectors and token counts for the fixture's non-blank sentences.
fn reference() -> Vec<(String, Vec<f64>, u64)> {
    let path = tessera_e2e::root().join("crates/embedder/tests/fixtures/reference.json");
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("reference.json is JSON");
    fixture["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .filter(|s| !s["text"].as_str().unwrap_or("").trim().is_empty())
        .map(|s| {
            (
                s["text"].as_str().unwrap_or_default().to_string(),
                floats(&s["embedding"]),
                s["tokens"].as_u64().unwrap_or(0).min(256),
            )
        })
        .collect()
}

/// The message of a JSON error answer.
fn error_message(r: &tessera_e2e::Response) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn embed(
    host: &tessera_e2e::TestHost,
    path: &str,
    model: &str,
    input: &[&str],
) -> tessera_e2e::Response {
    host.post_json(path, &json!({ "model": model, "input": input }))
}

#[test]
fn the_host_runs_minilm_itself_for_components_granted_it() {
    let db = TestDb::new();
    let host = HostCommand::new(&db, MANIFEST).start();
    let mut c = Checks::new("llm-local");
    let reference = reference();

    c.check(
        "vectors of sentence-transformers (cosine >= 0.9999) and their token count, no worker",
        || {
            let texts: Vec<&str> = reference.iter().map(|(t, _, _)| t.as_str()).collect();
            let r = embed(&host, "/llm", "all-minilm-l6-v2", &texts);
            assert_eq!(r.status, 200, "{}", r.describe());
            let j = r.json();
            let vectors = j["embeddings"].as_array().expect("embeddings");
            assert_eq!(vectors.len(), texts.len());
            for ((text, expected, _), got) in reference.iter().zip(vectors) {
                let got = floats(got);
                assert_eq!(got.len(), 384);
                let cos = cosine(&got, expected);
                assert!(cos >= 0.9999, "{text:?}: cosine {cos}");
            }
            let tokens: u64 = reference.iter().map(|(_, _, n)| n).sum();
            assert_eq!(j["prompt_token_count"], tokens, "{j}");
        },
    );

    c.check(
        "a text's vector does not depend on the texts embedded with it",
        || {
            let alone = embed(
                &host,
                "/llm",
                "all-minilm-l6-v2",
                &["momentum and volatility"],
            );
            let among = embed(
                &host,
                "/llm",
                "all-minilm-l6-v2",
                &[
                    "a much longer text about liquidity, spreads, sector balance and beta",
                    "momentum and volatility",
                    "x",
                ],
            );
            assert_eq!(alone.status, 200, "{}", alone.describe());
            assert_eq!(among.status, 200, "{}", among.describe());
            assert_eq!(
                alone.json()["embeddings"][0],
                among.json()["embeddings"][1],
                "bit for bit"
            );
        },
    );

    c.check(
        "a component whose ai_models does not list the model is refused, as on Spin",
        || {
            let r = embed(&host, "/denied", "all-minilm-l6-v2", &["hello"]);
            assert_eq!(r.status, 400, "{}", r.describe());
            let message = error_message(&r);
            assert!(
                message.contains("does not have access to use 'all-minilm-l6-v2'")
                    && message.contains("ai_models"),
                "{message}"
            );
        },
    );

    c.check(
        "a granted model the host does not run, with no worker, is model-not-supported",
        || {
            let r = embed(&host, "/llm", "llama2-chat", &["hello"]);
            assert_eq!(r.status, 404, "{}", r.describe());
            assert_eq!(r.json()["error"]["code"], "model_not_supported");
        },
    );

    c.check("an empty text is invalid input naming its index", || {
        let r = embed(&host, "/llm", "all-minilm-l6-v2", &["fine", "  "]);
        assert_eq!(r.status, 400, "{}", r.describe());
        let message = error_message(&r);
        assert!(
            message.contains("empty_input") && message.contains("input[1]"),
            "{message}"
        );
    });

    c.check("no text, no vectors", || {
        let r = embed(&host, "/llm", "all-minilm-l6-v2", &[]);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json()["embeddings"], json!([]));
    });

    c.finish(Some(&host));
}

#[test]
fn with_no_local_models_the_host_has_no_embedding_model() {
    let db = TestDb::new();
    let host = HostCommand::new(&db, MANIFEST)
        .arg("--no-local-models")
        .start();
    let r = embed(&host, "/llm", "all-minilm-l6-v2", &["hello"]);
    assert_eq!(r.status, 502, "{}", r.describe());
    let message = error_message(&r);
    assert!(
        message.contains("no embedding model available") && message.contains("--llm-url"),
        "{message}"
    );
}

/// The repository's spin.toml grants the kb the model: its embeddings come from the host
/// and agree with sentence-transformers as closely as the component's own.
#[test]
fn the_kb_embeds_through_the_host() {
    let db = TestDb::new();
    let host = HostCommand::with_manifest_file(&db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start();
    let reference = reference();
    let texts: Vec<&str> = reference
        .iter()
        .map(|(t, _, _)| t.as_str())
        .take(8)
        .collect();
    let r = host.post_json("/v1/embeddings", &json!({ "input": texts }));
    assert_eq!(r.status, 200, "{}", r.describe());
    let j = r.json();
    for item in j["data"].as_array().expect("data") {
        let i = item["index"].as_u64().unwrap_or(u64::MAX) as usize;
        let cos = cosine(&floats(&item["embedding"]), &reference[i].1);
        assert!(cos >= 0.9999, "{:?}: cosine {cos}", reference[i].0);
    }
    let log = host.output();
    assert!(
        log.contains("llm.generate-embeddings runs all-minilm-l6-v2 in this process"),
        "{log}"
    );
    let metrics = host.get("/metrics").text();
    assert!(
        metrics.contains(
            "tessera_llm_embedding_texts_total{component=\"kb\",backend=\"host\",result=\"ok\"} 8\n"
        ),
        "the kb's 8 texts ran in the host: {metrics}"
    );
}
