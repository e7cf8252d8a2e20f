//! The nightly forward-return fill: for every suggestion whose 1-, 5- or 20-day return is
//! not stored yet, the close-to-close return from the first trading day after it (no
//! look-ahead: tessera-picking's `forward`) and the universe's equal-weight return over the
//! same days, once the bars exist. Suggestion days are filled oldest first, a bounded number
//! per call.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_picking::calendar::Nyse;
use tessera_picking::date::Date;
use tessera_picking::forward::{HORIZONS, forward_return, universe_forward_return};
use tessera_picking::market::Bar;
use tessera_spin_kit::ApiError;

use crate::db::{self, P};
use crate::universe;

/// Suggestion days filled per call.
const DAYS_PER_CALL: i64 = 30;
/// Calendar days after a suggestion that cover 21 trading days (entry plus 20).
const LOOKAHEAD_DAYS: i32 = 40;

pub async fn fill(db: &Connection, tenant: &str) -> Result<Value, ApiError> {
    let days = db::rows(
        db,
        "pending suggestion days",
        "SELECT DISTINCT s.suggested_on::text FROM discovery_suggestions s \
         WHERE s.tenant_id = $1 AND (SELECT count(*) FROM suggestion_returns r \
           WHERE r.suggestion_id = s.id) < 3 ORDER BY 1 LIMIT $2",
        vec![db::str_param(tenant), P::Int64(DAYS_PER_CALL)],
    )
    .await?;
    let mut filled = 0usize;
    let mut pending = 0usize;
    for d in &days {
        let Ok(day) = db::text(d, 0).parse::<Date>() else {
            continue;
        };
        let bars: BTreeMap<String, Vec<Bar>> =
            universe::bars_between(db, tenant, day, day.add_days(LOOKAHEAD_DAYS))
                .await?
                .into_iter()
                .collect();
        let series: Vec<&[Bar]> = bars.values().map(Vec::as_slice).collect();
        let benchmark: BTreeMap<u32, Option<f64>> = HORIZONS
            .iter()
            .map(|h| (*h, universe_forward_return(&Nyse, &series, day, *h)))
            .collect();
        let rows = db::rows(
            db,
            "suggestions of the day",
            "SELECT s.id::text, s.ticker, ARRAY(SELECT r.horizon::text FROM suggestion_returns r \
               WHERE r.suggestion_id = s.id) FROM discovery_suggestions s \
             WHERE s.tenant_id = $1 AND s.suggested_on = $2::date",
            vec![db::str_param(tenant), db::str_param(&day.to_string())],
        )
        .await?;
        let mut inserts = Vec::new();
        for r in &rows {
            let done = db::str_array(r, 2);
            let empty = Vec::new();
            let own = bars.get(&db::text(r, 1)).unwrap_or(&empty);
            for h in HORIZONS {
                if done.contains(&h.to_string()) {
                    continue;
                }
                match (forward_return(&Nyse, own, day, h), benchmark[&h]) {
                    (Some(ret), Some(universe)) => inserts.push(json!({
                        "id": db::text(r, 0), "h": h, "r": ret, "u": universe
                    })),
                    _ => pending += 1,
                }
            }
        }
        filled += inserts.len();
        if !inserts.is_empty() {
            db::execute(
                db,
                "store forward returns",
                "INSERT INTO suggestion_returns (suggestion_id, tenant_id, horizon, \
                   forward_return, universe_return) \
                 SELECT x.id::uuid, $1, x.h, x.r, x.u FROM jsonb_to_recordset($2::jsonb) \
                   AS x(id text, h int, r float8, u float8) \
                 ON CONFLICT (suggestion_id, horizon) DO NOTHING",
                vec![db::str_param(tenant), db::jsonb(&Value::Array(inserts))],
            )
            .await?;
        }
    }
    Ok(json!({ "days": days.len(), "filled": filled, "pending": pending }))
}
