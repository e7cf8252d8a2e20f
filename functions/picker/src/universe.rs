//! The tenant's universe as known on a day: every symbol with its daily bars over the
//! look-back, read in one query (one JSON array of bars per symbol), so a run over 500
//! symbols is one round trip.

use serde_json::Value;
use spin_sdk::pg::Connection;
use tessera_picking::date::Date;
use tessera_picking::discovery::equal_weight_index;
use tessera_picking::market::{AssetClass, Bar, Interval, Symbol};
use tessera_spin_kit::ApiError;

use crate::db::{self, P};

pub struct Universe {
    /// Every symbol but the index, with its daily bars dated on or before `as_of`, ascending.
    pub members: Vec<(Symbol, Vec<Bar>)>,
    /// The index's bars: the configured index symbol's, or the members' equal-weight index.
    pub index_bars: Vec<Bar>,
    pub index_ticker: String,
}

/// Ticker the equal-weight index is reported under.
pub const EQUAL_WEIGHT: &str = "equal-weight universe";

/// The latest day with daily bars, if any.
pub async fn latest_day(db: &Connection, tenant: &str) -> Result<Option<Date>, ApiError> {
    let row = db::one(
        db,
        "latest bar",
        "SELECT (extract(epoch FROM max(last)))::int8 FROM market_symbols s \
         CROSS JOIN LATERAL (SELECT max(b.time) AS last FROM market_bars b \
           WHERE b.tenant_id = s.tenant_id AND b.symbol = s.ticker AND b.interval = '1d') l \
         WHERE s.tenant_id = $1",
        vec![db::str_param(tenant)],
    )
    .await?;
    Ok(row
        .and_then(|r| db::opt_int(&r, 0))
        .map(Date::from_timestamp))
}

/// The universe as of `as_of`, with `history_days` calendar days of bars.
pub async fn load(
    db: &Connection,
    tenant: &str,
    as_of: Date,
    history_days: i32,
    index: Option<&str>,
) -> Result<Universe, ApiError> {
    let from = as_of.add_days(-history_days).midnight_utc();
    let to = as_of.midnight_utc();
    let rows = db::rows(
        db,
        "load universe",
        "SELECT s.ticker, s.name, s.asset_class, s.exchange, s.sector, s.market_cap, s.beta, \
           s.avg_spread, s.generated, \
           (SELECT json_agg(json_build_array(extract(epoch FROM b.time)::int8, b.open, b.high, \
              b.low, b.close, b.volume) ORDER BY b.time)::text \
            FROM market_bars b WHERE b.tenant_id = s.tenant_id AND b.symbol = s.ticker \
              AND b.interval = '1d' AND b.time > to_timestamp($2) AND b.time <= to_timestamp($3)) \
         FROM market_symbols s WHERE s.tenant_id = $1 ORDER BY s.ticker",
        vec![db::str_param(tenant), P::Int64(from), P::Int64(to)],
    )
    .await?;
    let mut members = Vec::with_capacity(rows.len());
    let mut index_bars = None;
    for r in &rows {
        let ticker = db::text(r, 0);
        let symbol = Symbol {
            ticker: ticker.clone(),
            name: db::opt_text(r, 1),
            asset_class: db::opt_text(r, 2)
                .and_then(|c| serde_json::from_value::<AssetClass>(Value::String(c)).ok()),
            exchange: db::opt_text(r, 3),
            sector: db::opt_text(r, 4),
            market_cap: db::opt_float(r, 5),
            beta: db::opt_float(r, 6),
            avg_spread: db::opt_float(r, 7),
            generated: db::boolean(r, 8),
        };
        let bars = parse_bars(&ticker, db::opt_text(r, 9).as_deref())?;
        if index == Some(ticker.as_str()) {
            index_bars = Some(bars);
        } else {
            members.push((symbol, bars));
        }
    }
    let (index_ticker, index_bars) = match (index, index_bars) {
        (Some(t), Some(bars)) => (t.to_string(), bars),
        _ => {
            let series: Vec<&[Bar]> = members.iter().map(|(_, b)| b.as_slice()).collect();
            (
                EQUAL_WEIGHT.to_string(),
                equal_weight_index(EQUAL_WEIGHT, &series),
            )
        }
    };
    Ok(Universe {
        members,
        index_bars,
        index_ticker,
    })
}

/// `[[time, open, high, low, close, volume], …]` from the query above.
fn parse_bars(ticker: &str, json: Option<&str>) -> Result<Vec<Bar>, ApiError> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let rows: Vec<(i64, f64, f64, f64, f64, f64)> = serde_json::from_str(json)
        .map_err(|e| ApiError::internal(format!("stored bars of {ticker}: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|(time, open, high, low, close, volume)| Bar {
            symbol: ticker.to_string(),
            interval: Interval::Day,
            time,
            open,
            high,
            low,
            close,
            volume,
        })
        .collect())
}

/// One symbol's last `n` daily bars dated on or before `day`, ascending.
pub async fn symbol_bars(
    db: &Connection,
    tenant: &str,
    ticker: &str,
    day: Date,
    n: i64,
) -> Result<Vec<Bar>, ApiError> {
    let row = db::one(
        db,
        "symbol bars",
        "SELECT json_agg(json_build_array(t, o, h, l, c, v) ORDER BY t)::text FROM ( \
           SELECT extract(epoch FROM time)::int8 AS t, open AS o, high AS h, low AS l, \
             close AS c, volume AS v FROM market_bars \
           WHERE tenant_id = $1 AND symbol = $2 AND interval = '1d' AND time <= to_timestamp($3) \
           ORDER BY time DESC LIMIT $4) recent",
        vec![
            db::str_param(tenant),
            db::str_param(ticker),
            P::Int64(day.midnight_utc()),
            P::Int64(n),
        ],
    )
    .await?;
    parse_bars(ticker, row.and_then(|r| db::opt_text(&r, 0)).as_deref())
}

/// Every symbol's daily bars dated in `(after, until]`, by ticker (symbol by symbol on the
/// primary key).
pub async fn bars_between(
    db: &Connection,
    tenant: &str,
    after: Date,
    until: Date,
) -> Result<Vec<(String, Vec<Bar>)>, ApiError> {
    let rows = db::rows(
        db,
        "bars between",
        "SELECT s.ticker, (SELECT json_agg(json_build_array(extract(epoch FROM b.time)::int8, \
             b.open, b.high, b.low, b.close, b.volume) ORDER BY b.time)::text \
           FROM market_bars b WHERE b.tenant_id = s.tenant_id AND b.symbol = s.ticker \
             AND b.interval = '1d' AND b.time > to_timestamp($2) AND b.time <= to_timestamp($3)) \
         FROM market_symbols s WHERE s.tenant_id = $1 ORDER BY s.ticker",
        vec![
            db::str_param(tenant),
            P::Int64(after.midnight_utc()),
            P::Int64(until.midnight_utc()),
        ],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let ticker = db::text(r, 0);
            let bars = parse_bars(&ticker, db::opt_text(r, 1).as_deref())?;
            Ok((ticker, bars))
        })
        .collect()
}
