//! Market data in: symbols and bars as a JSON array or NDJSON (`application/x-ndjson`),
//! upserted idempotently; and bars out by symbol, interval and range.
//!
//! A bad row is refused with 400 naming it (`rows[3].high`) and nothing is written; with
//! `?on_error=skip` the good rows are written and the bad ones counted and listed as
//! `rejected`. Re-posting a row with the same values changes nothing (`unchanged`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use tessera_api::Query;
use tessera_picking::date::{Date, Timestamp};
use tessera_picking::market::{Bar, BarRow, FieldError, Interval, Symbol};
use tessera_spin_kit::{ApiError, StatusCode, read_body};

use crate::Handled;
use crate::db::{self, P};

/// Bulk loads: the host's own request limit (8 MiB by default) is the real bound.
pub const BULK_LIMIT: usize = 64 << 20;
/// Rejected rows listed in an answer (the count covers them all).
const LISTED_REJECTIONS: usize = 100;

/// One row that broke a rule.
struct Rejection {
    row: usize,
    field: String,
    message: String,
}

impl Rejection {
    fn new(row: usize, e: FieldError) -> Rejection {
        Rejection {
            row,
            field: e.field,
            message: e.message,
        }
    }

    fn json(&self) -> Value {
        json!({ "row": self.row, "field": self.field, "message": self.message })
    }
}

/// The rows of a bulk body — a JSON array, or one JSON object per line for NDJSON — each
/// parsed into `T` on its own, so a row that is not one is that row's rejection.
async fn read_rows<T: DeserializeOwned>(
    req: Request,
) -> Result<Vec<Result<T, FieldError>>, ApiError> {
    let ndjson = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/x-ndjson") || v.starts_with("application/jsonl")
        });
    if !ndjson {
        tessera_api::check_json_content_type(
            req.headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("(not text)")),
        )?;
    }
    let bytes = read_body(req, BULK_LIMIT).await?;
    tessera_api::refuse_nul(&bytes)?;
    if !ndjson {
        return match tessera_api::parse_json::<Value>(&bytes)? {
            Value::Array(rows) => Ok(rows
                .into_iter()
                .map(|row| serde_json::from_value(row).map_err(|e| row_error(&e.to_string())))
                .collect()),
            _ => Err(ApiError::invalid(
                "rows",
                "the body must be a JSON array of rows (or NDJSON)",
            )),
        };
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::invalid("rows", "the NDJSON body is not UTF-8"))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| serde_json::from_str(line).map_err(|e| row_error(&e.to_string())))
        .collect())
}

/// A row serde could not read: the field it names (`missing field `ticker``, `unknown field
/// `x``), or `row`.
fn row_error(message: &str) -> FieldError {
    let named = message
        .split('`')
        .nth(1)
        .filter(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"));
    let message = message.split(" at line ").next().unwrap_or(message);
    FieldError::new(named.unwrap_or("row"), message)
}

fn skip_bad_rows(query: &Query) -> Result<bool, ApiError> {
    match query.get("on_error") {
        None | Some("fail") => Ok(false),
        Some("skip") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            "on_error",
            format!(
                "on_error must be `fail` or `skip`, not {}",
                tessera_api::echo(other)
            ),
        )),
    }
}

/// 400 for the first rejection unless bad rows are skipped.
fn refuse_first(rejected: &[Rejection], skip: bool) -> Result<(), ApiError> {
    match rejected.first() {
        Some(r) if !skip => Err(ApiError::invalid(
            &format!("rows[{}].{}", r.row, r.field),
            format!(
                "row {}: {} ({} bad row(s); nothing was written)",
                r.row,
                r.message,
                rejected.len()
            ),
        )),
        _ => Ok(()),
    }
}

