//! The hourly market-condition snapshot: index trend, realised volatility, breadth and
//! sector returns as of the latest day with bars (tessera-picking's `MarketConditions`),
//! stored with the embedding of its description.

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_picking::conditions::{ConditionWindows, MarketConditions};
use tessera_picking::discovery::history_days;
use tessera_picking::market::{Bar, Symbol};
use tessera_spin_kit::ApiError;

use crate::db;
use crate::{model, settings, universe};

/// Takes one snapshot; what was stored, or why nothing was.
pub async fn take(db: &Connection, tenant: &str) -> Result<Value, ApiError> {
    let Some(as_of) = universe::latest_day(db, tenant).await? else {
        return Ok(json!({ "skipped": "no daily bars" }));
    };
    let settings = settings::load(db, tenant).await?;
    let u = universe::load(
        db,
        tenant,
        as_of,
        history_days(&settings.windows()),
        settings.index.as_deref(),
    )
    .await?;
    let members: Vec<(&Symbol, &[Bar])> =
        u.members.iter().map(|(s, b)| (s, b.as_slice())).collect();
    let Some(conditions) =
        MarketConditions::from_bars(as_of, &u.index_bars, &members, &ConditionWindows::default())
    else {
        return Ok(json!({ "skipped": "too little index history for market conditions" }));
    };
    let description = format!("{} (index: {})", conditions.describe(), u.index_ticker);
    let vector = model::embed(&[&description])?
        .pop()
        .ok_or_else(|| ApiError::internal("embedding: no vector"))?;
    let row = db::one(
        db,
        "store snapshot",
        "INSERT INTO market_snapshots (tenant_id, as_of, conditions, description, embedding) \
         VALUES ($1, $2::date, $3, $4, $5::vector) RETURNING id::text",
        vec![
            db::str_param(tenant),
            db::str_param(&as_of.to_string()),
            db::jsonb(&serde_json::to_value(&conditions).unwrap_or_default()),
            db::str_param(&description),
            db::str_param(&db::vector_text(&vector)),
        ],
    )
    .await?
    .ok_or_else(|| ApiError::internal("store snapshot: no row"))?;
    Ok(json!({ "id": db::text(&row, 0), "as_of": as_of, "description": description }))
}
