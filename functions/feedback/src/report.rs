//! `GET /v1/feedback/report?from&to&scope&threshold`: the feedback report of a tenant.
//! `from`/`to` are UTC days, both inclusive; without them, the 30 complete days before today.
//!
//! The nightly cron (functions/feedback-report) stores the report of the default window (the
//! 30 complete UTC days before today, scope `all`, default threshold). A request for a stored
//! range is answered from the table (`"source": "stored"`); any other is computed on demand
//! (`"source": "computed"`) and, when it covers complete days only (feedback on them is
//! final), stored for the next request. A range that includes today is always computed.

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_api::{Query, echo};
use tessera_feedback::cluster::DEFAULT_THRESHOLD;
use tessera_feedback::queries::{self, RatedRow, valid_day, valid_scope};
use tessera_feedback::report;
use tessera_spin_kit::{ApiError, StatusCode, connect};

use crate::db::{self, P};
use crate::identity::Caller;

/// Longest range, in days.
const MAX_DAYS: i64 = 366;

struct Params {
    from: Option<String>,
    to: Option<String>,
    scope: String,
    threshold: f32,
}

/// A parameter, percent-decoded (scopes carry `/`, `:` and `@`; NULs were refused).
fn param(query: &Query, name: &str) -> Option<String> {
    query.get(name).map(str::to_string)
}

fn parse(query: &Query) -> Result<Params, ApiError> {
    let day = |name: &str| -> Result<Option<String>, ApiError> {
        match param(query, name) {
            None => Ok(None),
            Some(d) if valid_day(&d) => Ok(Some(d)),
            Some(d) => Err(ApiError::invalid(
                name,
                format!("expected a day as YYYY-MM-DD, got {}", echo(&d)),
            )),
        }
    };
    let scope = param(query, "scope").unwrap_or_else(|| "all".into());
    if !valid_scope(&scope) {
        return Err(ApiError::invalid(
            "scope",
            "expected all, user:<id> or page:/<path>",
        ));
    }
    let threshold = match param(query, "threshold") {
        None => DEFAULT_THRESHOLD,
        Some(t) => t
            .parse::<f32>()
            .ok()
            .filter(|t| (0.05..=0.95).contains(t))
            .ok_or_else(|| {
                ApiError::invalid("threshold", "expected a cosine distance from 0.05 to 0.95")
            })?,
    };
    Ok(Params {
        from: day("from")?,
        to: day("to")?,
        scope,
        threshold,
    })
}

pub async fn get(caller: &Caller, query: &Query) -> crate::Handled {
    let p = parse(query)?;
    let db = connect(&caller.tenant).await?;
    let window = db::one(&db, "default window", queries::DEFAULT_WINDOW, vec![])
        .await?
        .ok_or_else(|| ApiError::internal("default window: no row"))?;
    let (default_from, default_to, today) = (
        db::text(&window, 0),
        db::text(&window, 1),
        db::text(&window, 2),
    );
    // Neither day: the stored window. Only `from`: through today. Only `to`: 30 days to it.
    let to = match (&p.from, &p.to) {
        (_, Some(to)) => to.clone(),
        (Some(_), None) => today.clone(),
        (None, None) => default_to,
    };
    let from = match &p.from {
        Some(from) => from.clone(),
        None if p.to.is_some() => shift(&db, &to, -29).await?,
        None => default_from,
    };
    if from > to {
        return Err(ApiError::invalid(
            "from",
            format!("from ({from}) is after to ({to})"),
        ));
    }
    if span(&db, &from, &to).await? >= MAX_DAYS {
        return Err(ApiError::invalid(
            "from",
            format!("a report covers at most {MAX_DAYS} days"),
        ));
    }
    let complete = to < today;
    let key = |extra: Vec<P>| {
        let mut v = vec![
            P::Str(caller.tenant.clone()),
            P::Str(p.scope.clone()),
            P::Str(from.clone()),
            P::Str(to.clone()),
            P::Floating32(p.threshold),
        ];
        v.extend(extra);
        v
    };
    if complete
        && let Some(row) = db::one(&db, "read stored report", queries::STORED, key(vec![])).await?
    {
        return Ok((
            StatusCode::OK,
            answer(
                caller,
                &p,
                &from,
                &to,
                "stored",
                &db::text(&row, 1),
                db::json(&row, 0),
            ),
        ));
    }
    let built = compute(&db, &caller.tenant, &p.scope, &from, &to, p.threshold).await?;
    let body = serde_json::to_value(&built).unwrap_or_default();
    if complete {
        db::execute(
            &db,
            "store report",
            queries::STORE,
            key(vec![P::Str(body.to_string())]),
        )
        .await?;
    }
    let now = db::one(
        &db,
        "clock",
        &format!("SELECT to_char(now() AT TIME ZONE 'UTC', {})", db::ISO),
        vec![],
    )
    .await?
    .map(|r| db::text(&r, 0))
    .unwrap_or_default();
    Ok((
        StatusCode::OK,
        answer(caller, &p, &from, &to, "computed", &now, body),
    ))
}

fn answer(
    caller: &Caller,
    p: &Params,
    from: &str,
    to: &str,
    source: &str,
    computed_at: &str,
    report: Value,
) -> Value {
    let mut out = json!({
        "tenant": caller.tenant, "scope": p.scope, "from": from, "to": to, "threshold": p.threshold,
        "source": source, "computed_at": computed_at,
    });
    if let (Some(o), Value::Object(r)) = (out.as_object_mut(), report) {
        for (k, v) in r {
            o.entry(k).or_insert(v);
        }
    }
    out
}

pub async fn compute(
    db: &Connection,
    tenant: &str,
    scope: &str,
    from: &str,
    to: &str,
    threshold: f32,
) -> Result<report::Report, ApiError> {
    let rows = db::rows(
        db,
        "read rated messages",
        queries::RATED,
        vec![
            P::Str(tenant.into()),
            P::Str(from.into()),
            P::Str(to.into()),
            P::Str(scope.into()),
        ],
    )
    .await?;
    let messages = rows
        .iter()
        .map(|r| {
            RatedRow {
                message_id: db::text(r, 0),
                question: db::text(r, 1),
                embedding: db::opt_text(r, 2),
                up: db::int(r, 3),
                down: db::int(r, 4),
                cost_micros: db::int(r, 5),
                steps: db::text(r, 6),
                sources: db::int(r, 7),
                tags: db::text(r, 8),
            }
            .into_message()
        })
        .collect();
    Ok(report::build(messages, threshold))
}

async fn shift(db: &Connection, day: &str, days: i32) -> Result<String, ApiError> {
    let row = db::one(
        db,
        "date arithmetic",
        "SELECT ($1::date + $2)::text",
        vec![P::Str(day.into()), P::Int32(days)],
    )
    .await?;
    Ok(row.map(|r| db::text(&r, 0)).unwrap_or_default())
}

async fn span(db: &Connection, from: &str, to: &str) -> Result<i64, ApiError> {
    let row = db::one(
        db,
        "date arithmetic",
        "SELECT ($2::date - $1::date)::int8",
        vec![P::Str(from.into()), P::Str(to.into())],
    )
    .await?;
    Ok(row.map(|r| db::int(&r, 0)).unwrap_or_default())
}