fn answer(total: usize, counts: (i64, i64), rejected: &[Rejection], extra: Value) -> Handled {
    let (inserted, updated) = counts;
    let written = total - rejected.len();
    let mut body = json!({
        "inserted": inserted,
        "updated": updated,
        "unchanged": written as i64 - inserted - updated,
        "rejected": rejected.len(),
        "rejections": rejected.iter().take(LISTED_REJECTIONS).map(Rejection::json).collect::<Vec<_>>(),
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    Ok((StatusCode::OK, body))
}

pub async fn post_symbols(req: Request, tenant: &str, query: &Query) -> Handled {
    let skip = skip_bad_rows(query)?;
    let rows = read_rows::<Symbol>(req).await?;
    let total = rows.len();
    let mut rejected = Vec::new();
    let mut good: BTreeMap<String, Symbol> = BTreeMap::new();
    for (i, row) in rows.into_iter().enumerate() {
        let parsed = row.and_then(|s| s.validate().map(|()| s));
        match parsed {
            Ok(s) => {
                good.insert(s.ticker.clone(), s);
            }
            Err(e) => rejected.push(Rejection::new(i, e)),
        }
    }
    refuse_first(&rejected, skip)?;
    let symbols: Vec<&Symbol> = good.values().collect();
    let db = tessera_spin_kit::connect(tenant).await?;
    let row = db::one(
        &db,
        "upsert symbols",
        "WITH up AS ( \
           INSERT INTO market_symbols AS s (tenant_id, ticker, name, asset_class, exchange, sector, \
             market_cap, beta, avg_spread, generated) \
           SELECT $1, r.ticker, r.name, r.asset_class, r.exchange, r.sector, r.market_cap, r.beta, \
             r.avg_spread, coalesce(r.generated, false) \
           FROM jsonb_to_recordset($2::jsonb) AS r(ticker text, name text, asset_class text, \
             exchange text, sector text, market_cap float8, beta float8, avg_spread float8, \
             generated boolean) \
           ON CONFLICT (tenant_id, ticker) DO UPDATE SET name = EXCLUDED.name, \
             asset_class = EXCLUDED.asset_class, exchange = EXCLUDED.exchange, \
             sector = EXCLUDED.sector, market_cap = EXCLUDED.market_cap, beta = EXCLUDED.beta, \
             avg_spread = EXCLUDED.avg_spread, generated = EXCLUDED.generated, updated_at = now() \
           WHERE (s.name, s.asset_class, s.exchange, s.sector, s.market_cap, s.beta, s.avg_spread, \
             s.generated) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.asset_class, EXCLUDED.exchange, \
             EXCLUDED.sector, EXCLUDED.market_cap, EXCLUDED.beta, EXCLUDED.avg_spread, EXCLUDED.generated) \
           RETURNING (xmax = 0) AS inserted) \
         SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up",
        vec![db::str_param(tenant), db::jsonb(&serde_json::to_value(&symbols).unwrap_or_default())],
    )
    .await?
    .ok_or_else(|| ApiError::internal("upsert symbols: no row"))?;
    let duplicates = total - rejected.len() - symbols.len();
    answer(
        total - duplicates,
        (db::int(&row, 0), db::int(&row, 1)),
        &rejected,
        json!({ "duplicates": duplicates }),
    )
}

/// A number from JSON: a number, or a string such as `"NaN"` (so non-finite values reach the
/// validation and are refused by name rather than as unreadable JSON).
fn number(value: Option<&Value>, field: &str) -> Result<f64, FieldError> {
    match value {
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| FieldError::new(field, format!("{field} is not a number"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| FieldError::new(field, format!("{field} must be a number"))),
        None | Some(Value::Null) => Err(FieldError::new(field, format!("{field} is required"))),
        Some(_) => Err(FieldError::new(field, format!("{field} must be a number"))),
    }
}

fn string(value: Option<Value>, field: &str) -> Result<String, FieldError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(FieldError::new(field, format!("{field} is required"))),
        Some(_) => Err(FieldError::new(field, format!("{field} must be a string"))),
    }
}

/// A time: Unix seconds, a date (`2024-03-28`, its 00:00 UTC) or `2024-03-28T14:31:00Z`.
pub fn parse_time(value: &Value, field: &str) -> Result<Timestamp, FieldError> {
    let bad = || {
        FieldError::new(
            field,
            format!("{field} must be Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"),
        )
    };
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(bad),
        Value::String(s) => parse_time_text(s).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// The schema of what [`parse_time`] reads (null: the handler's default).
pub fn time_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["integer", "string", "null"],
        "description": "Unix seconds, YYYY-MM-DD (00:00 UTC) or YYYY-MM-DDTHH:MM:SSZ",
    })
}

pub fn parse_time_text(s: &str) -> Option<Timestamp> {
    if let Ok(t) = s.parse::<i64>() {
        return Some(t);
    }
    // Checked: a multi-byte character across byte 10 is not a date (and must not panic).
    let (date, rest) = s.split_at_checked(10).unwrap_or((s, ""));
    let day: Date = date.parse().ok()?;
    if rest.is_empty() {
        return Some(day.midnight_utc());
    }
    let hms = rest.strip_prefix('T')?.strip_suffix('Z')?;
    let parts: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = parts[..] else { return None };
    ((0..24).contains(&h) && (0..60).contains(&m) && (0..60).contains(&sec))
        .then(|| day.midnight_utc() + h * 3600 + m * 60 + sec)
}

