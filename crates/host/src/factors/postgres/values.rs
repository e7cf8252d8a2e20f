//! Conversions between Spin's Postgres values and tokio-postgres.
//!
//! Parameters are declared to the server with the type of the value the guest sent (a
//! string is `text`, an int32 is `int4`, …) so the server applies its own casts: a vector
//! sent as a string with `$1::vector` works, as does an int32 compared with a bigint
//! column. A NULL has no type of its own; the server infers it.

use crate::bindings::spin::postgres::postgres::{
    Column, DbDataType, DbError, DbValue, Error, Interval, ParameterValue, QueryError,
    RangeBoundKind, Row,
};
use bytes::BytesMut;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use deadpool_postgres::ClientWrapper;
use postgres_types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use rust_decimal::Decimal;
use std::error::Error as StdError;
use tokio_postgres::Statement;

pub type Arg = Box<dyn ToSql + Sync + Send>;

pub fn as_refs(args: &[Arg]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Prepares `statement` with parameter types taken from `params` and converts the values.
///
/// Statements are prepared once per pooled connection and kept (deadpool's statement
/// cache): preparing is a round trip of its own, so a cached statement halves the round
/// trips of every repeated query.
pub async fn prepare(
    client: &ClientWrapper,
    statement: &str,
    params: &[ParameterValue],
) -> Result<(Statement, Vec<Arg>), Error> {
    let mut types = Vec::with_capacity(params.len());
    let mut args = Vec::with_capacity(params.len());
    for (i, p) in params.iter().enumerate() {
        let (arg, ty) = to_arg(p).map_err(|m| Error::BadParameter(format!("${}: {m}", i + 1)))?;
        types.push(ty);
        args.push(arg);
    }
    let stmt = if types.iter().all(Option::is_some) {
        let types: Vec<Type> = types.into_iter().flatten().collect();
        client.prepare_typed_cached(statement, &types).await
    } else {
        // Let the server infer the NULLs' types, then pin the others to what was sent.
        let inferred = client
            .prepare_cached(statement)
            .await
            .map_err(query_failed)?;
        let merged: Vec<Type> = types
            .into_iter()
            .zip(inferred.params())
            .map(|(sent, inferred)| sent.unwrap_or_else(|| inferred.clone()))
            .collect();
        if merged.as_slice() == inferred.params() {
            return Ok((inferred, args));
        }
        client.prepare_typed_cached(statement, &merged).await
    }
    .map_err(query_failed)?;
    Ok((stmt, args))
}

fn to_arg(p: &ParameterValue) -> Result<(Arg, Option<Type>), String> {
    use ParameterValue as P;
    Ok(match p {
        P::Boolean(v) => (Box::new(*v), Some(Type::BOOL)),
        P::Int8(v) => (Box::new(i16::from(*v)), Some(Type::INT2)),
        P::Int16(v) => (Box::new(*v), Some(Type::INT2)),
        P::Int32(v) => (Box::new(*v), Some(Type::INT4)),
        P::Int64(v) => (Box::new(*v), Some(Type::INT8)),
        P::Floating32(v) => (Box::new(*v), Some(Type::FLOAT4)),
        P::Floating64(v) => (Box::new(*v), Some(Type::FLOAT8)),
        P::Str(v) => (Box::new(v.clone()), Some(Type::TEXT)),
        P::Binary(v) => (Box::new(v.clone()), Some(Type::BYTEA)),
        P::Date((y, m, d)) => (Box::new(date(*y, *m, *d)?), Some(Type::DATE)),
        P::Time((h, mi, s, ns)) => (Box::new(time(*h, *mi, *s, *ns)?), Some(Type::TIME)),
        P::Datetime((y, mo, d, h, mi, s, ns)) => (
            Box::new(NaiveDateTime::new(
                date(*y, *mo, *d)?,
                time(*h, *mi, *s, *ns)?,
            )),
            Some(Type::TIMESTAMP),
        ),
        P::Timestamp(secs) => {
            let t = chrono::DateTime::from_timestamp(*secs, 0)
                .ok_or_else(|| format!("timestamp {secs} is out of range"))?;
            (Box::new(t), Some(Type::TIMESTAMPTZ))
        }
        P::Uuid(v) => {
            let u = uuid::Uuid::parse_str(v).map_err(|e| format!("invalid uuid {v:?}: {e}"))?;
            (Box::new(u), Some(Type::UUID))
        }
        P::Jsonb(bytes) => {
            let v: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
            (Box::new(v), Some(Type::JSONB))
        }
        P::Decimal(v) => (Box::new(decimal(v)?), Some(Type::NUMERIC)),
        P::ArrayInt32(v) => (Box::new(v.clone()), Some(Type::INT4_ARRAY)),
        P::ArrayInt64(v) => (Box::new(v.clone()), Some(Type::INT8_ARRAY)),
        P::ArrayStr(v) => (Box::new(v.clone()), Some(Type::TEXT_ARRAY)),
        P::ArrayDecimal(v) => {
            let v = v
                .iter()
                .map(|d| d.as_deref().map(decimal).transpose())
                .collect::<Result<Vec<Option<Decimal>>, String>>()?;
            (Box::new(v), Some(Type::NUMERIC_ARRAY))
        }
        P::Interval(i) => (Box::new(PgInterval(*i)), Some(Type::INTERVAL)),
        P::RangeInt32((lower, upper)) => (
            Box::new(PgRange {
                lower: *lower,
                upper: *upper,
            }),
            Some(Type::INT4_RANGE),
        ),
        P::RangeInt64((lower, upper)) => (
            Box::new(PgRange {
                lower: *lower,
                upper: *upper,
            }),
            Some(Type::INT8_RANGE),
        ),
        P::RangeDecimal((lower, upper)) => {
            let bound = |b: &Option<(String, RangeBoundKind)>| {
                b.as_ref()
                    .map(|(v, kind)| decimal(v).map(|d| (d, *kind)))
                    .transpose()
            };
            (
                Box::new(PgRange {
                    lower: bound(lower)?,
                    upper: bound(upper)?,
                }),
                Some(Type::NUM_RANGE),
            )
        }
        P::DbNull => (Box::new(Null), None),
    })
}

fn date(y: i32, m: u8, d: u8) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(y, m.into(), d.into())
        .ok_or_else(|| format!("invalid date {y}-{m}-{d}"))
}

