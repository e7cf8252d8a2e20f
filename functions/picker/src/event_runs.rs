//! Event discovery runs (issue 15): the alert component's price-move monitor writes a
//! `discovery_requests` row in the transaction of its `price.move` alert, and its dispatcher
//! tick calls `POST /internal/discovery/requests` here (service chaining) while any request
//! is pending. Every pending request of a tenant goes into one run (trigger `event`): several
//! moves at once make one run, not one each. The run records which symbols moved, and each
//! request records the run and where its symbol ranked.
//!
//! A tenant whose scheduled or API run is still going keeps its requests pending for the
//! next tick; a run that fails is retried up to [`MAX_ATTEMPTS`] times.

use serde_json::{Map, Value, json};
use spin_sdk::pg::Connection;
use tessera_picking::pick::Portfolio;
use tessera_spin_kit::{ApiError, StatusCode};

use crate::db::{self, P};
use crate::{Handled, discovery};

/// Runs tried for one request before it is given up (and marked handled with the error).
const MAX_ATTEMPTS: i64 = 5;
/// A claim older than this belongs to a run that was cut off; it may be taken again.
const CLAIM_EXPIRY_S: i64 = 300;

fn claimable() -> String {
    format!(
        "handled_at IS NULL AND attempts < {MAX_ATTEMPTS} \
         AND (claimed_at IS NULL OR claimed_at < now() - interval '{CLAIM_EXPIRY_S} seconds')"
    )
}

/// Runs discovery for every tenant with pending requests; what happened per tenant.
pub async fn drain() -> Handled {
    let db = tessera_spin_kit::connect_across_tenants().await?;
    let tenants: Vec<String> = db::rows(
        &db,
        "tenants with discovery requests",
        &format!(
            "SELECT DISTINCT tenant_id FROM discovery_requests WHERE {}",
            claimable()
        ),
        vec![],
    )
    .await?
    .iter()
    .map(|r| db::text(r, 0))
    .collect();
    let mut results = Map::new();
    for tenant in tenants {
        let result = match run_for(&db, &tenant).await {
            Ok(v) => v,
            Err(e) => json!({ "status": "error", "error": e.message }),
        };
        results.insert(tenant, result);
    }
    Ok((StatusCode::OK, json!({ "tenants": results })))
}

struct Claimed {
    ids: Vec<i64>,
    symbols: Vec<String>,
    reasons: Vec<String>,
}

async fn claim(db: &Connection, tenant: &str) -> Result<Claimed, ApiError> {
    let rows = db::rows(
        db,
        "claim discovery requests",
        &format!(
            "UPDATE discovery_requests SET claimed_at = now(), attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM discovery_requests WHERE tenant_id = $1 AND {} \
                          ORDER BY id FOR UPDATE SKIP LOCKED) \
             RETURNING id, symbol, reason",
            claimable()
        ),
        vec![db::str_param(tenant)],
    )
    .await?;
    let mut claimed = Claimed {
        ids: rows.iter().map(|r| db::int(r, 0)).collect(),
        symbols: rows.iter().map(|r| db::text(r, 1)).collect(),
        reasons: rows.iter().map(|r| db::text(r, 2)).collect(),
    };
    claimed.symbols.sort();
    claimed.symbols.dedup();
    claimed.reasons.sort();
    claimed.reasons.dedup();
    Ok(claimed)
}

async fn run_for(db: &Connection, tenant: &str) -> Result<Value, ApiError> {
    let claimed = claim(db, tenant).await?;
    if claimed.ids.is_empty() {
        return Ok(json!({ "status": "nothing pending" }));
    }
    let ids = json!(claimed.ids);
    match discovery::start_and_run(db, tenant, "event", None, &Portfolio::default()).await {
        Ok((run_id, status)) => {
            let standing = record_run(db, tenant, &run_id, &status, &claimed, &ids).await?;
            Ok(json!({ "status": status, "run_id": run_id, "symbols": standing }))
        }
        Err(e) if e.status == 409 => {
            // Another run holds the tenant's slot: the requests wait for the next tick,
            // without spending an attempt.
            db::execute(
                db,
                "release discovery requests",
                "UPDATE discovery_requests SET claimed_at = NULL, attempts = attempts - 1 \
                 WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::int8)",
                vec![db::jsonb(&ids)],
            )
            .await?;
            Ok(json!({ "status": "deferred", "reason": e.message }))
        }
        Err(e) => {
            eprintln!(
                "picker: event discovery run for {tenant}: {}",
                e.detail.as_deref().unwrap_or(&e.message)
            );
            db::execute(
                db,
                "record failed discovery request",
                &format!(
                    "UPDATE discovery_requests SET outcome = jsonb_build_object('error', $2::text), \
                       claimed_at = NULL, \
                       handled_at = CASE WHEN attempts >= {MAX_ATTEMPTS} THEN now() END \
                     WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::int8)"
                ),
                vec![db::jsonb(&ids), db::str_param(&e.message)],
            )
            .await?;
            Err(e)
        }
    }
}

