//! Small helpers for talking to Postgres through Spin's interface, which has no vector type:
//! vectors travel as text and are cast with `::vector`.

use spin_sdk::pg::{Connection, DbValue, ParameterValue, Row};
use tessera_spin_kit::{ApiError, db_error};

/// `[0.1,0.2,…]`, pgvector's text form.
pub fn vector_text(v: &[f32]) -> String {
    let mut out = String::with_capacity(v.len() * 11 + 2);
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&x.to_string());
    }
    out.push(']');
    out
}

pub async fn rows(
    db: &Connection,
    what: &str,
    sql: &str,
    params: Vec<ParameterValue>,
) -> Result<Vec<Row>, ApiError> {
    db.query(sql, params)
        .await
        .map_err(|e| db_error(what, e))?
        .collect()
        .await
        .map_err(|e| db_error(what, e))
}

pub async fn execute(
    db: &Connection,
    what: &str,
    sql: &str,
    params: Vec<ParameterValue>,
) -> Result<u64, ApiError> {
    db.execute(sql, params).await.map_err(|e| db_error(what, e))
}

/// Runs `BEGIN`; the caller ends with [`commit`] or [`rollback`]. The host rolls back a
/// connection dropped inside a transaction, so an early `?` return leaves nothing behind.
pub async fn begin(db: &Connection) -> Result<(), ApiError> {
    execute(db, "begin", "BEGIN", vec![]).await.map(|_| ())
}

pub async fn commit(db: &Connection) -> Result<(), ApiError> {
    execute(db, "commit", "COMMIT", vec![]).await.map(|_| ())
}

pub async fn rollback(db: &Connection) {
    let _ = db.execute("ROLLBACK", vec![]).await;
}

pub fn text(row: &Row, i: usize) -> String {
    match &row[i] {
        DbValue::Str(s) => s.clone(),
        _ => String::new(),
    }
}

pub fn int(row: &Row, i: usize) -> i64 {
    match &row[i] {
        DbValue::Int64(v) => *v,
        DbValue::Int32(v) => i64::from(*v),
        DbValue::Int16(v) => i64::from(*v),
        _ => 0,
    }
}

pub fn float(row: &Row, i: usize) -> f64 {
    match &row[i] {
        DbValue::Floating64(v) => *v,
        DbValue::Floating32(v) => f64::from(*v),
        _ => 0.0,
    }
}

pub fn json(row: &Row, i: usize) -> serde_json::Value {
    match &row[i] {
        DbValue::Jsonb(bytes) => serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null),
        DbValue::Str(s) => serde_json::from_str(s).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    }
}
