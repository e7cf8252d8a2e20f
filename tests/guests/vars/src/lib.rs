//! `GET /vars?name=a&name=b` answers `{"a": "value", "b": {"error": "…"}}`: each named
//! Spin variable's value, or the error the host gave for it.

use serde_json::{Map, Value, json};
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let mut out = Map::new();
    for (key, value) in query_pairs(req.uri().query().unwrap_or("")) {
        if key != "name" {
            continue;
        }
        let answer = match spin_sdk::variables::get(&value).await {
            Ok(v) => Value::String(v),
            Err(e) => json!({ "error": e.to_string(), "kind": kind(&e) }),
        };
        out.insert(value, answer);
    }
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Value::Object(out).to_string())
}

fn kind(e: &spin_sdk::variables::Error) -> &'static str {
    use spin_sdk::variables::Error;
    match e {
        Error::InvalidName(_) => "invalid-name",
        Error::Undefined(_) => "undefined",
        Error::Provider(_) => "provider",
        Error::Other(_) => "other",
    }
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
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
