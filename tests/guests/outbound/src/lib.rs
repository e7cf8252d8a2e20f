//! `GET /outbound?url=…` sends a GET to `url` through spin-sdk's outbound HTTP and answers
//! `200 {"status", "body"}` with what came back, or `502 {"error": "…"}` with the error the
//! guest saw (for example when the host denies the destination).

use serde_json::json;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let url = query_pairs(req.uri().query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v);
    let (status, body) = match url {
        None => (
            400,
            json!({"error": {"code": "missing_field", "message": "query parameter `url` is required", "field": "url"}}),
        ),
        Some(url) => match fetch(&url).await {
            Ok((status, body)) => (200, json!({ "status": status, "body": body })),
            Err(error) => (502, json!({ "error": error })),
        },
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
}

async fn fetch(url: &str) -> Result<(u16, String), String> {
    let response = spin_sdk::http::get(url)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .bytes()
        .await
        .map_err(|e| format!("reading the response body: {e:?}"))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
