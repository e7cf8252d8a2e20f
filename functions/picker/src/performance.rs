//! `GET /v1/discovery/performance?horizon=5`: the scorecard (tessera-picking's `scorecard`)
//! per picker and for the ensemble — suggestions with a filled forward return, win rate,
//! mean and median return, mean excess over the universe's equal-weight return, bootstrap
//! intervals — and the paper-trade comparison: the tenant's closed trades on symbols the
//! ensemble had suggested before the trade against its other closed trades (their realised
//! returns, with no benchmark: `mean_excess` there is the mean return).

use serde_json::json;
use tessera_api::Query;
use tessera_picking::date::Date;
use tessera_picking::forward::HORIZONS;
use tessera_picking::scorecard::{Bootstrap, Outcome, scorecard};
use tessera_spin_kit::{ApiError, StatusCode};

use crate::Handled;
use crate::db::{self, P};

pub async fn get(tenant: &str, query: &Query) -> Handled {
    let horizon: u32 = match query.get("horizon") {
        None => 5,
        Some(v) => v
            .parse()
            .ok()
            .filter(|h| HORIZONS.contains(h))
            .ok_or_else(|| ApiError::invalid("horizon", "horizon must be 1, 5 or 20"))?,
    };
    let db = tessera_spin_kit::connect(tenant).await?;
    let rows = db::rows(
        &db,
        "suggestion outcomes",
        "SELECT src, s.ticker, s.suggested_on::text, r.forward_return, r.universe_return \
         FROM discovery_suggestions s JOIN suggestion_returns r ON r.suggestion_id = s.id \
         CROSS JOIN LATERAL unnest(s.sources) AS src \
         WHERE s.tenant_id = $1 AND r.horizon = $2 ORDER BY s.suggested_on, s.ticker, src",
        vec![db::str_param(tenant), P::Int32(horizon as i32)],
    )
    .await?;
    let outcomes: Vec<Outcome> = rows
        .iter()
        .filter_map(|r| {
            Some(Outcome {
                source: db::text(r, 0),
                ticker: db::text(r, 1),
                suggested_on: db::text(r, 2).parse::<Date>().ok()?,
                forward_return: db::float(r, 3),
                universe_return: db::float(r, 4),
            })
        })
        .collect();
    let pending = db::one(
        &db,
        "pending suggestions",
        "SELECT count(*) FROM discovery_suggestions s WHERE s.tenant_id = $1 AND NOT EXISTS \
           (SELECT 1 FROM suggestion_returns r WHERE r.suggestion_id = s.id AND r.horizon = $2)",
        vec![db::str_param(tenant), P::Int32(horizon as i32)],
    )
    .await?
    .map_or(0, |r| db::int(&r, 0));
    let trades = db::rows(
        &db,
        "closed trades",
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM discovery_suggestions s \
             WHERE s.tenant_id = t.tenant_id AND s.ticker = t.symbol \
               AND 'ensemble' = ANY(s.sources) AND s.suggested_on <= t.executed_at::date) \
           THEN 'trades_on_suggested' ELSE 'trades_other' END, \
           t.symbol, t.executed_at::date::text, t.return_pct \
         FROM picker_trades t WHERE t.tenant_id = $1 AND t.return_pct IS NOT NULL",
        vec![db::str_param(tenant)],
    )
    .await?;
    let trade_outcomes: Vec<Outcome> = trades
        .iter()
        .filter_map(|r| {
            Some(Outcome {
                source: db::text(r, 0),
                ticker: db::text(r, 1),
                suggested_on: db::text(r, 2).parse::<Date>().ok()?,
                forward_return: db::float(r, 3),
                universe_return: 0.0,
            })
        })
        .collect();
    let bootstrap = Bootstrap::default();
    Ok((
        StatusCode::OK,
        json!({
            "horizon": horizon,
            "sources": scorecard(&outcomes, &bootstrap),
            "pending": pending,
            "paper_vs_actual": {
                "suggestions": scorecard(
                    &outcomes.iter().filter(|o| o.source == "ensemble").cloned().collect::<Vec<_>>(),
                    &bootstrap,
                ),
                "trades": scorecard(&trade_outcomes, &bootstrap),
            },
        }),
    ))
}