/// Notes the trigger on the run and the run on the requests; each symbol's rank and score
/// when it is among the run's suggestions.
async fn record_run(
    db: &Connection,
    tenant: &str,
    run_id: &str,
    status: &str,
    claimed: &Claimed,
    ids: &Value,
) -> Result<Value, ApiError> {
    let symbols = json!(claimed.symbols);
    let rows = db::rows(
        db,
        "standing of moved symbols",
        "SELECT ticker, rank, score FROM discovery_suggestions \
         WHERE tenant_id = $1 AND run_id = $2::uuid \
           AND ticker IN (SELECT jsonb_array_elements_text($3::jsonb))",
        vec![
            db::str_param(tenant),
            db::str_param(run_id),
            db::jsonb(&symbols),
        ],
    )
    .await?;
    let mut standing = Map::new();
    for symbol in &claimed.symbols {
        let found = rows.iter().find(|r| &db::text(r, 0) == symbol);
        let entry = match found {
            Some(r) => {
                json!({ "suggested": true, "rank": db::int(r, 1), "score": db::float(r, 2) })
            }
            None => json!({ "suggested": false }),
        };
        standing.insert(symbol.clone(), entry);
    }
    let standing = Value::Object(standing);
    let event = json!({ "reasons": claimed.reasons, "symbols": standing, "requests": ids });
    db::execute(
        db,
        "note the event on the run",
        "UPDATE discovery_runs SET settings = settings || jsonb_build_object('event', $2::jsonb) \
         WHERE id = $1::uuid",
        vec![db::str_param(run_id), db::jsonb(&event)],
    )
    .await?;
    db::execute(
        db,
        "discovery requests handled",
        "UPDATE discovery_requests r SET run_id = $2::uuid, handled_at = now(), \
           outcome = jsonb_build_object('status', $3::text) || coalesce($4::jsonb -> r.symbol, '{}') \
         WHERE r.id IN (SELECT jsonb_array_elements_text($1::jsonb)::int8)",
        vec![
            db::jsonb(ids),
            db::str_param(run_id),
            db::str_param(status),
            db::jsonb(&standing),
        ],
    )
    .await?;
    Ok(standing)
}

/// Requests and what came of them, newest first (`GET /v1/discovery/requests`).
pub async fn list(tenant: &str) -> Handled {
    let db = tessera_spin_kit::connect(tenant).await?;
    let rows = db::rows(
        &db,
        "discovery requests",
        &format!(
            "SELECT id, symbol, reason, detail, attempts, run_id::text, outcome, \
               to_char(requested_at AT TIME ZONE 'UTC', {iso}), \
               to_char(handled_at AT TIME ZONE 'UTC', {iso}) \
             FROM discovery_requests WHERE tenant_id = $1 ORDER BY id DESC LIMIT 100",
            iso = db::ISO
        ),
        vec![P::Str(tenant.into())],
    )
    .await?;
    let requests: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": db::int(r, 0),
                "symbol": db::text(r, 1),
                "reason": db::text(r, 2),
                "detail": db::json(r, 3),
                "attempts": db::int(r, 4),
                "run_id": db::opt_text(r, 5),
                "outcome": db::json(r, 6),
                "requested_at": db::text(r, 7),
                "handled_at": db::opt_text(r, 8),
            })
        })
        .collect();
    Ok((StatusCode::OK, json!({ "requests": requests })))
}
