//! `GET /v1/usage`: tokens and cost by user, provider, model and day, for the caller's
//! tenant (`?period=day|month|all`, or `?from=YYYY-MM-DD&to=YYYY-MM-DD`; `?user=` narrows
//! to one user). Cache hits and local answers are counted as calls with no cost.

use serde_json::{Value, json};
use spin_sdk::pg::{Connection, Row};
use tessera_api::Query;
use tessera_feedback::queries::valid_day;
use tessera_spin_kit::{ApiError, StatusCode, connect};

use crate::db::{self, P};
use crate::identity::Caller;

/// A calendar day (checked here: Postgres would refuse 2024-02-30 with a SQLSTATE).
fn date(s: &str, field: &str) -> Result<String, ApiError> {
    if valid_day(s) {
        Ok(s.to_string())
    } else {
        Err(ApiError::invalid(
            field,
            format!("expected a date YYYY-MM-DD, got {}", tessera_api::echo(s)),
        ))
    }
}

/// `from` and `to`, both days, in order (as the feedback report requires).
fn range(from: &str, to: &str) -> Result<(String, String), ApiError> {
    let (from, to) = (date(from, "from")?, date(to, "to")?);
    if from > to {
        return Err(ApiError::invalid(
            "from",
            format!("from ({from}) is after to ({to})"),
        ));
    }
    Ok((from, to))
}

const SUMS: &str = "count(*)::int8, count(*) FILTER (WHERE status = 'ok' AND cache_hit = 'miss' AND provider <> 'local')::int8,
    count(*) FILTER (WHERE cache_hit <> 'miss')::int8, coalesce(sum(input_tokens), 0)::int8,
    coalesce(sum(output_tokens), 0)::int8, coalesce(sum(cost_micros), 0)::int8";

fn totals(r: &Row, from: usize) -> Value {
    let cost = db::int(r, from + 5);
    json!({
        "calls": db::int(r, from),
        "paid_calls": db::int(r, from + 1),
        "cache_hits": db::int(r, from + 2),
        "input_tokens": db::int(r, from + 3),
        "output_tokens": db::int(r, from + 4),
        "cost_micros": cost,
        "cost_usd": cost as f64 / 1e6,
    })
}

async fn grouped(
    db: &Connection,
    by: &str,
    label: &str,
    filter: &str,
    params: &[P],
) -> Result<Vec<Value>, ApiError> {
    let sql = format!("SELECT {by}, {SUMS} FROM llm_calls WHERE {filter} GROUP BY 1 ORDER BY 1");
    let rows = db::rows(db, "read usage", &sql, params.to_vec()).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let mut v = totals(r, 1);
            v[label] = json!(db::text(r, 0));
            v
        })
        .collect())
}

pub async fn get(caller: &Caller, query: &Query) -> crate::Handled {
    let (from, to, period) = match (query.get("from"), query.get("to")) {
        (Some(f), Some(t)) => {
            let (from, to) = range(f, t)?;
            (from, to, "custom".to_string())
        }
        (None, None) => {
            let period = query.get("period").unwrap_or("month");
            let (from, to) = match period {
                "day" => (
                    "date_trunc('day', now() AT TIME ZONE 'UTC')",
                    "date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day'",
                ),
                "month" => (
                    "date_trunc('month', now() AT TIME ZONE 'UTC')",
                    "date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month'",
                ),
                "all" => ("'1970-01-01'::timestamp", "'9999-01-01'::timestamp"),
                _ => {
                    return Err(ApiError::invalid(
                        "period",
                        "expected day, month or all (or from and to)",
                    ));
                }
            };
            (from.to_string(), to.to_string(), period.to_string())
        }
        _ => {
            return Err(ApiError::invalid(
                if query.get("from").is_some() {
                    "to"
                } else {
                    "from"
                },
                "give both from and to",
            ));
        }
    };
    let custom = period == "custom";
    let mut params = vec![P::Str(caller.tenant.clone())];
    let range = if custom {
        params.push(P::Str(from.clone()));
        params.push(P::Str(to.clone()));
        "created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC' AND created_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC'".to_string()
    } else {
        format!(
            "created_at >= ({from}) AT TIME ZONE 'UTC' AND created_at < ({to}) AT TIME ZONE 'UTC'"
        )
    };
    let mut filter = format!("tenant_id = $1 AND {range}");
    // Members and services see their own usage; the tenant's (or another user's) needs an
    // operator.
    let user = match (query.get("user"), caller.owner_filter()) {
        (Some(u), Some(own)) if u != own => {
            tessera_spin_kit::auth::require_role(
                &caller.auth(),
                tessera_spin_kit::auth::Role::Operator,
            )?;
            Some(u)
        }
        (asked, own) => asked.or(own),
    };
    if let Some(user) = user {
        params.push(P::Str(user.to_string()));
        filter.push_str(&format!(" AND user_id = ${}", params.len()));
    }
    let db = connect(&caller.tenant).await?;
    let all = db::one(
        &db,
        "read usage",
        &format!("SELECT {SUMS} FROM llm_calls WHERE {filter}"),
        params.clone(),
    )
    .await?;
    let body = json!({
        "tenant": caller.tenant,
        "period": period,
        "from": if custom { json!(from) } else { Value::Null },
        "to": if custom { json!(to) } else { Value::Null },
        "totals": all.as_ref().map(|r| totals(r, 0)).unwrap_or_default(),
        "by_user": grouped(&db, "user_id", "user", &filter, &params).await?,
        "by_provider": grouped(&db, "provider", "provider", &filter, &params).await?,
        "by_model": grouped(&db, "provider || '/' || model", "model", &filter, &params).await?,
        "by_day": grouped(&db, "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "day", &filter, &params).await?,
    });
    Ok((StatusCode::OK, body))
}
