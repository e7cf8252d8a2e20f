//! The watchlist (tessera-picking's `Watchlist`): manual entries kept, discovered ones merged
//! in by each run, capped at the tenant's `watchlist_max_size` by evicting the lowest
//! ensemble score; every change written to `watchlist_changes`. Changes are made under a
//! row lock on the tenant's settings row, so two writers cannot both fill the last slot.

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_picking::watchlist::{Change, Origin, Watchlist, WatchlistEntry, WatchlistError};
use tessera_spin_kit::{ApiError, StatusCode, read_json};

use crate::db::{self, P};
use crate::{BODY_LIMIT, Handled, settings};

/// Serialises watchlist writers of one tenant for the rest of the transaction.
pub async fn lock(db: &Connection, tenant: &str) -> Result<(), ApiError> {
    db::execute(
        db,
        "lock watchlist",
        "SELECT pg_advisory_xact_lock(hashtext('tessera.watchlist'), hashtext($1))",
        vec![db::str_param(tenant)],
    )
    .await
    .map(|_| ())
}

pub async fn load(db: &Connection, tenant: &str, max_size: usize) -> Result<Watchlist, ApiError> {
    let rows = db::rows(
        db,
        "load watchlist",
        "SELECT ticker, origin, score, extract(epoch FROM added_at)::int8 FROM watchlist \
         WHERE tenant_id = $1",
        vec![db::str_param(tenant)],
    )
    .await?;
    let entries = rows
        .iter()
        .map(|r| WatchlistEntry {
            ticker: db::text(r, 0),
            origin: if db::text(r, 1) == "manual" {
                Origin::Manual
            } else {
                Origin::Discovered
            },
            score: db::opt_float(r, 2),
            added_at: db::int(r, 3),
        })
        .collect();
    Ok(Watchlist::from_entries(max_size, entries))
}

fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Manual => "manual",
        Origin::Discovered => "discovered",
    }
}

/// Writes `changes` to the watchlist table and the change log.
pub async fn apply(
    db: &Connection,
    tenant: &str,
    list: &Watchlist,
    changes: &[Change],
    run_id: Option<&str>,
) -> Result<(), ApiError> {
    for c in changes {
        let kind = serde_json::to_value(c.kind).unwrap_or_default();
        let kind = kind.as_str().unwrap_or("added");
        match list.get(&c.ticker) {
            Some(e) => {
                db::execute(
                    db,
                    "write watchlist entry",
                    "INSERT INTO watchlist (tenant_id, ticker, origin, score, added_at) \
                     VALUES ($1, $2, $3, $4, to_timestamp($5)) ON CONFLICT (tenant_id, ticker) \
                     DO UPDATE SET origin = EXCLUDED.origin, score = EXCLUDED.score",
                    vec![
                        db::str_param(tenant),
                        db::str_param(&e.ticker),
                        db::str_param(origin_str(e.origin)),
                        e.score.map_or(P::DbNull, P::Floating64),
                        P::Int64(e.added_at),
                    ],
                )
                .await?;
            }
            None => {
                db::execute(
                    db,
                    "drop watchlist entry",
                    "DELETE FROM watchlist WHERE tenant_id = $1 AND ticker = $2",
                    vec![db::str_param(tenant), db::str_param(&c.ticker)],
                )
                .await?;
            }
        }
        db::execute(
            db,
            "record watchlist change",
            "INSERT INTO watchlist_changes (tenant_id, ticker, kind, origin, score, run_id, at) \
             VALUES ($1, $2, $3, $4, $5, $6::uuid, to_timestamp($7))",
            vec![
                db::str_param(tenant),
                db::str_param(&c.ticker),
                db::str_param(kind),
                db::str_param(origin_str(c.origin)),
                c.score.map_or(P::DbNull, P::Floating64),
                db::opt_str(run_id),
                P::Int64(c.at),
            ],
        )
        .await?;
        raise_change_alert(
            db,
            tenant,
            &c.ticker,
            kind,
            origin_str(c.origin),
            c.score,
            run_id,
        )
        .await?;
    }
    Ok(())
}