fn time(h: u8, m: u8, s: u8, ns: u32) -> Result<NaiveTime, String> {
    NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns)
        .ok_or_else(|| format!("invalid time {h}:{m}:{s}.{ns}"))
}

fn decimal(v: &str) -> Result<Decimal, String> {
    v.parse::<Decimal>()
        .map_err(|e| format!("invalid decimal {v:?}: {e}"))
}

pub fn columns(stmt: &Statement) -> Vec<Column> {
    stmt.columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            data_type: data_type(c.type_()),
        })
        .collect()
}

fn data_type(t: &Type) -> DbDataType {
    match *t {
        Type::BOOL => DbDataType::Boolean,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DbDataType::Str,
        Type::BYTEA => DbDataType::Binary,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        Type::UUID => DbDataType::Uuid,
        Type::JSONB | Type::JSON => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => DbDataType::ArrayStr,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::INTERVAL => DbDataType::Interval,
        Type::INT4_RANGE => DbDataType::RangeInt32,
        Type::INT8_RANGE => DbDataType::RangeInt64,
        Type::NUM_RANGE => DbDataType::RangeDecimal,
        _ => DbDataType::Other(t.name().to_string()),
    }
}

pub fn row(row: &tokio_postgres::Row) -> Result<Row, Error> {
    (0..row.len())
        .map(|i| value(row, i))
        .collect::<Result<Vec<_>, _>>()
}

