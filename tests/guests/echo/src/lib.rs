//! Answers with JSON describing the request it saw:
//! `{"method", "path", "query", "headers": {name: value}, "body_len"}`. Header names are
//! lowercase; repeated headers are joined with ", ". With `?file=/abs/path` it also returns
//! that file's text as `file` (or `file_error`), to test `files` mounts.

use serde_json::{Map, Value, json};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let file = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("file=")))
        .map(|path| match std::fs::read_to_string(path) {
            Ok(text) => json!({ "file": text }),
            Err(e) => json!({ "file_error": e.to_string() }),
        });
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let (status, body) = match req.into_body().bytes().await {
        Ok(bytes) => {
            let mut body = json!({
                "method": method,
                "path": path,
                "query": query,
                "headers": headers,
                "body_len": bytes.len(),
            });
            if let (Some(Value::Object(extra)), Value::Object(map)) = (file, &mut body) {
                map.extend(extra);
            }
            (200, body)
        }
        Err(e) => (
            400,
            json!({"error": {"code": "body_unreadable", "message": format!("{e:?}")}}),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
}
