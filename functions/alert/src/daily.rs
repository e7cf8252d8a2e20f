//! The daily P&L summary (issue 15): once a New York day's summary is due
//! (tessera_alerting::daily, after the close of a trading day), one dispatcher tick raises a
//! `pnl.daily` event for every tenant with portfolio snapshots that day, routed like any
//! event. The day's row in `alert_daily_summaries` is claimed in the same transaction, so a
//! day is summarised once, and again only if that transaction never committed.

use crate::clock::now_ms;
use crate::db::{self, P};
use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_alerting::daily::{self, DayFigures, Days, Schedule};
use tessera_spin_kit::ApiError;

/// Raises the day's summaries when due and not yet raised; `None` otherwise.
pub async fn run_if_due(db: &Connection) -> Result<Option<Value>, ApiError> {
    let now = now_ms();
    let Some(day) = daily::due_day(now / 1000, &schedule().await?) else {
        return Ok(None);
    };
    db::begin(db).await?;
    let result = raise_day(db, day, now).await;
    match result {
        Ok(v) => {
            db::commit(db).await?;
            Ok(v)
        }
        Err(e) => {
            db::rollback(db).await;
            Err(e)
        }
    }
}

/// The component variables `daily_summary_days` (`trading` | `every`) and
/// `daily_summary_after_close_s` (900).
async fn schedule() -> Result<Schedule, ApiError> {
    let mut s = Schedule::default();
    if let Ok(text) = spin_sdk::variables::get("daily_summary_days").await
        && !text.trim().is_empty()
    {
        s.days = Days::parse(&text).ok_or_else(|| {
            ApiError::internal(format!(
                "component variable daily_summary_days is {text:?}; expected \"trading\" or \"every\""
            ))
        })?;
    }
    if let Ok(text) = spin_sdk::variables::get("daily_summary_after_close_s").await
        && !text.trim().is_empty()
    {
        s.after_close_s = text.trim().parse().map_err(|_| {
            ApiError::internal(format!(
                "component variable daily_summary_after_close_s is {text:?}; expected whole seconds"
            ))
        })?;
    }
    Ok(s)
}

async fn raise_day(
    db: &Connection,
    day: tessera_picking::date::Date,
    now: i64,
) -> Result<Option<Value>, ApiError> {
    let claimed = db::one(
        db,
        "claim daily summary",
        "INSERT INTO alert_daily_summaries (day, tenants) VALUES ($1::text::date, 0) \
         ON CONFLICT (day) DO NOTHING RETURNING day",
        vec![P::Str(day.to_string())],
    )
    .await?;
    if claimed.is_none() {
        return Ok(None);
    }
    let (start, end) = daily::day_bounds(day);
    // Per tenant: the day's last snapshot, how many there were, and the peak so far.
    let rows = db::rows(
        db,
        "daily figures",
        "SELECT DISTINCT ON (s.tenant_id) s.tenant_id, s.equity, s.day_pnl, \
                count(*) OVER (PARTITION BY s.tenant_id), \
                (SELECT max(p.equity) FROM portfolio_snapshots p \
                 WHERE p.tenant_id = s.tenant_id AND p.taken_at < to_timestamp($2)) \
         FROM portfolio_snapshots s \
         WHERE s.taken_at >= to_timestamp($1) AND s.taken_at < to_timestamp($2) \
         ORDER BY s.tenant_id, s.taken_at DESC",
        vec![P::Int64(start), P::Int64(end)],
    )
    .await?;
    for row in &rows {
        let tenant = db::text(row, 0);
        let figures = DayFigures {
            equity: db::float(row, 1),
            day_pnl: db::float(row, 2),
            snapshots: u32::try_from(db::int(row, 3)).unwrap_or(u32::MAX),
            peak_equity: db::opt_float(row, 4).unwrap_or_else(|| db::float(row, 1)),
        };
        let event = daily::summary_event(day, &figures, now);
        let key = format!("{}:{day}", daily::EVENT_TYPE);
        crate::events::raise_in(db, &tenant, &event, Some(&key), now).await?;
    }
    db::execute(
        db,
        "daily summary count",
        "UPDATE alert_daily_summaries SET tenants = $2 WHERE day = $1::text::date",
        vec![P::Str(day.to_string()), P::Int32(rows.len() as i32)],
    )
    .await?;
    Ok(Some(
        json!({ "day": day.to_string(), "tenants": rows.len() }),
    ))
}