fn value(row: &tokio_postgres::Row, i: usize) -> Result<DbValue, Error> {
    fn get<'a, T: FromSql<'a>>(row: &'a tokio_postgres::Row, i: usize) -> Result<Option<T>, Error> {
        row.try_get::<_, Option<T>>(i).map_err(|e| {
            Error::ValueConversionFailed(format!("column {}: {e}", row.columns()[i].name()))
        })
    }
    let t = row.columns()[i].type_().clone();
    let v = match t {
        Type::BOOL => get::<bool>(row, i)?.map(DbValue::Boolean),
        Type::INT2 => get::<i16>(row, i)?.map(DbValue::Int16),
        Type::INT4 => get::<i32>(row, i)?.map(DbValue::Int32),
        Type::INT8 => get::<i64>(row, i)?.map(DbValue::Int64),
        Type::FLOAT4 => get::<f32>(row, i)?.map(DbValue::Floating32),
        Type::FLOAT8 => get::<f64>(row, i)?.map(DbValue::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            get::<String>(row, i)?.map(DbValue::Str)
        }
        Type::BYTEA => get::<Vec<u8>>(row, i)?.map(DbValue::Binary),
        Type::DATE => get::<NaiveDate>(row, i)?
            .map(|d| DbValue::Date((d.year(), d.month() as u8, d.day() as u8))),
        Type::TIME => get::<NaiveTime>(row, i)?.map(|t| DbValue::Time(time_tuple(t))),
        Type::TIMESTAMP => get::<NaiveDateTime>(row, i)?.map(datetime),
        Type::TIMESTAMPTZ => {
            get::<chrono::DateTime<chrono::Utc>>(row, i)?.map(|t| datetime(t.naive_utc()))
        }
        Type::UUID => get::<uuid::Uuid>(row, i)?.map(|u| DbValue::Uuid(u.to_string())),
        Type::JSONB | Type::JSON => get::<serde_json::Value>(row, i)?
            .map(|v| DbValue::Jsonb(serde_json::to_vec(&v).unwrap_or_default())),
        Type::NUMERIC => get::<Decimal>(row, i)?.map(|d| DbValue::Decimal(d.to_string())),
        Type::INT4_ARRAY => get::<Vec<Option<i32>>>(row, i)?.map(DbValue::ArrayInt32),
        Type::INT8_ARRAY => get::<Vec<Option<i64>>>(row, i)?.map(DbValue::ArrayInt64),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            get::<Vec<Option<String>>>(row, i)?.map(DbValue::ArrayStr)
        }
        Type::NUMERIC_ARRAY => get::<Vec<Option<Decimal>>>(row, i)?.map(|v| {
            DbValue::ArrayDecimal(v.into_iter().map(|d| d.map(|d| d.to_string())).collect())
        }),
        Type::INTERVAL => get::<PgInterval>(row, i)?.map(|v| DbValue::Interval(v.0)),
        Type::INT4_RANGE => {
            get::<PgRange<i32>>(row, i)?.map(|r| DbValue::RangeInt32((r.lower, r.upper)))
        }
        Type::INT8_RANGE => {
            get::<PgRange<i64>>(row, i)?.map(|r| DbValue::RangeInt64((r.lower, r.upper)))
        }
        Type::NUM_RANGE => get::<PgRange<Decimal>>(row, i)?.map(|r| {
            let text = |b: Option<(Decimal, RangeBoundKind)>| b.map(|(d, k)| (d.to_string(), k));
            DbValue::RangeDecimal((text(r.lower), text(r.upper)))
        }),
        // Anything else (vector, inet, …) arrives in its binary form; cast to ::text in SQL
        // to read it as a string.
        _ => get::<Raw>(row, i)?.map(|r| DbValue::Unsupported(r.0)),
    };
    Ok(v.unwrap_or(DbValue::DbNull))
}

fn time_tuple(t: NaiveTime) -> (u8, u8, u8, u32) {
    (
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond(),
    )
}

fn datetime(t: NaiveDateTime) -> DbValue {
    let (h, mi, s, ns) = time_tuple(t.time());
    DbValue::Datetime((t.year(), t.month() as u8, t.day() as u8, h, mi, s, ns))
}

/// Whether `err` says a cached statement no longer fits the server: it was deallocated
/// (`DEALLOCATE`, `DISCARD ALL`) or the tables under it changed shape.
pub fn stale_statement(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    err.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::INVALID_SQL_STATEMENT_NAME
            || (*db.code() == SqlState::FEATURE_NOT_SUPPORTED
                && db.message().contains("cached plan"))
    })
}

