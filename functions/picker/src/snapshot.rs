//! The hourly market-condition snapshot: index trend, realised volatility, breadth and
//! sector returns as of the latest day with bars (tessera-picking's `MarketConditions`),
//! stored with the embedding of its description; and [`similar`], the past snapshots
//! nearest to a day's conditions (pgvector), for the LLMPicker's prompt.

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_picking::conditions::{ConditionWindows, MarketConditions};
use tessera_picking::date::Date;
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
    let description = description(&conditions, &u.index_ticker);
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

/// The text a snapshot is embedded as (and a day's conditions are compared by).
pub fn description(conditions: &MarketConditions, index_ticker: &str) -> String {
    format!("{} (index: {index_ticker})", conditions.describe())
}

/// A stored snapshot close to some conditions.
pub struct Similar {
    pub similarity: f64,
    pub conditions: MarketConditions,
}

/// The `k` stored snapshots of days before `before` whose embeddings are nearest (cosine) to
/// `conditions`', one per day (the hourly snapshots of one day are alike), nearest first.
/// Only earlier days: what a snapshot of the decision day or later says is not yet known.
pub async fn similar(
    db: &Connection,
    tenant: &str,
    conditions: &MarketConditions,
    index_ticker: &str,
    before: Date,
    k: usize,
) -> Result<Vec<Similar>, ApiError> {
    if k == 0 {
        return Ok(Vec::new());
    }
    let vector = model::embed(&[description(conditions, index_ticker)])?
        .pop()
        .ok_or_else(|| ApiError::internal("embedding: no vector"))?;
    let rows = db::rows(
        db,
        "similar snapshots",
        "SELECT conditions::text, similarity FROM ( \
           SELECT DISTINCT ON (as_of) as_of, conditions, \
             1 - (embedding <=> $2::vector) AS similarity \
           FROM market_snapshots WHERE tenant_id = $1 AND as_of < $3::date \
           ORDER BY as_of, embedding <=> $2::vector, taken_at DESC) nearest \
         ORDER BY similarity DESC, as_of DESC LIMIT $4",
        vec![
            db::str_param(tenant),
            db::str_param(&db::vector_text(&vector)),
            db::str_param(&before.to_string()),
            db::P::Int64(k as i64),
        ],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let conditions = serde_json::from_str(&db::text(r, 0)).map_err(|e| {
                ApiError::internal(format!("stored market snapshot conditions: {e}"))
            })?;
            Ok(Similar {
                similarity: db::float(r, 1),
                conditions,
            })
        })
        .collect()
}