/// A bar row as sent: every field optional here, so a missing or mistyped one is reported
/// by name (a struct, not a map: no allocation per key on a 40,000-row load).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBar {
    symbol: Option<Value>,
    interval: Option<Value>,
    time: Option<Value>,
    open: Option<Value>,
    high: Option<Value>,
    low: Option<Value>,
    close: Option<Value>,
    volume: Option<Value>,
}

impl RawBar {
    fn into_row(self) -> Result<BarRow, FieldError> {
        Ok(BarRow {
            symbol: string(self.symbol, "symbol")?,
            interval: string(self.interval, "interval")?,
            time: parse_time(self.time.as_ref().unwrap_or(&Value::Null), "time")?,
            open: number(self.open.as_ref(), "open")?,
            high: number(self.high.as_ref(), "high")?,
            low: number(self.low.as_ref(), "low")?,
            close: number(self.close.as_ref(), "close")?,
            volume: number(self.volume.as_ref(), "volume")?,
        })
    }
}

pub async fn post_bars(req: Request, tenant: &str, query: &Query) -> Handled {
    let skip = skip_bad_rows(query)?;
    let rows = read_rows::<RawBar>(req).await?;
    let total = rows.len();
    let mut rejected = Vec::new();
    let mut bars = Vec::with_capacity(total);
    for (i, row) in rows.into_iter().enumerate() {
        match row.and_then(RawBar::into_row).and_then(|r| r.validate()) {
            Ok(bar) => bars.push((i, bar)),
            Err(e) => rejected.push(Rejection::new(i, e)),
        }
    }
    let db = tessera_spin_kit::connect(tenant).await?;
    // Unknown symbols: one query for the batch's distinct tickers.
    let tickers: BTreeSet<&str> = bars.iter().map(|(_, b)| b.symbol.as_str()).collect();
    let known: BTreeSet<String> = db::rows(
        &db,
        "known symbols",
        "SELECT ticker FROM market_symbols WHERE tenant_id = $1 AND ticker = ANY($2)",
        vec![
            db::str_param(tenant),
            P::ArrayStr(tickers.iter().map(|t| Some(t.to_string())).collect()),
        ],
    )
    .await?
    .iter()
    .map(|r| db::text(r, 0))
    .collect();
    let (bars, unknown): (Vec<_>, Vec<_>) = bars
        .into_iter()
        .partition(|(_, b)| known.contains(&b.symbol));
    rejected.extend(unknown.into_iter().map(|(i, b)| {
        Rejection::new(
            i,
            FieldError::new(
                "symbol",
                format!(
                    "unknown symbol {}: POST it to /v1/market/symbols first",
                    tessera_api::echo(&b.symbol)
                ),
            ),
        )
    }));
    rejected.sort_by_key(|r| r.row);
    refuse_first(&rejected, skip)?;
    // The same key twice in one load: the later row wins (one upsert per key). Sorted by
    // key, the rows also reach the primary-key index in order.
    let mut bars = bars;
    bars.sort_by(|(i, a), (j, b)| {
        (&a.symbol, a.interval, a.time, std::cmp::Reverse(i)).cmp(&(
            &b.symbol,
            b.interval,
            b.time,
            std::cmp::Reverse(j),
        ))
    });
    bars.dedup_by(|(_, a), (_, kept)| {
        (&a.symbol, a.interval, a.time) == (&kept.symbol, kept.interval, kept.time)
    });
    let bars: Vec<Bar> = bars.into_iter().map(|(_, b)| b).collect();
    let duplicates = total - rejected.len() - bars.len();
    let row = db::one(
        &db,
        "upsert bars",
        UPSERT_BARS,
        vec![db::str_param(tenant)]
            .into_iter()
            .chain(bar_columns(&bars))
            .collect(),
    )
    .await?
    .ok_or_else(|| ApiError::internal("upsert bars: no row"))?;
    answer(
        total - duplicates,
        (db::int(&row, 0), db::int(&row, 1)),
        &rejected,
        json!({ "duplicates": duplicates }),
    )
}

