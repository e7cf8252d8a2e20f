//! `POST /roundtrip/kv`: one operation on the `default` key-value store.

use serde_json::{Value, json};
use spin_sdk::key_value::Store;
use tessera_spin_kit::ApiError;

/// Longest key accepted, in bytes (Spin's own stores accept far more; this is input hygiene).
const MAX_KEY_BYTES: usize = 1024;

enum Op {
    Set(String),
    Get,
    Delete,
    Exists,
}

pub async fn handle(body: &Value) -> Result<Value, ApiError> {
    let (op, key) = parse(body)?;
    let store = open().await?;
    run(&store, op, &key).await
}

fn parse(body: &Value) -> Result<(Op, String), ApiError> {
    let op = match body.get("op") {
        None | Some(Value::Null) => return Err(ApiError::missing("op")),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::invalid("op", "`op` must be a string")),
    };
    let key = match body.get("key") {
        None | Some(Value::Null) => return Err(ApiError::missing("key")),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(ApiError::invalid("key", "`key` must not be empty"));
        }
        Some(Value::String(s)) if s.len() > MAX_KEY_BYTES => {
            return Err(ApiError::invalid(
                "key",
                format!("`key` is longer than {MAX_KEY_BYTES} bytes"),
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::invalid("key", "`key` must be a string")),
    };
    let op = match op {
        "set" => match body.get("value") {
            None | Some(Value::Null) => return Err(ApiError::missing("value")),
            Some(Value::String(v)) => Op::Set(v.clone()),
            Some(_) => return Err(ApiError::invalid("value", "`value` must be a string")),
        },
        "get" => Op::Get,
        "delete" => Op::Delete,
        "exists" => Op::Exists,
        other => {
            return Err(ApiError::invalid(
                "op",
                format!("unknown op {other:?}; expected one of set, get, delete, exists"),
            ));
        }
    };
    Ok((op, key))
}

async fn open() -> Result<Store, ApiError> {
    Store::open_default()
        .await
        .map_err(|e| ApiError::dependency("kv_error", format!("open store \"default\": {e}")))
}

async fn run(store: &Store, op: Op, key: &str) -> Result<Value, ApiError> {
    let kv_err = |what: &str, e: spin_sdk::key_value::Error| {
        ApiError::dependency("kv_error", format!("{what} {key:?}: {e}"))
    };
    Ok(match op {
        Op::Set(value) => {
            store
                .set(key, value.as_bytes())
                .await
                .map_err(|e| kv_err("set", e))?;
            json!({ "op": "set", "key": key, "ok": true })
        }
        Op::Get => {
            let value = store.get(key).await.map_err(|e| kv_err("get", e))?;
            json!({
                "op": "get",
                "key": key,
                "found": value.is_some(),
                "value": value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            })
        }
        Op::Delete => {
            store.delete(key).await.map_err(|e| kv_err("delete", e))?;
            json!({ "op": "delete", "key": key, "ok": true })
        }
        Op::Exists => {
            let exists = store.exists(key).await.map_err(|e| kv_err("exists", e))?;
            json!({ "op": "exists", "key": key, "exists": exists })
        }
    })
}

/// set → get → exists → delete → exists on a fresh key.
pub async fn self_check() -> Value {
    match self_check_inner().await {
        Ok(()) => json!({ "ok": true }),
        Err(err) => json!({ "ok": false, "error": err.to_json()["error"] }),
    }
}

async fn self_check_inner() -> Result<(), ApiError> {
    let store = open().await?;
    let key = format!("roundtrip-check-{}", crate::pg::unique_suffix());
    let value = "round trip ✓";
    let fail = |message: String| ApiError::dependency("kv_mismatch", message);
    run(&store, Op::Set(value.to_string()), &key).await?;
    let got = run(&store, Op::Get, &key).await?;
    if got["value"] != json!(value) {
        return Err(fail(format!("get returned {got}, expected {value:?}")));
    }
    if run(&store, Op::Exists, &key).await?["exists"] != json!(true) {
        return Err(fail("exists is false after set".into()));
    }
    run(&store, Op::Delete, &key).await?;
    if run(&store, Op::Exists, &key).await?["exists"] != json!(false) {
        return Err(fail("exists is true after delete".into()));
    }
    Ok(())
}