pub fn query_failed(err: tokio_postgres::Error) -> Error {
    if server_unavailable(&err) {
        return Error::ConnectionFailed(format!("the database connection was lost: {err}"));
    }
    match err.as_db_error() {
        Some(db) => Error::QueryFailed(QueryError::DbError(DbError {
            as_text: db.to_string(),
            severity: db.severity().to_string(),
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            extras: [
                ("hint", db.hint()),
                ("column", db.column()),
                ("constraint", db.constraint()),
                ("table", db.table()),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
            .collect(),
        })),
        None => Error::QueryFailed(QueryError::Text(err.to_string())),
    }
}

/// Whether `err` says the server went away rather than that the statement was wrong: the
/// connection closed, an I/O error, or SQLSTATE class 08 (connection exception) or 57P0x
/// (shutdown, crash, cannot connect now). Guests see these as `connection-failed`, so they
/// can answer 503 and retry instead of reporting a broken query.
pub fn server_unavailable(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        // No SQLSTATE: an I/O or protocol failure below the statement.
        None => {
            err.as_db_error().is_none()
                && std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>())
        }
    }
}

/// SQL NULL for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// A column value of a type this host does not decode, in its binary wire form.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// INTERVAL's binary form: microseconds, days, months.
#[derive(Debug)]
struct PgInterval(Interval);

impl ToSql for PgInterval {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.extend_from_slice(&self.0.micros.to_be_bytes());
        out.extend_from_slice(&self.0.days.to_be_bytes());
        out.extend_from_slice(&self.0.months.to_be_bytes());
        Ok(IsNull::No)
    }
    fn accepts(t: &Type) -> bool {
        *t == Type::INTERVAL
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for PgInterval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        if raw.len() != 16 {
            return Err("interval must be 16 bytes".into());
        }
        let micros = i64::from_be_bytes(raw[0..8].try_into()?);
        let days = i32::from_be_bytes(raw[8..12].try_into()?);
        let months = i32::from_be_bytes(raw[12..16].try_into()?);
        Ok(PgInterval(Interval {
            micros,
            days,
            months,
        }))
    }
    fn accepts(t: &Type) -> bool {
        *t == Type::INTERVAL
    }
}

/// A range (`int4range`, `int8range`, `numrange`) in Spin's shape: each bound absent
/// (unbounded) or a value with its kind. Postgres's empty range reads as both bounds absent,
/// as Spin reads it.
#[derive(Debug)]
struct PgRange<T> {
    lower: Option<(T, RangeBoundKind)>,
    upper: Option<(T, RangeBoundKind)>,
}

// The binary range format (src/include/utils/rangetypes.h): a flags byte, then each present
// bound as a length-prefixed value of the element type.
const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;

fn range_element(t: &Type) -> Option<&Type> {
    match t.kind() {
        Kind::Range(element) => Some(element),
        _ => None,
    }
}

impl<T: ToSql> ToSql for PgRange<T> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        let element = range_element(ty).ok_or("not a range type")?;
        let mut flags = 0;
        match &self.lower {
            None => flags |= RANGE_LB_INF,
            Some((_, RangeBoundKind::Inclusive)) => flags |= RANGE_LB_INC,
            Some((_, RangeBoundKind::Exclusive)) => {}
        }
        match &self.upper {
            None => flags |= RANGE_UB_INF,
            Some((_, RangeBoundKind::Inclusive)) => flags |= RANGE_UB_INC,
            Some((_, RangeBoundKind::Exclusive)) => {}
        }
        out.extend_from_slice(&[flags]);
        for (value, _) in [&self.lower, &self.upper].into_iter().flatten() {
            let start = out.len();
            out.extend_from_slice(&[0; 4]);
            if let IsNull::Yes = value.to_sql(element, out)? {
                return Err("a range bound cannot be NULL".into());
            }
            let len = i32::try_from(out.len() - start - 4)?;
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(IsNull::No)
    }
    fn accepts(t: &Type) -> bool {
        range_element(t).is_some()
    }
    to_sql_checked!();
}

impl<'a, T: FromSql<'a>> FromSql<'a> for PgRange<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let element = range_element(ty).ok_or("not a range type")?;
        let (&flags, mut rest) = raw.split_first().ok_or("empty range value")?;
        if flags & RANGE_EMPTY != 0 {
            return Ok(PgRange {
                lower: None,
                upper: None,
            });
        }
        let lower = range_bound(
            &mut rest,
            element,
            flags & RANGE_LB_INF == 0,
            flags & RANGE_LB_INC != 0,
        )?;
        let upper = range_bound(
            &mut rest,
            element,
            flags & RANGE_UB_INF == 0,
            flags & RANGE_UB_INC != 0,
        )?;
        Ok(PgRange { lower, upper })
    }
    fn accepts(t: &Type) -> bool {
        range_element(t).is_some()
    }
}