/// One statement for the whole load: the columns as arrays (`unnest`), so neither the host
/// nor Postgres parses a JSON document per row. Tickers, intervals and times travel as
/// binary `text[]`/`int8[]`; Spin's pg has no `float8[]` parameter, so each price column is
/// one array literal in text (`{1.5,2.25,…}`), which `float8[]` input parses in C.
const UPSERT_BARS: &str = "WITH up AS ( \
   INSERT INTO market_bars AS b (tenant_id, symbol, interval, time, open, high, low, close, volume) \
   SELECT $1, r.s, r.i, to_timestamp(r.t), r.o, r.h, r.l, r.c, r.v \
   FROM unnest($2::text[], $3::text[], $4::int8[], $5::text::float8[], $6::text::float8[], \
     $7::text::float8[], $8::text::float8[], $9::text::float8[]) AS r(s, i, t, o, h, l, c, v) \
   ON CONFLICT (tenant_id, symbol, interval, time) DO UPDATE SET open = EXCLUDED.open, \
     high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume \
   WHERE (b.open, b.high, b.low, b.close, b.volume) IS DISTINCT FROM \
     (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume) \
   RETURNING (xmax = 0) AS inserted) \
 SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up";

/// `$2`…`$9` of [`UPSERT_BARS`]: symbol, interval, time, then open, high, low, close and
/// volume as array literals. Validated numbers are finite, and `{}` of an f64 is the
/// shortest text that reads back to the same value, so nothing is lost on the way.
fn bar_columns(bars: &[Bar]) -> Vec<P> {
    use std::fmt::Write;
    let mut symbols = Vec::with_capacity(bars.len());
    let mut intervals = Vec::with_capacity(bars.len());
    let mut times = Vec::with_capacity(bars.len());
    let mut prices: [String; 5] =
        std::array::from_fn(|_| String::with_capacity(bars.len() * 12 + 2));
    for b in bars {
        symbols.push(Some(b.symbol.clone()));
        intervals.push(Some(b.interval.as_str().to_string()));
        times.push(Some(b.time));
        for (text, value) in prices
            .iter_mut()
            .zip([b.open, b.high, b.low, b.close, b.volume])
        {
            text.push(if text.is_empty() { '{' } else { ',' });
            let _ = write!(text, "{value}");
        }
    }
    let mut params = vec![
        P::ArrayStr(symbols),
        P::ArrayStr(intervals),
        P::ArrayInt64(times),
    ];
    params.extend(prices.into_iter().map(|mut text| {
        if text.is_empty() {
            text.push('{');
        }
        text.push('}');
        P::Str(text)
    }));
    params
}

/// Most bars one GET answers.
const MAX_BARS: i64 = 10_000;

pub async fn get_bars(tenant: &str, query: &Query) -> Handled {
    let symbol = query
        .get("symbol")
        .ok_or_else(|| ApiError::missing("symbol"))?;
    let interval: Interval = query
        .get("interval")
        .unwrap_or("1d")
        .parse()
        .map_err(|e: FieldError| ApiError::invalid("interval", e.message))?;
    let bound = |name: &str| -> Result<Option<Timestamp>, ApiError> {
        query
            .get(name)
            .map(|v| {
                parse_time_text(v).ok_or_else(|| {
                    ApiError::invalid(
                        name,
                        format!("{name} must be Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"),
                    )
                })
            })
            .transpose()
    };
    let from = bound("from")?.unwrap_or(i64::from(i32::MIN));
    let to = bound("to")?.unwrap_or(253_402_300_799);
    let limit = match query.get("limit") {
        None => MAX_BARS,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_BARS).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("limit must be 1-{MAX_BARS}")))?,
    };
    let db = tessera_spin_kit::connect(tenant).await?;
    let rows = db::rows(
        &db,
        "read bars",
        "SELECT extract(epoch FROM time)::int8, open, high, low, close, volume FROM market_bars \
         WHERE tenant_id = $1 AND symbol = $2 AND interval = $3 \
           AND time >= to_timestamp($4) AND time <= to_timestamp($5) \
         ORDER BY time LIMIT $6",
        vec![
            db::str_param(tenant),
            db::str_param(symbol),
            db::str_param(interval.as_str()),
            P::Int64(from),
            P::Int64(to),
            P::Int64(limit),
        ],
    )
    .await?;
    let bars: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"time": db::int(r, 0), "open": db::float(r, 1), "high": db::float(r, 2),
                   "low": db::float(r, 3), "close": db::float(r, 4), "volume": db::float(r, 5)})
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!({ "symbol": symbol, "interval": interval.as_str(), "bars": bars }),
    ))
}
