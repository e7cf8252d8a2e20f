//! The audit: every validation stored with its inputs and its answer, and
//! `GET /v1/validations?kind=&verdict=&symbol=&before=&limit=` to read them back, newest first.

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_api::Query;
use tessera_spin_kit::{ApiError, StatusCode, connect};

use crate::db::{self, P};
use crate::identity::Caller;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// Stores one validation; returns its id and time. A rejection also raises a
/// `validation.rejected` alert (tessera_spin_kit::alert_inbox) in the same statement, so the
/// alert exists exactly when the validation does.
pub async fn record(
    db: &Connection,
    tenant: &str,
    kind: &str,
    verdict: &str,
    symbol: Option<&str>,
    input: &Value,
    result: &Value,
) -> Result<(String, String), ApiError> {
    let row = db::one(
        db,
        "store validation",
        &format!(
            "WITH v AS (
                 INSERT INTO validations (tenant_id, kind, verdict, symbol, input, result)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 RETURNING id, created_at),
             alert AS (
                 INSERT INTO alert_inbox (tenant_id, type, severity, labels, summary, payload)
                 SELECT $1, 'validation.rejected', 'warning',
                        jsonb_strip_nulls(jsonb_build_object('kind', $2::text, 'symbol', $4::text)),
                        $7, jsonb_build_object('validation_id', v.id::text)
                 FROM v WHERE $3 = 'reject')
             SELECT id::text, to_char(created_at AT TIME ZONE 'UTC', {}) FROM v",
            db::ISO
        ),
        vec![
            P::Str(tenant.into()),
            P::Str(kind.into()),
            P::Str(verdict.into()),
            db::opt_str(symbol),
            db::jsonb(input),
            db::jsonb(result),
            P::Str(rejection_summary(kind, symbol, result)),
        ],
    )
    .await?
    .ok_or_else(|| ApiError::internal("store validation: no row returned"))?;
    Ok((db::text(&row, 0), db::text(&row, 1)))
}

/// One line for the alert: what was rejected and the first reason.
fn rejection_summary(kind: &str, symbol: Option<&str>, result: &Value) -> String {
    let what = match symbol {
        Some(s) => format!("{kind} {s} rejected"),
        None => format!("{kind} rejected"),
    };
    match result["reasons"][0]["message"].as_str() {
        Some(reason) => format!("{what}: {reason}"),
        None => what,
    }
}

pub async fn list(caller: &Caller, query: &Query) -> crate::Handled {
    let kind = query.get("kind");
    if let Some(k) = kind
        && !["trade", "formula", "model"].contains(&k)
    {
        return Err(ApiError::invalid("kind", "kind is trade, formula or model"));
    }
    let verdict = query.get("verdict");
    if let Some(v) = verdict
        && ![
            "approve",
            "approve_with_warnings",
            "reject",
            "valid",
            "invalid",
        ]
        .contains(&v)
    {
        return Err(ApiError::invalid(
            "verdict",
            "verdict is approve, approve_with_warnings, reject, valid or invalid",
        ));
    }
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("limit is 1 to {MAX_PAGE}")))?,
    };
    let before = query.get("before");
    if let Some(b) = before
        && (b.len() > 40
            || !b
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-:.+TZ ".contains(&c)))
    {
        return Err(ApiError::invalid(
            "before",
            "before is an ISO 8601 timestamp",
        ));
    }
    let db = connect(&caller.tenant).await?;
    let rows = db::rows(
        &db,
        "list validations",
        &format!(
            "SELECT id::text, kind, verdict, symbol, input::text, result::text,
                    to_char(created_at AT TIME ZONE 'UTC', {})
             FROM validations
             WHERE tenant_id = $1 AND ($2::text IS NULL OR kind = $2)
               AND ($3::text IS NULL OR verdict = $3) AND ($4::text IS NULL OR symbol = upper($4))
               AND ($5::text IS NULL OR created_at < $5::timestamptz)
             ORDER BY created_at DESC, id DESC LIMIT $6",
            db::ISO
        ),
        vec![
            P::Str(caller.tenant.clone()),
            db::opt_str(kind),
            db::opt_str(verdict),
            db::opt_str(query.get("symbol")),
            db::opt_str(before),
            P::Int64(limit),
        ],
    )
    .await
    .map_err(|e| {
        if e.status == 400 {
            e.with_field("before")
        } else {
            e
        }
    })?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": db::text(r, 0),
                "kind": db::text(r, 1),
                "verdict": db::text(r, 2),
                "symbol": db::opt_text(r, 3),
                "input": db::json(r, 4),
                "result": db::json(r, 5),
                "created_at": db::text(r, 6),
            })
        })
        .collect();
    Ok((StatusCode::OK, json!({ "validations": items })))
}
