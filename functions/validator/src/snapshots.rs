//! `POST /v1/portfolio/snapshots`: the account after a trading cycle, with the trades it
//! closed. Stored, then the breaker's activation rules run on the new numbers (in the same
//! transaction, the breaker row locked).

use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_spin_kit::{ApiError, StatusCode, connect};
use tessera_validation::breaker::observe;
use tessera_validation::trade::{Account, Position};

use crate::breaker;
use crate::db::{self, P};
use crate::identity::Caller;

pub const EMBEDDING_DIM: usize = 384;
const MAX_POSITIONS: usize = 5_000;
const MAX_CLOSED: usize = 1_000;

/// `POST /v1/portfolio/snapshots`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PortfolioSnapshot")]
pub(crate) struct Snapshot {
    equity: f64,
    cash: f64,
    #[serde(default)]
    day_pnl: f64,
    #[serde(default)]
    positions: Vec<Position>,
    /// Whether the trading cycle that produced this snapshot failed.
    #[serde(default)]
    cycle_error: Option<bool>,
    /// When it was taken (RFC 3339); now when absent.
    #[serde(default)]
    taken_at: Option<String>,
    #[serde(default)]
    closed_trades: Vec<ClosedTrade>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SnapshotClosedTrade")]
struct ClosedTrade {
    #[schemars(length(min = 1, max = 32))]
    symbol: String,
    pnl: f64,
    /// A description of the setup, kept for people reading the warnings.
    #[serde(default)]
    #[schemars(length(max = 2000))]
    setup: Option<String>,
    /// The setup's embedding (384 numbers, all-MiniLM-L6-v2), for similar-setup warnings.
    #[serde(default)]
    #[schemars(length(equal = 384))]
    embedding: Option<Vec<f32>>,
    #[serde(default)]
    closed_at: Option<String>,
}

/// A 384-number embedding, finite and not all zero (cosine needs a direction).
pub fn check_embedding(field: &str, v: &[f32]) -> Result<String, ApiError> {
    if v.len() != EMBEDDING_DIM {
        return Err(ApiError::invalid(
            field,
            format!("an embedding has {EMBEDDING_DIM} numbers, got {}", v.len()),
        ));
    }
    if v.iter().any(|x| !x.is_finite()) || v.iter().all(|x| *x == 0.0) {
        return Err(ApiError::invalid(
            field,
            "an embedding is finite and not all zero",
        ));
    }
    Ok(db::vector_text(v))
}

/// An RFC 3339 timestamp Postgres will read, or 400 naming the field.
fn timestamp(field: &str, t: &str) -> Result<(), ApiError> {
    let ok = (10..=40).contains(&t.len())
        && t.bytes()
            .all(|c| c.is_ascii_digit() || b"-:.+TZ".contains(&c))
        && t.as_bytes().get(4) == Some(&b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "a timestamp is RFC 3339, e.g. 2026-01-31T16:00:00Z",
        ))
    }
}

pub async fn post(req: Request, caller: &Caller) -> crate::Handled {
    let (s, _): (Snapshot, _) = crate::read(req).await?;
    let account = Account {
        equity: s.equity,
        cash: s.cash,
        positions: s.positions,
        day_pnl: s.day_pnl,
        peak_equity: None,
    };
    account.check().map_err(|e| {
        ApiError::invalid(
            e.field.trim_start_matches("account."),
            e.message.replace("account.", ""),
        )
    })?;
    if account.positions.len() > MAX_POSITIONS {
        return Err(ApiError::too_large(
            Some("positions"),
            format!("at most {MAX_POSITIONS} positions"),
        ));
    }
    if s.closed_trades.len() > MAX_CLOSED {
        return Err(ApiError::too_large(
            Some("closed_trades"),
            format!("at most {MAX_CLOSED} closed trades"),
        ));
    }
    if let Some(t) = &s.taken_at {
        timestamp("taken_at", t)?;
    }
    let mut closed = Vec::with_capacity(s.closed_trades.len());
    for (i, t) in s.closed_trades.iter().enumerate() {
        let symbol_ok = !t.symbol.is_empty()
            && t.symbol.len() <= 32
            && t.symbol
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:/".contains(c));
        if !symbol_ok {
            return Err(ApiError::invalid(
                &format!("closed_trades[{i}].symbol"),
                "a symbol is 1-32 letters, digits or . - _ : /",
            ));
        }
        if !t.pnl.is_finite() {
            return Err(ApiError::invalid(
                &format!("closed_trades[{i}].pnl"),
                "pnl is a number",
            ));
        }
        if t.setup.as_ref().is_some_and(|s| s.chars().count() > 2_000) {
            return Err(ApiError::invalid(
                &format!("closed_trades[{i}].setup"),
                "setup is at most 2000 characters",
            ));
        }
        let embedding = match &t.embedding {
            Some(v) => Some(check_embedding(
                &format!("closed_trades[{i}].embedding"),
                v,
            )?),
            None => None,
        };
        if let Some(at) = &t.closed_at {
            timestamp(&format!("closed_trades[{i}].closed_at"), at)?;
        }
        closed.push((t, embedding));
    }

    let db = connect(&caller.tenant).await?;
    let (_, rules) = crate::limits::load(&db, &caller.tenant).await?;
    db::begin(&db).await?;
    let stored = async {
        let now = breaker::current(&db, &caller.tenant, true).await?;
        let previous = previous_positions(&db, &caller.tenant).await?;
        let id = store(
            &db,
            &caller.tenant,
            &account,
            s.cycle_error,
            s.taken_at.as_deref(),
            &closed,
        )
        .await?;
        if let Some(previous) = &previous {
            raise_position_changes(&db, &caller.tenant, previous, &account, &id).await?;
        }
        let m = breaker::metrics(&db, &caller.tenant).await?;
        let t = observe(now.state, &m, &rules);
        if let Some(t) = &t {
            breaker::apply(&db, &caller.tenant, t, &m, None).await?;
        }
        Ok::<_, ApiError>((id, m, t))
    }
    .await;
    let (id, m, t) = match stored {
        Ok(v) => {
            db::commit(&db).await?;
            v
        }
        Err(e) => {
            db::rollback(&db).await;
            return Err(e);
        }
    };
    let view = breaker::view(&db, &caller.tenant, &rules, &m, t.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        json!({ "id": id, "closed_trades": closed.len(), "circuit_breaker": view }),
    ))
}

