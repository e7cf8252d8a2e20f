//! Postgres through Spin's interface, as every component uses it: statements with the
//! failing step named in the error, transactions on one connection, typed reads of the
//! columns (queries cast to text, int8, float8, bool or jsonb), pgvector's text form and ids
//! from paths.

use spin_sdk::pg::{Connection, DbValue, ParameterValue, Row};

use crate::ApiError;

pub use spin_sdk::pg::ParameterValue as P;

/// A failed statement as the caller sees it: 503 when the database cannot be reached (the
/// host answers `connection-failed` for a server that is down, a pool with no connection
/// free in time, or a connection that closed), 400 for a value Postgres refuses (SQLSTATE
/// class 22), otherwise 500. The database's own words (SQLSTATE, message, SQL) go to the
/// log, never into the answer.
pub fn pg_error(what: &str, e: spin_sdk::pg::Error) -> ApiError {
    use spin_sdk::pg::{Error, PgError, QueryError};
    let detail = format!("{what}: {e}");
    match &e {
        Error::PgError(PgError::ConnectionFailed(_)) => ApiError::database_unavailable(detail),
        Error::PgError(PgError::QueryFailed(QueryError::DbError(db))) => {
            tessera_api::db_failure(Some(&db.code), detail)
        }
        _ => tessera_api::db_failure(None, detail),
    }
}

pub async fn rows(
    db: &Connection,
    what: &str,
    sql: &str,
    params: Vec<ParameterValue>,
) -> Result<Vec<Row>, ApiError> {
    db.query(sql, params)
        .await
        .map_err(|e| pg_error(what, e))?
        .collect()
        .await
        .map_err(|e| pg_error(what, e))
}

pub async fn one(
    db: &Connection,
    what: &str,
    sql: &str,
    params: Vec<ParameterValue>,
) -> Result<Option<Row>, ApiError> {
    Ok(rows(db, what, sql, params).await?.into_iter().next())
}

pub async fn execute(
    db: &Connection,
    what: &str,
    sql: &str,
    params: Vec<ParameterValue>,
) -> Result<u64, ApiError> {
    db.execute(sql, params).await.map_err(|e| pg_error(what, e))
}

/// `BEGIN`; the host rolls back a connection dropped inside a transaction.
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
    opt_text(row, i).unwrap_or_default()
}

pub fn opt_text(row: &Row, i: usize) -> Option<String> {
    match &row[i] {
        DbValue::Str(s) => Some(s.clone()),
        _ => None,
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

pub fn opt_int(row: &Row, i: usize) -> Option<i64> {
    match &row[i] {
        DbValue::DbNull => None,
        _ => Some(int(row, i)),
    }
}

pub fn float(row: &Row, i: usize) -> f64 {
    opt_float(row, i).unwrap_or(0.0)
}

pub fn opt_float(row: &Row, i: usize) -> Option<f64> {
    match &row[i] {
        DbValue::Floating64(v) => Some(*v),
        DbValue::Floating32(v) => Some(f64::from(*v)),
        _ => None,
    }
}

pub fn boolean(row: &Row, i: usize) -> bool {
    matches!(&row[i], DbValue::Boolean(true))
}

pub fn json(row: &Row, i: usize) -> serde_json::Value {
    match &row[i] {
        DbValue::Jsonb(bytes) => serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null),
        DbValue::Str(s) => serde_json::from_str(s).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    }
}

pub fn int_array(row: &Row, i: usize) -> Vec<i64> {
    match &row[i] {
        DbValue::ArrayInt32(v) => v.iter().flatten().map(|x| i64::from(*x)).collect(),
        DbValue::ArrayInt64(v) => v.iter().flatten().copied().collect(),
        _ => Vec::new(),
    }
}

pub fn jsonb(v: &serde_json::Value) -> ParameterValue {
    ParameterValue::Jsonb(v.to_string().into_bytes())
}

pub fn opt_str(v: Option<&str>) -> ParameterValue {
    match v {
        Some(s) => ParameterValue::Str(s.to_string()),
        None => ParameterValue::DbNull,
    }
}

/// `[0.1,0.2,…]`, pgvector's text form.
pub fn vector_text(v: &[f32]) -> String {
    // One allocation: this runs for every chunk ingested and every query.
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

/// Parses pgvector's text form.
pub fn parse_vector(s: &str) -> Option<Vec<f32>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    inner.split(',').map(|x| x.trim().parse().ok()).collect()
}

/// A UUID from a path segment or a body, or 400 `invalid_id` naming `field`.
pub use tessera_api::parse_uuid;
