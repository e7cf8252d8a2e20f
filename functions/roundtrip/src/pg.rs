//! `POST /roundtrip/pg`: one value of each Postgres type Tessera uses, written with
//! parameters and read back.
//!
//! The body may override any value: `int32`, `int64`, `float64` (numbers), `text` (string),
//! `bool`, `jsonb` (any JSON), `uuid` (string), `timestamp` (unix seconds, written to a
//! `timestamptz` column). The NULL column is always written as SQL NULL. The answer is
//! `{"id", "sent": {…}, "values": {…}, "types": {…}, "mismatches": [...]}` where `values`
//! is what Postgres gave back, converted to JSON the same way as `sent`, and `types` names
//! the `db-value` variant each column came back as.

use serde_json::{Map, Value, json};
use spin_sdk::pg::{Connection, DbValue, ParameterValue};
use std::sync::atomic::{AtomicU64, Ordering};
use tessera_spin_kit::{ApiError, connect_across_tenants, db_error};

// The table is made by migrations/0018 (the application role runs no DDL).
const INSERT: &str = "INSERT INTO roundtrip_values
    (v_int32, v_int64, v_float64, v_text, v_bool, v_jsonb, v_uuid, v_timestamp, v_null)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";

const SELECT: &str = "SELECT v_int32, v_int64, v_float64, v_text, v_bool, v_jsonb, v_uuid,
    v_timestamp, v_null FROM roundtrip_values WHERE id = $1";

/// Column names in the answer, in `SELECT` order.
const FIELDS: [&str; 9] = [
    "int32",
    "int64",
    "float64",
    "text",
    "bool",
    "jsonb",
    "uuid",
    "timestamp",
    "null",
];

/// The values to write.
struct Values {
    int32: i32,
    int64: i64,
    float64: f64,
    text: String,
    boolean: bool,
    jsonb: Value,
    uuid: String,
    timestamp: i64,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            int32: i32::MIN,
            // Above 2^53: survives only if nothing on the way goes through f64.
            int64: 9_007_199_254_740_993,
            float64: 0.1 + 0.2,
            text: "héllo, 世界 ✓ 'single' \"double\" \\ \u{1F980}".to_string(),
            boolean: true,
            jsonb: json!({"a": [1, 2.5, {"b": null}], "s": "x", "t": true}),
            uuid: "0b5f8a8e-3c1d-4e2a-9f6b-7d8c9e0a1b2c".to_string(),
            timestamp: 1_700_000_000,
        }
    }
}

impl Values {
    fn from_body(body: &Value) -> Result<Self, ApiError> {
        let mut v = Values::default();
        if let Some(x) = present(body, "int32") {
            v.int32 = x
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| ApiError::invalid("int32", "`int32` must be a 32-bit integer"))?;
        }
        if let Some(x) = present(body, "int64") {
            v.int64 = x
                .as_i64()
                .ok_or_else(|| ApiError::invalid("int64", "`int64` must be a 64-bit integer"))?;
        }
        if let Some(x) = present(body, "float64") {
            v.float64 = x
                .as_f64()
                .ok_or_else(|| ApiError::invalid("float64", "`float64` must be a number"))?;
        }
        if let Some(x) = present(body, "text") {
            v.text = x
                .as_str()
                .ok_or_else(|| ApiError::invalid("text", "`text` must be a string"))?
                .to_string();
            if v.text.contains('\0') {
                return Err(ApiError::invalid(
                    "text",
                    "`text` must not contain NUL (Postgres text cannot hold it)",
                ));
            }
        }
        if let Some(x) = present(body, "bool") {
            v.boolean = x
                .as_bool()
                .ok_or_else(|| ApiError::invalid("bool", "`bool` must be true or false"))?;
        }
        if let Some(x) = body.get("jsonb") {
            // Any JSON, including null (a JSON null, not SQL NULL).
            v.jsonb = x.clone();
        }
        if let Some(x) = present(body, "uuid") {
            let s = x
                .as_str()
                .ok_or_else(|| ApiError::invalid("uuid", "`uuid` must be a string"))?;
            if !is_uuid(s) {
                return Err(ApiError::invalid(
                    "uuid",
                    format!("{s:?} is not a UUID (8-4-4-4-12 hex digits)"),
                ));
            }
            v.uuid = s.to_ascii_lowercase();
        }
        if let Some(x) = present(body, "timestamp") {
            v.timestamp = x
                .as_i64()
                .filter(|s| (-62_135_596_800..=253_402_300_799).contains(s))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "timestamp",
                        "`timestamp` must be whole unix seconds between years 1 and 9999",
                    )
                })?;
        }
        Ok(v)
    }

    fn params(&self) -> Vec<ParameterValue> {
        vec![
            ParameterValue::Int32(self.int32),
            ParameterValue::Int64(self.int64),
            ParameterValue::Floating64(self.float64),
            ParameterValue::Str(self.text.clone()),
            ParameterValue::Boolean(self.boolean),
            ParameterValue::Jsonb(self.jsonb.to_string().into_bytes()),
            ParameterValue::Uuid(self.uuid.clone()),
            // `timestamp(s64)` is Spin's parameter for timestamptz (chrono DateTime<Utc>);
            // `datetime(...)` would be a timestamp without time zone.
            ParameterValue::Timestamp(self.timestamp),
            ParameterValue::DbNull,
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "int32": self.int32,
            "int64": self.int64,
            "float64": self.float64,
            "text": self.text,
            "bool": self.boolean,
            "jsonb": self.jsonb,
            "uuid": self.uuid,
            "timestamp": self.timestamp,
            "null": null,
        })
    }
}