async fn store(
    db: &Connection,
    tenant: &str,
    account: &Account,
    cycle_error: Option<bool>,
    taken_at: Option<&str>,
    closed: &[(&ClosedTrade, Option<String>)],
) -> Result<String, ApiError> {
    let row = db::one(
        db,
        "store snapshot",
        "INSERT INTO portfolio_snapshots (tenant_id, equity, cash, day_pnl, positions, cycle_error, taken_at)
         VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::timestamptz, now()))
         RETURNING id::text",
        vec![
            P::Str(tenant.into()),
            P::Floating64(account.equity),
            P::Floating64(account.cash),
            P::Floating64(account.day_pnl),
            db::jsonb(&serde_json::to_value(&account.positions).unwrap_or_default()),
            cycle_error.map_or(P::DbNull, P::Boolean),
            db::opt_str(taken_at),
        ],
    )
    .await
    .map_err(|e| if e.status == 400 { e.with_field("taken_at") } else { e })?
    .ok_or_else(|| ApiError::internal("store snapshot: no row returned"))?;
    let id = db::text(&row, 0);
    for (i, (t, embedding)) in closed.iter().enumerate() {
        db::execute(
            db,
            "store closed trade",
            "INSERT INTO validator_trades (tenant_id, snapshot_id, symbol, pnl, setup, embedding, closed_at)
             VALUES ($1, $2::uuid, upper($3), $4, $5, $6::vector,
                     coalesce($7::timestamptz, (SELECT taken_at FROM portfolio_snapshots WHERE id = $2::uuid) + $8 * interval '1 microsecond'))",
            vec![
                P::Str(tenant.into()),
                P::Str(id.clone()),
                P::Str(t.symbol.clone()),
                P::Floating64(t.pnl),
                db::opt_str(t.setup.as_deref()),
                db::opt_str(embedding.as_deref()),
                db::opt_str(t.closed_at.as_deref()),
                // Trades closed in one cycle keep their order for streaks.
                P::Int64(i as i64),
            ],
        )
        .await
        .map_err(|e| if e.status == 400 { e.with_field(&format!("closed_trades[{i}].closed_at")) } else { e })?;
    }
    Ok(id)
}

/// The positions of the tenant's latest snapshot; `None` before the first.
async fn previous_positions(
    db: &Connection,
    tenant: &str,
) -> Result<Option<Vec<tessera_validation::trade::Position>>, ApiError> {
    let row = db::one(
        db,
        "previous snapshot",
        "SELECT positions::text FROM portfolio_snapshots WHERE tenant_id = $1 \
         ORDER BY taken_at DESC, created_at DESC LIMIT 1",
        vec![P::Str(tenant.into())],
    )
    .await?;
    // Stored positions were validated on the way in; an unreadable row is treated as empty.
    Ok(row.map(|r| serde_json::from_str(&db::text(&r, 0)).unwrap_or_default()))
}

/// `position.large_change` alerts (tessera_spin_kit::alert_inbox) for what was traded since
/// the previous snapshot, in the snapshot's transaction.
async fn raise_position_changes(
    db: &Connection,
    tenant: &str,
    previous: &[tessera_validation::trade::Position],
    account: &Account,
    snapshot_id: &str,
) -> Result<(), ApiError> {
    use tessera_spin_kit::alert_inbox::{self, Alert, Severity};
    let changes = tessera_validation::trade::large_position_changes(
        previous,
        &account.positions,
        account.equity,
        tessera_validation::trade::DEFAULT_THRESHOLD_PCT,
    );
    for c in changes {
        let mut labels = serde_json::Map::new();
        labels.insert("symbol".into(), json!(c.symbol));
        labels.insert("change".into(), json!(c.kind()));
        let alert = Alert {
            event_type: "position.large_change".into(),
            severity: Severity::Warning,
            labels,
            summary: Some(format!(
                "{} {}: {} → {} ({:.2} % of equity)",
                c.symbol,
                c.kind(),
                c.from_quantity,
                c.to_quantity,
                c.pct_of_equity
            )),
            payload: json!({ "change": c, "snapshot_id": snapshot_id }),
        };
        alert_inbox::raise(db, tenant, &alert).await?;
    }
    Ok(())
}
