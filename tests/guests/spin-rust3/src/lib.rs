//! Test guest: a Spin app written with Spin's Rust SDK, as a user's app. spin-rust3 builds it
//! with spin-sdk 3.1.1 for wasm32-wasip1 (as Spin 3's `http-rust` template does: a core
//! module, made a component by the host); spin-rust2, spin-rust4 and spin-rust5 build this same
//! file with spin-sdk 2.2.0, 4.0.0 (both wasm32-wasip1) and 5.2.0 (wasm32-wasip2). `cargo
//! xtask setup` puts them in target/wasm32-wasip2/release/spin_rust{2,3,4,5}.wasm;
//! tests/spin_apps.rs runs them.
//!
//! Each route answers JSON; errors from Spin's interfaces as their Debug text.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::{http_component, key_value, sqlite, variables};
use std::collections::HashMap;

#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let query: HashMap<String, String> = form_urlencoded::parse(req.query().as_bytes())
        .into_owned()
        .collect();
    let route = req
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let body = match route {
        "variables" => variable(&query),
        "kv" => kv(&query),
        "sqlite" => sqlite_route(&query),
        "outbound" => outbound(&query).await,
        other => serde_json::json!({ "error": format!("no route {other}") }),
    };
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build())
}

fn variable(q: &HashMap<String, String>) -> serde_json::Value {
    match variables::get(q.get("name").map(String::as_str).unwrap_or("")) {
        Ok(value) => serde_json::json!({ "value": value }),
        Err(e) => serde_json::json!({ "error": format!("{e:?}") }),
    }
}

fn kv(q: &HashMap<String, String>) -> serde_json::Value {
    let label = q.get("label").map(String::as_str).unwrap_or("default");
    let run = || -> Result<serde_json::Value, key_value::Error> {
        let store = key_value::Store::open(label)?;
        store.set("rust3-key", b"rust3-value")?;
        let got = store.get("rust3-key")?.unwrap_or_default();
        let exists = store.exists("rust3-key")?;
        let keys = store.get_keys()?;
        store.delete("rust3-key")?;
        Ok(serde_json::json!({
            "get": String::from_utf8_lossy(&got),
            "exists": exists,
            "keys": keys,
            "exists_after_delete": store.exists("rust3-key")?,
        }))
    };
    run().unwrap_or_else(|e| serde_json::json!({ "error": format!("{e:?}") }))
}

fn sqlite_route(q: &HashMap<String, String>) -> serde_json::Value {
    use sqlite::Value as V;
    let db = q.get("db").map(String::as_str).unwrap_or("default");
    let run = || -> Result<serde_json::Value, sqlite::Error> {
        let conn = sqlite::Connection::open(db)?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rust3_notes (id INTEGER PRIMARY KEY, body TEXT, score REAL)",
            &[],
        )?;
        conn.execute("DELETE FROM rust3_notes", &[])?;
        conn.execute(
            "INSERT INTO rust3_notes (body, score) VALUES (?, ?), (?, ?)",
            &[
                V::Text("first".into()),
                V::Real(1.5),
                V::Text("second".into()),
                V::Null,
            ],
        )?;
        let result = conn.execute("SELECT body, score FROM rust3_notes ORDER BY id", &[])?;
        let rows: Vec<serde_json::Value> = result
            .rows
            .iter()
            .map(|row| {
                row.values
                    .iter()
                    .map(|v| match v {
                        V::Integer(i) => serde_json::json!(i),
                        V::Real(f) => serde_json::json!(f),
                        V::Text(t) => serde_json::json!(t),
                        V::Blob(b) => serde_json::json!(b),
                        V::Null => serde_json::Value::Null,
                    })
                    .collect()
            })
            .collect();
        Ok(serde_json::json!({ "columns": result.columns, "rows": rows }))
    };
    run().unwrap_or_else(|e| serde_json::json!({ "error": format!("{e:?}") }))
}

async fn outbound(q: &HashMap<String, String>) -> serde_json::Value {
    let url = q.get("url").cloned().unwrap_or_default();
    match spin_sdk::http::send::<_, Response>(Request::get(url)).await {
        Ok(response) => serde_json::json!({
            "status": response.status(),
            "body": String::from_utf8_lossy(response.body()),
        }),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}
