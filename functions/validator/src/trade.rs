//! `POST /v1/validate/trade`: the verdict on a proposed trade against the account (given, or
//! a stored snapshot by id), the tenant's limits, the circuit breaker and the similar past
//! trades that lost. Every verdict is stored for audit with its inputs.
//!
//! `context` (a model's rationale, confidence, anything) is stored with the audit row and
//! never read by a rule: no field, header or role changes a hard constraint.

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_spin_kit::{ApiError, StatusCode, connect};
use tessera_validation::breaker::BreakerState;
use tessera_validation::trade::{Account, ProposedTrade, SimilarTrade, evaluate};

use crate::db::{self, P};
use crate::identity::Caller;
use crate::snapshots::check_embedding;
use crate::{audit, breaker};

/// `POST /v1/validate/trade`'s body: the trade, and the account as `account` or as a stored
/// snapshot's `snapshot_id` (one of the two).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ValidateTradeRequest")]
pub(crate) struct TradeRequest {
    trade: ProposedTrade,
    #[serde(default)]
    account: Option<Account>,
    /// A stored portfolio snapshot to use as the account.
    #[serde(default)]
    snapshot_id: Option<String>,
    /// The setup's embedding (384 numbers), for the similar-failed-setups warning.
    #[serde(default)]
    #[schemars(length(equal = 384))]
    setup_embedding: Option<Vec<f32>>,
    /// Accepted so callers can keep a model's rationale with the audit (stored through the
    /// raw input above); deliberately never read here or by a rule.
    #[serde(default)]
    #[allow(dead_code)]
    context: Option<Value>,
}

pub async fn post(req: Request, caller: &Caller) -> crate::Handled {
    let (r, body): (TradeRequest, _) = crate::read(req).await?;
    let input: Value = tessera_api::parse_json(&body)?;
    let embedding = match &r.setup_embedding {
        Some(v) => Some(check_embedding("setup_embedding", v)?),
        None => None,
    };
    let db = connect(&caller.tenant).await?;
    let account = match (r.account, &r.snapshot_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "snapshot_id",
                "give account or snapshot_id, not both",
            ));
        }
        (Some(a), None) => a,
        (None, Some(id)) => snapshot_account(&db, &caller.tenant, id).await?,
        (None, None) => return Err(ApiError::missing("account")),
    };
    let (limits, _) = crate::limits::load(&db, &caller.tenant).await?;
    let state = breaker::current(&db, &caller.tenant, false).await?;
    let halt = (state.state != BreakerState::Closed).then(|| {
        let why = state
            .reason
            .clone()
            .unwrap_or_else(|| "no reason recorded".into());
        format!("{} since {} ({why})", state.state.as_str(), state.since)
    });
    let similar = match &embedding {
        Some(v) => similar_trades(&db, &caller.tenant, v, limits.similar_k).await?,
        None => Vec::new(),
    };
    let verdict = evaluate(&r.trade, &account, &limits, halt.as_deref(), &similar)
        .map_err(|e| ApiError::invalid(&e.field, e.message))?;
    let mut result =
        serde_json::to_value(&verdict).map_err(|e| ApiError::internal(e.to_string()))?;
    result["circuit_breaker"] = json!({ "state": state.state, "reason": state.reason });
    result["limits"] = serde_json::to_value(&limits).unwrap_or_default();
    let verdict_name = result["verdict"].as_str().unwrap_or("reject").to_string();
    // The audit keeps what was sent (context included), not the embedding's 384 numbers.
    let mut stored_input = input;
    if let Some(o) = stored_input.as_object_mut()
        && o.remove("setup_embedding").is_some()
    {
        o.insert("setup_embedding".into(), json!("(384 numbers)"));
    }
    if r.snapshot_id.is_some() {
        stored_input["account_from_snapshot"] = serde_json::to_value(&account).unwrap_or_default();
    }
    let (id, at) = audit::record(
        &db,
        &caller.tenant,
        "trade",
        &verdict_name,
        Some(&r.trade.symbol.to_uppercase()),
        &stored_input,
        &result,
    )
    .await?;
    result["id"] = json!(id);
    result["created_at"] = json!(at);
    Ok((StatusCode::OK, result))
}

async fn snapshot_account(db: &Connection, tenant: &str, id: &str) -> Result<Account, ApiError> {
    let id = tessera_api::parse_uuid(id, "snapshot_id")?;
    let row = db::one(
        db,
        "read snapshot",
        "SELECT equity::float8, cash::float8, day_pnl::float8, positions::text,
                (SELECT max(equity) FROM portfolio_snapshots p
                 WHERE p.tenant_id = s.tenant_id AND p.taken_at <= s.taken_at)::float8
         FROM portfolio_snapshots s WHERE id = $1::uuid AND tenant_id = $2",
        vec![P::Str(id.clone()), P::Str(tenant.into())],
    )
    .await?
    .ok_or_else(|| {
        ApiError::not_found(
            "snapshot_not_found",
            format!("no portfolio snapshot with id {id}"),
        )
        .with_field("snapshot_id")
    })?;
    let positions = serde_json::from_value(db::json(&row, 3))
        .map_err(|e| ApiError::internal(format!("stored positions: {e}")))?;
    Ok(Account {
        equity: db::float(&row, 0),
        cash: db::float(&row, 1),
        day_pnl: db::float(&row, 2),
        positions,
        peak_equity: db::opt_float(&row, 4),
    })
}

/// The k nearest past trades by cosine over their setup embeddings (HNSW), with outcomes;
/// the rules keep the losers above the tenant's similarity threshold.
async fn similar_trades(
    db: &Connection,
    tenant: &str,
    embedding: &str,
    k: u32,
) -> Result<Vec<SimilarTrade>, ApiError> {
    let rows = db::rows(
        db,
        "similar trades",
        &format!(
            "SELECT id::text, symbol, (1 - (embedding <=> $2::vector))::float8, pnl::float8,
                    to_char(closed_at AT TIME ZONE 'UTC', {})
             FROM validator_trades
             WHERE tenant_id = $1 AND embedding IS NOT NULL AND pnl < 0
             ORDER BY embedding <=> $2::vector LIMIT $3",
            db::ISO
        ),
        vec![
            P::Str(tenant.into()),
            P::Str(embedding.into()),
            P::Int64(i64::from(k)),
        ],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| SimilarTrade {
            id: db::text(r, 0),
            symbol: db::text(r, 1),
            similarity: db::float(r, 2),
            pnl: db::float(r, 3),
            closed_at: db::opt_text(r, 4),
        })
        .collect())
}