/// `watchlist.changed` for the alert component (tessera_spin_kit::alert_inbox), in the
/// transaction that records the change.
async fn raise_change_alert(
    db: &Connection,
    tenant: &str,
    ticker: &str,
    kind: &str,
    origin: &str,
    score: Option<f64>,
    run_id: Option<&str>,
) -> Result<(), ApiError> {
    use tessera_spin_kit::alert_inbox::{self, Alert, Severity};
    let mut labels = serde_json::Map::new();
    labels.insert("ticker".into(), serde_json::json!(ticker));
    labels.insert("change".into(), serde_json::json!(kind));
    labels.insert("origin".into(), serde_json::json!(origin));
    let alert = Alert {
        event_type: "watchlist.changed".into(),
        severity: Severity::Info,
        labels,
        summary: Some(format!("watchlist: {ticker} {kind} ({origin})")),
        payload: serde_json::json!({ "ticker": ticker, "change": kind, "origin": origin,
                                     "score": score, "run_id": run_id }),
    };
    alert_inbox::raise(db, tenant, &alert).await
}

/// `POST /v1/discovery/watchlist/add` and `…/remove`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "WatchlistTickerInput")]
pub(crate) struct TickerInput {
    #[schemars(length(min = 1, max = 32))]
    ticker: String,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn change(req: Request, tenant: &str, add: bool) -> Handled {
    let input: TickerInput = read_json(req, BODY_LIMIT).await?;
    let ticker = input.ticker.trim().to_string();
    if ticker.is_empty() || ticker.len() > 32 {
        return Err(ApiError::invalid(
            "ticker",
            "ticker must be 1-32 characters",
        ));
    }
    let db = tessera_spin_kit::connect(tenant).await?;
    if add {
        let known = db::one(
            &db,
            "find symbol",
            "SELECT 1 FROM market_symbols WHERE tenant_id = $1 AND ticker = $2",
            vec![db::str_param(tenant), db::str_param(&ticker)],
        )
        .await?;
        if known.is_none() {
            return Err(ApiError::invalid(
                "ticker",
                format!("unknown symbol {}", tessera_api::echo(&ticker)),
            ));
        }
    }
    let max = settings::load(&db, tenant).await?.watchlist_max_size;
    db::begin(&db).await?;
    let result = async {
        lock(&db, tenant).await?;
        let mut list = load(&db, tenant, max).await?;
        let changes = if add {
            list.add_manual(&ticker, now())
        } else {
            list.remove(&ticker, now())
        }
        .map_err(|e| match e {
            WatchlistError::Full { .. } => ApiError::conflict("watchlist_full", e.to_string()),
            WatchlistError::NotFound { .. } => {
                ApiError::not_found("not_on_watchlist", e.to_string())
            }
        })?;
        apply(&db, tenant, &list, &changes, None).await?;
        Ok::<_, ApiError>(changes)
    }
    .await;
    match result {
        Ok(changes) => {
            db::commit(&db).await?;
            Ok((StatusCode::OK, json!({ "changes": changes })))
        }
        Err(e) => {
            db::rollback(&db).await;
            Err(e)
        }
    }
}

pub async fn add(req: Request, tenant: &str) -> Handled {
    change(req, tenant, true).await
}

pub async fn remove(req: Request, tenant: &str) -> Handled {
    change(req, tenant, false).await
}

pub async fn list(tenant: &str) -> Handled {
    let db = tessera_spin_kit::connect(tenant).await?;
    let max = settings::load(&db, tenant).await?.watchlist_max_size;
    let entries = db::rows(
        &db,
        "list watchlist",
        &format!(
            "SELECT ticker, origin, score, to_char(added_at AT TIME ZONE 'UTC', {}) FROM watchlist \
             WHERE tenant_id = $1 ORDER BY origin DESC, score DESC NULLS LAST, ticker",
            db::ISO
        ),
        vec![db::str_param(tenant)],
    )
    .await?;
    let changes = db::rows(
        &db,
        "list watchlist changes",
        &format!(
            "SELECT ticker, kind, origin, score, run_id::text, to_char(at AT TIME ZONE 'UTC', {}) \
             FROM watchlist_changes WHERE tenant_id = $1 ORDER BY id DESC LIMIT 100",
            db::ISO
        ),
        vec![db::str_param(tenant)],
    )
    .await?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|r| {
            json!({"ticker": db::text(r, 0), "origin": db::text(r, 1),
                   "score": db::opt_float(r, 2), "added_at": db::text(r, 3)})
        })
        .collect();
    let changes: Vec<Value> = changes
        .iter()
        .map(|r| {
            json!({"ticker": db::text(r, 0), "kind": db::text(r, 1), "origin": db::text(r, 2),
                   "score": db::opt_float(r, 3), "run_id": db::opt_text(r, 4), "at": db::text(r, 5)})
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!({ "max_size": max, "entries": entries, "changes": changes }),
    ))
}