type Bound<T> = Option<(T, RangeBoundKind)>;

fn range_bound<'a, T: FromSql<'a>>(
    rest: &mut &'a [u8],
    element: &Type,
    present: bool,
    inclusive: bool,
) -> Result<Bound<T>, Box<dyn StdError + Sync + Send>> {
    if !present {
        return Ok(None);
    }
    let len_bytes = rest.get(..4).ok_or("truncated range bound")?;
    let len = usize::try_from(i32::from_be_bytes(len_bytes.try_into()?))?;
    let data = rest.get(4..4 + len).ok_or("truncated range bound")?;
    *rest = &rest[4 + len..];
    let kind = if inclusive {
        RangeBoundKind::Inclusive
    } else {
        RangeBoundKind::Exclusive
    };
    Ok(Some((T::from_sql(element, data)?, kind)))
}

#[cfg(test)]
mod range_tests {
    use super::*;

    #[test]
    fn a_range_round_trips_through_its_binary_form() {
        let range = PgRange {
            lower: Some((1i32, RangeBoundKind::Inclusive)),
            upper: Some((10i32, RangeBoundKind::Exclusive)),
        };
        let mut buf = BytesMut::new();
        range.to_sql(&Type::INT4_RANGE, &mut buf).expect("encodes");
        assert_eq!(
            &buf[..],
            &[
                RANGE_LB_INC,
                0,
                0,
                0,
                4,
                0,
                0,
                0,
                1,
                0,
                0,
                0,
                4,
                0,
                0,
                0,
                10
            ]
        );
        let back = PgRange::<i32>::from_sql(&Type::INT4_RANGE, &buf).expect("decodes");
        assert_eq!(back.lower, Some((1, RangeBoundKind::Inclusive)));
        assert_eq!(back.upper, Some((10, RangeBoundKind::Exclusive)));
    }

    #[test]
    fn unbounded_and_empty_ranges_have_no_bounds() {
        let open = PgRange::<i64> {
            lower: None,
            upper: Some((5, RangeBoundKind::Inclusive)),
        };
        let mut buf = BytesMut::new();
        open.to_sql(&Type::INT8_RANGE, &mut buf).expect("encodes");
        assert_eq!(buf[0], RANGE_LB_INF | RANGE_UB_INC);
        let back = PgRange::<i64>::from_sql(&Type::INT8_RANGE, &buf).expect("decodes");
        assert_eq!(back.lower, None);
        assert_eq!(back.upper, Some((5, RangeBoundKind::Inclusive)));

        let empty = PgRange::<i32>::from_sql(&Type::INT4_RANGE, &[RANGE_EMPTY]).expect("decodes");
        assert_eq!((empty.lower, empty.upper), (None, None));
    }

    #[test]
    fn a_truncated_range_is_an_error_not_a_panic() {
        assert!(PgRange::<i32>::from_sql(&Type::INT4_RANGE, &[]).is_err());
        assert!(
            PgRange::<i32>::from_sql(&Type::INT4_RANGE, &[RANGE_UB_INF, 0, 0, 0, 4, 1]).is_err()
        );
        assert!(PgRange::<i32>::from_sql(&Type::INT4_RANGE, &[RANGE_UB_INF, 0, 0]).is_err());
    }

    #[test]
    fn range_parameters_are_sent_as_their_range_types() {
        use ParameterValue as P;
        let (_, ty) =
            to_arg(&P::RangeInt32((Some((1, RangeBoundKind::Inclusive)), None))).expect("ok");
        assert_eq!(ty, Some(Type::INT4_RANGE));
        let (_, ty) = to_arg(&P::RangeInt64((None, None))).expect("ok");
        assert_eq!(ty, Some(Type::INT8_RANGE));
        let (_, ty) = to_arg(&P::RangeDecimal((
            Some(("1.5".into(), RangeBoundKind::Exclusive)),
            None,
        )))
        .expect("ok");
        assert_eq!(ty, Some(Type::NUM_RANGE));
        let err = to_arg(&P::RangeDecimal((
            Some(("x".into(), RangeBoundKind::Exclusive)),
            None,
        )))
        .err();
        assert!(err.is_some_and(|e| e.starts_with("invalid decimal \"x\"")));
    }
}