fn present<'a>(body: &'a Value, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub async fn handle(body: &Value) -> Result<Value, ApiError> {
    let values = Values::from_body(body)?;
    let db = connect_across_tenants().await?;
    roundtrip(&db, &values).await
}

async fn roundtrip(db: &Connection, values: &Values) -> Result<Value, ApiError> {
    let inserted = db
        .query(INSERT, values.params())
        .await
        .map_err(|e| db_error("insert", e))?
        .collect()
        .await
        .map_err(|e| db_error("insert", e))?;
    let id = match inserted.first().map(|row| &row[0]) {
        Some(DbValue::Int64(id)) => *id,
        other => {
            return Err(db_error(
                "insert",
                format!("RETURNING id gave {other:?}, expected an int64"),
            ));
        }
    };
    let rows = db
        .query(SELECT, vec![ParameterValue::Int64(id)])
        .await
        .map_err(|e| db_error("select", e))?
        .collect()
        .await
        .map_err(|e| db_error("select", e))?;
    // Leave nothing behind: the table is a scratch area.
    db.execute(
        "DELETE FROM roundtrip_values WHERE id = $1",
        vec![ParameterValue::Int64(id)],
    )
    .await
    .map_err(|e| db_error("delete", e))?;
    let row = rows
        .first()
        .ok_or_else(|| db_error("select", format!("row {id} was not found after insert")))?;

    let mut got = Map::new();
    let mut types = Map::new();
    for (i, field) in FIELDS.iter().enumerate() {
        let (kind, value) = to_json(&row[i]);
        got.insert(field.to_string(), value);
        types.insert(field.to_string(), json!(kind));
    }
    let got = Value::Object(got);
    let sent = values.to_json();
    let mismatches: Vec<&str> = FIELDS
        .iter()
        .copied()
        .filter(|f| sent[*f] != got[*f])
        .collect();
    let timestamp_utc = got["timestamp"].as_i64().map(rfc3339);
    Ok(json!({
        "id": id,
        "sent": sent,
        "values": got,
        "types": types,
        "timestamp_utc": timestamp_utc,
        "mismatches": mismatches,
    }))
}

/// A db-value as JSON, with the name of its variant. Date-times become unix seconds
/// (Spin gives timestamptz back as a UTC `datetime` tuple).
fn to_json(value: &DbValue) -> (&'static str, Value) {
    match value {
        DbValue::Boolean(b) => ("boolean", json!(b)),
        DbValue::Int8(n) => ("int8", json!(n)),
        DbValue::Int16(n) => ("int16", json!(n)),
        DbValue::Int32(n) => ("int32", json!(n)),
        DbValue::Int64(n) => ("int64", json!(n)),
        DbValue::Floating32(x) => ("floating32", json!(x)),
        DbValue::Floating64(x) => ("floating64", json!(x)),
        DbValue::Str(s) => ("str", json!(s)),
        DbValue::Binary(b) => ("binary", json!(b)),
        DbValue::Jsonb(bytes) => (
            "jsonb",
            serde_json::from_slice(bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(bytes))),
        ),
        DbValue::Uuid(s) => ("uuid", json!(s)),
        DbValue::Timestamp(secs) => ("timestamp", json!(secs)),
        DbValue::Datetime((y, mo, d, h, mi, s, ns)) => {
            let secs = days_from_civil(*y, *mo, *d) * 86_400
                + i64::from(*h) * 3600
                + i64::from(*mi) * 60
                + i64::from(*s);
            if *ns == 0 {
                ("datetime", json!(secs))
            } else {
                ("datetime", json!(secs as f64 + f64::from(*ns) / 1e9))
            }
        }
        DbValue::Decimal(s) => ("decimal", json!(s)),
        DbValue::DbNull => ("db-null", Value::Null),
        other => ("other", json!(format!("{other:?}"))),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A suffix that differs between calls (for scratch keys).
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The built-in values must come back unchanged.
pub async fn self_check() -> Value {
    let result = async {
        let db = connect_across_tenants().await?;
        roundtrip(&db, &Values::default()).await
    }
    .await;
    match result {
        Ok(answer) if answer["mismatches"] == json!([]) => json!({ "ok": true }),
        Ok(answer) => json!({
            "ok": false,
            "mismatches": answer["mismatches"],
            "sent": answer["sent"],
            "values": answer["values"],
        }),
        Err(err) => json!({ "ok": false, "error": err.to_json()["error"] }),
    }
}
