//! Executed trades: `POST /v1/trades` stores the trade with the embedding of its formatted
//! description (side, symbol, sector, momentum and volatility as of the trade's day, the
//! reasoning), computed in-component; `POST /v1/trades/{id}/exit` records the exit, the
//! outcome and the realised return, which makes it a similar past trade for the FuzzyPicker.

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use tessera_picking::date::Date;
use tessera_picking::discovery::{trade_description, trade_return};
use tessera_picking::indicators::{FeatureWindows, SymbolFeatures};
use tessera_spin_kit::pg::parse_uuid;
use tessera_spin_kit::{ApiError, StatusCode, read_json};

use crate::db::{self, P};
use crate::market::parse_time;
use crate::{BODY_LIMIT, Handled, model, universe};

/// `POST /v1/trades`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ExecutedTradeInput")]
pub(crate) struct TradeInput {
    #[schemars(length(min = 1, max = 32))]
    symbol: String,
    #[schemars(schema_with = "side_schema")]
    side: String,
    #[schemars(extend("exclusiveMinimum" = 0))]
    quantity: f64,
    #[schemars(extend("exclusiveMinimum" = 0))]
    price: f64,
    #[serde(default)]
    #[schemars(length(max = 4000))]
    reasoning: String,
    /// Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ; default now.
    #[serde(default)]
    #[schemars(schema_with = "crate::market::time_schema")]
    executed_at: Option<Value>,
}

/// `side` is a string checked by `create`.
fn side_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["buy", "sell"]})
}

/// `POST /v1/trades/{id}/exit`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TradeExitInput")]
pub(crate) struct ExitInput {
    #[schemars(extend("exclusiveMinimum" = 0))]
    exit_price: f64,
    /// Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ; default now.
    #[serde(default)]
    #[schemars(schema_with = "crate::market::time_schema")]
    exited_at: Option<Value>,
    #[serde(default)]
    #[schemars(length(max = 2000))]
    outcome: Option<String>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn positive(field: &str, v: f64) -> Result<(), ApiError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be a positive number"),
        ))
    }
}

fn time_or_now(v: Option<&Value>, field: &str) -> Result<i64, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(now()),
        Some(v) => parse_time(v, field).map_err(|e| ApiError::invalid(field, e.message)),
    }
}

pub async fn create(req: Request, tenant: &str) -> Handled {
    let t: TradeInput = read_json(req, BODY_LIMIT).await?;
    let symbol = t.symbol.trim().to_string();
    if symbol.is_empty() || symbol.len() > 32 {
        return Err(ApiError::invalid(
            "symbol",
            "symbol must be 1-32 characters",
        ));
    }
    if t.side != "buy" && t.side != "sell" {
        return Err(ApiError::invalid("side", "side must be `buy` or `sell`"));
    }
    positive("quantity", t.quantity)?;
    positive("price", t.price)?;
    if t.reasoning.chars().count() > 4000 {
        return Err(ApiError::invalid(
            "reasoning",
            "reasoning is at most 4000 characters",
        ));
    }
    let executed_at = time_or_now(t.executed_at.as_ref(), "executed_at")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    // The setup as known on the trade's day: sector and features from the bars up to it.
    let sector = db::one(
        &db,
        "symbol sector",
        "SELECT sector FROM market_symbols WHERE tenant_id = $1 AND ticker = $2",
        vec![db::str_param(tenant), db::str_param(&symbol)],
    )
    .await?
    .and_then(|r| db::opt_text(&r, 0));
    let windows = FeatureWindows::default();
    let bars =
        universe::symbol_bars(&db, tenant, &symbol, Date::from_timestamp(executed_at), 120).await?;
    let features = SymbolFeatures::from_bars(&symbol, &bars, &windows);
    let description = trade_description(
        &t.side,
        &symbol,
        sector.as_deref(),
        features.momentum,
        features.volatility,
        &t.reasoning,
    );
    let vector = model::embed(&[&description])?
        .pop()
        .ok_or_else(|| ApiError::internal("embedding: no vector"))?;
    let row = db::one(
        &db,
        "insert trade",
        "INSERT INTO picker_trades (tenant_id, symbol, side, quantity, price, reasoning, \
           executed_at, description, embedding) \
         VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), $8, $9::vector) RETURNING id::text",
        vec![
            db::str_param(tenant),
            db::str_param(&symbol),
            db::str_param(&t.side),
            P::Floating64(t.quantity),
            P::Floating64(t.price),
            db::str_param(&t.reasoning),
            P::Int64(executed_at),
            db::str_param(&description),
            db::str_param(&db::vector_text(&vector)),
        ],
    )
    .await?
    .ok_or_else(|| ApiError::internal("insert trade: no row"))?;
    Ok((
        StatusCode::CREATED,
        json!({
            "id": db::text(&row, 0),
            "symbol": symbol,
            "side": t.side,
            "quantity": t.quantity,
            "price": t.price,
            "executed_at": executed_at,
            "description": description,
            "embedding_dimensions": vector.len(),
        }),
    ))
}

