//! `POST /roundtrip/vector`: `{"embedding": [384 numbers]}` written as text with
//! `$1::vector` into a `vector(384)` column and read back with `::text` (Spin's Postgres
//! interface has no vector type).

use serde_json::{Value, json};
use spin_sdk::pg::{Connection, DbValue, ParameterValue};
use tessera_spin_kit::{ApiError, connect_across_tenants, db_error};

pub const DIMS: usize = 384;

// The table is made by migrations/0018 (the application role runs no DDL).
pub async fn handle(body: &Value) -> Result<Value, ApiError> {
    let embedding = parse(body)?;
    let db = connect_across_tenants().await?;
    roundtrip(&db, &embedding).await
}

fn parse(body: &Value) -> Result<Vec<f32>, ApiError> {
    let items = match body.get("embedding") {
        None | Some(Value::Null) => return Err(ApiError::missing("embedding")),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid(
                "embedding",
                "`embedding` must be an array of numbers",
            ));
        }
    };
    if items.len() != DIMS {
        return Err(ApiError::invalid(
            "embedding",
            format!("`embedding` has {} numbers, expected {DIMS}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .map(|x| x as f32)
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    ApiError::invalid(
                        &format!("embedding[{i}]"),
                        "every element must be a finite number (float4 range)",
                    )
                })
        })
        .collect()
}

/// pgvector's text form: `[1,2.5,-0.125]`. `f32`'s `Display` is the shortest text that
/// parses back to the same float4, which is what pgvector stores.
fn to_text(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

fn from_text(text: &str) -> Option<Vec<f32>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    inner.split(',').map(|p| p.trim().parse().ok()).collect()
}

async fn roundtrip(db: &Connection, embedding: &[f32]) -> Result<Value, ApiError> {
    let sent = to_text(embedding);
    let rows = db
        .query(
            "INSERT INTO roundtrip_vectors (embedding) VALUES ($1::vector) RETURNING id",
            vec![ParameterValue::Str(sent.clone())],
        )
        .await
        .map_err(|e| db_error("insert", e))?
        .collect()
        .await
        .map_err(|e| db_error("insert", e))?;
    let id = match rows.first().map(|row| &row[0]) {
        Some(DbValue::Int64(id)) => *id,
        other => {
            return Err(db_error(
                "insert",
                format!("RETURNING id gave {other:?}, expected an int64"),
            ));
        }
    };
    let rows = db
        .query(
            "SELECT embedding::text, vector_dims(embedding) FROM roundtrip_vectors WHERE id = $1",
            vec![ParameterValue::Int64(id)],
        )
        .await
        .map_err(|e| db_error("select", e))?
        .collect()
        .await
        .map_err(|e| db_error("select", e))?;
    db.execute(
        "DELETE FROM roundtrip_vectors WHERE id = $1",
        vec![ParameterValue::Int64(id)],
    )
    .await
    .map_err(|e| db_error("delete", e))?;
    let row = rows
        .first()
        .ok_or_else(|| db_error("select", format!("row {id} was not found after insert")))?;
    let text = match &row[0] {
        DbValue::Str(s) => s.clone(),
        other => return Err(db_error("select", format!("::text gave {other:?}"))),
    };
    let dims = match &row[1] {
        DbValue::Int32(n) => i64::from(*n),
        DbValue::Int64(n) => *n,
        other => return Err(db_error("select", format!("vector_dims gave {other:?}"))),
    };
    let back = from_text(&text)
        .ok_or_else(|| db_error("select", format!("cannot parse vector text {text:?}")))?;
    let matches = back == embedding;
    Ok(json!({
        "id": id,
        "dims": dims,
        "text": text,
        "embedding": back,
        "matches": matches,
    }))
}

/// A fixed vector with values that float4 holds exactly must come back unchanged.
pub async fn self_check() -> Value {
    let embedding: Vec<f32> = (0..DIMS).map(|i| (i as f32 - 192.0) / 256.0).collect();
    let result = async {
        let db = connect_across_tenants().await?;
        roundtrip(&db, &embedding).await
    }
    .await;
    match result {
        Ok(answer) if answer["matches"] == json!(true) && answer["dims"] == json!(DIMS) => {
            json!({ "ok": true })
        }
        Ok(answer) => json!({ "ok": false, "dims": answer["dims"], "text": answer["text"] }),
        Err(err) => json!({ "ok": false, "error": err.to_json()["error"] }),
    }
}
