//! The knowledge base, reached with Spin self requests (`http://self/...`): the kb
//! component already holds the embedding model, so this component loads none.

use bytes::Bytes;
use serde_json::{Value, json};
use spin_sdk::http::FullBody;
use spin_sdk::http::body::IncomingBodyExt;
use tessera_feedback::curated;
use tessera_progressive::Source;
use tessera_spin_kit::ApiError;
use tessera_spin_kit::auth::Forward;
use tessera_spin_kit::outbound::send;

/// Chunks retrieved per turn.
pub const K: usize = 6;

async fn post(path: &str, who: &Forward, body: &Value) -> Result<Value, ApiError> {
    let mut req = http::Request::post(format!("http://self{path}"))
        .header("content-type", "application/json");
    // The caller's own key (or trusted headers): the kb authenticates it again, so a self
    // request is exactly as strong as the caller's.
    for (name, value) in who.headers() {
        req = req.header(name, value);
    }
    let req = req
        .body(FullBody::new(Bytes::from(body.to_string())))
        .map_err(|e| ApiError::dependency("kb_unavailable", e.to_string()))?;
    let resp = send(req)
        .await
        .map_err(|e| ApiError::dependency("kb_unavailable", format!("{path}: {e:?}")))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .bytes()
        .await
        .map_err(|e| ApiError::dependency("kb_unavailable", format!("{path}: {e:?}")))?;
    if !status.is_success() {
        return Err(ApiError::dependency(
            "kb_unavailable",
            format!(
                "{path} answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::dependency("kb_unavailable", format!("{path}: {e}")))
}

/// all-MiniLM-L6-v2 embeddings of `texts` (384-d, normalised).
pub async fn embed(who: &Forward, texts: &[String]) -> Result<Vec<Vec<f32>>, ApiError> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    // The model reads 256 word pieces; longer text only costs time.
    let inputs: Vec<String> = texts
        .iter()
        .map(|t| t.chars().take(2_000).collect())
        .collect();
    let v = post("/v1/embeddings", who, &json!({ "input": inputs })).await?;
    let data = v["data"].as_array().cloned().unwrap_or_default();
    let vectors: Vec<Vec<f32>> = data
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_f64())
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    if vectors.len() != texts.len() {
        return Err(ApiError::dependency(
            "kb_unavailable",
            "the embeddings answer has the wrong number of vectors",
        ));
    }
    Ok(vectors)
}

/// Hybrid search; the results numbered 1..=k as the turn's sources. Operator-approved
/// answers (scope `curated`, promoted from feedback) among them that are about the question
/// come first (tessera_feedback::curated). One search finds both, with the same k as
/// without curation, so a knowledge base with no curated answers retrieves exactly as before.
///
/// `embedding`, the question's embedding when the turn has it, spares the kb embedding the
/// query a second time (~20 ms of a local-mode turn).
pub async fn search(
    who: &Forward,
    query: &str,
    scopes: &[String],
    embedding: Option<&[f32]>,
) -> Result<Vec<Source>, ApiError> {
    let mut body =
        json!({ "query": query.chars().take(1_000).collect::<String>(), "k": K, "mode": "hybrid" });
    if let Some(e) = embedding {
        body["embedding"] = json!(e);
    }
    if !scopes.is_empty() {
        let mut scopes = scopes.to_vec();
        if !scopes.iter().any(|s| s == curated::SCOPE) {
            scopes.push(curated::SCOPE.into());
        }
        body["scope"] = json!(scopes);
    }
    let v = post("/v1/kb/search", who, &body).await?;
    let results = v["results"].as_array().cloned().unwrap_or_default();
    let approved: Vec<(Value, Option<f32>)> = results
        .iter()
        .filter(|r| r["scope"] == curated::SCOPE)
        .map(|r| {
            (
                r.clone(),
                r["matched"]["vector"]["score"].as_f64().map(|s| s as f32),
            )
        })
        .collect();
    Ok(
        curated::curated_first(approved, results, |r| r["chunk_id"].as_i64(), K)
            .iter()
            .enumerate()
            .map(|(i, r)| Source {
                n: i + 1,
                chunk_id: r["chunk_id"].as_i64().unwrap_or_default(),
                document_id: r["document_id"].as_str().unwrap_or_default().to_string(),
                title: r["title"].as_str().unwrap_or_default().to_string(),
                heading: r["heading"].as_str().unwrap_or_default().to_string(),
                content: r["content"].as_str().unwrap_or_default().to_string(),
                score: r["score"].as_f64().unwrap_or_default() as f32,
            })
            .collect(),
    )
}

/// Sources for a question with several written-out parts: one search per part (each with
/// its own embedding), merged in turns — the best of each part first — without repeats, up
/// to the same k as one search. One search for the whole question lets the part with the
/// most matching text crowd out the others.
pub async fn search_parts(
    who: &Forward,
    parts: &[(String, Vec<f32>)],
    scopes: &[String],
) -> Result<Vec<Source>, ApiError> {
    let mut per_part = Vec::with_capacity(parts.len());
    for (text, embedding) in parts {
        per_part.push(search(who, text, scopes, Some(embedding)).await?);
    }
    Ok(tessera_progressive::sources::interleave(per_part, K))
}