pub async fn exit(req: Request, tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let e: ExitInput = read_json(req, BODY_LIMIT).await?;
    positive("exit_price", e.exit_price)?;
    let exited_at = time_or_now(e.exited_at.as_ref(), "exited_at")?;
    if e.outcome.as_ref().is_some_and(|o| o.chars().count() > 2000) {
        return Err(ApiError::invalid(
            "outcome",
            "outcome is at most 2000 characters",
        ));
    }
    let db = tessera_spin_kit::connect(tenant).await?;
    let trade = db::one(
        &db,
        "find trade",
        "SELECT side, price FROM picker_trades WHERE tenant_id = $1 AND id = $2::uuid",
        vec![db::str_param(tenant), db::str_param(&id)],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("trade_not_found", format!("no trade {id}")))?;
    let return_pct = trade_return(&db::text(&trade, 0), db::float(&trade, 1), e.exit_price)
        .ok_or_else(|| ApiError::internal(format!("stored trade {id} has no usable price")))?;
    db::execute(
        &db,
        "record exit",
        "UPDATE picker_trades SET exit_price = $3, exited_at = to_timestamp($4), outcome = $5, \
           return_pct = $6 WHERE tenant_id = $1 AND id = $2::uuid",
        vec![
            db::str_param(tenant),
            db::str_param(&id),
            P::Floating64(e.exit_price),
            P::Int64(exited_at),
            db::opt_str(e.outcome.as_deref()),
            P::Floating64(return_pct),
        ],
    )
    .await?;
    Ok((
        StatusCode::OK,
        json!({ "id": id, "exit_price": e.exit_price, "return_pct": return_pct, "outcome": e.outcome }),
    ))
}

pub async fn list(tenant: &str) -> Handled {
    let db = tessera_spin_kit::connect(tenant).await?;
    let rows = db::rows(
        &db,
        "list trades",
        &format!(
            "SELECT id::text, symbol, side, quantity, price, reasoning, \
               to_char(executed_at AT TIME ZONE 'UTC', {iso}), exit_price, \
               to_char(exited_at AT TIME ZONE 'UTC', {iso}), outcome, return_pct, description, \
               vector_dims(embedding) \
             FROM picker_trades WHERE tenant_id = $1 ORDER BY executed_at DESC, id LIMIT 500",
            iso = db::ISO
        ),
        vec![db::str_param(tenant)],
    )
    .await?;
    let trades: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": db::text(r, 0), "symbol": db::text(r, 1), "side": db::text(r, 2),
                "quantity": db::float(r, 3), "price": db::float(r, 4), "reasoning": db::text(r, 5),
                "executed_at": db::text(r, 6), "exit_price": db::opt_float(r, 7),
                "exited_at": db::opt_text(r, 8), "outcome": db::opt_text(r, 9),
                "return_pct": db::opt_float(r, 10), "description": db::text(r, 11),
                "embedding_dimensions": db::int(r, 12),
            })
        })
        .collect();
    Ok((StatusCode::OK, json!({ "trades": trades })))
}
