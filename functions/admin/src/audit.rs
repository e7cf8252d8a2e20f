//! `GET /v1/admin/audit?key_prefix=&user_id=&method=&route=&status=&since=&until=&before_id=&limit=`:
//! the tenant's audit rows, newest first; `route` matches a path prefix, `next_before_id`
//! pages back.

use serde_json::json;
use tessera_api::Query;
use tessera_spin_kit::auth::{Caller, key};
use tessera_spin_kit::identity::valid_identity;
use tessera_spin_kit::pg::{self, P};
use tessera_spin_kit::{ApiError, StatusCode, connect};

use crate::ISO;

const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 500;

fn timestamp(query: &Query, name: &str) -> Result<Option<String>, ApiError> {
    let Some(t) = query.get(name) else {
        return Ok(None);
    };
    if t.len() > 40
        || !t
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-:.+ ".contains(&c))
    {
        return Err(ApiError::invalid(
            name,
            format!("{name} is an ISO 8601 timestamp"),
        ));
    }
    Ok(Some(t.to_string()))
}

fn number(
    query: &Query,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, ApiError> {
    query
        .get(name)
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        name,
                        format!(
                            "{name} is a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                })
        })
        .transpose()
}

pub async fn list(caller: &Caller, query: &Query) -> crate::Handled {
    let key_prefix = query.get("key_prefix");
    if let Some(p) = key_prefix
        && !key::valid_prefix(p)
    {
        return Err(ApiError::invalid(
            "key_prefix",
            "a key prefix is 12 lowercase hex digits",
        ));
    }
    let user = query.get("user_id");
    if let Some(u) = user
        && !valid_identity(u)
    {
        return Err(ApiError::invalid(
            "user_id",
            "user_id is 1-64 letters, digits, '-', '_', '.' or '@'",
        ));
    }
    let method = query.get("method").map(str::to_ascii_uppercase);
    if let Some(m) = &method
        && !["POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str())
    {
        return Err(ApiError::invalid(
            "method",
            "method is POST, PUT, PATCH or DELETE (reads are not audited)",
        ));
    }
    let route = query.get("route");
    if let Some(r) = route
        && (!r.starts_with('/') || r.len() > 512)
    {
        return Err(ApiError::invalid(
            "route",
            "route is a path prefix starting with '/'",
        ));
    }
    let status = number(query, "status", 100..=599)?;
    let before_id = number(query, "before_id", 1..=i64::MAX)?;
    let limit = number(query, "limit", 1..=MAX_PAGE)?.unwrap_or(DEFAULT_PAGE);
    let since = timestamp(query, "since")?;
    let until = timestamp(query, "until")?;
    let db = connect(&caller.tenant).await?;
    let rows = pg::rows(
        &db,
        "read the audit log",
        &format!(
            "SELECT id, to_char(at AT TIME ZONE 'UTC', {ISO}), key_prefix, user_id, role, method,
                    route, target_id, status::int8, request_id
             FROM audit_log
             WHERE tenant_id = $1
               AND ($2::text IS NULL OR key_prefix = $2) AND ($3::text IS NULL OR user_id = $3)
               AND ($4::text IS NULL OR method = $4)
               AND ($5::text IS NULL OR starts_with(route, $5))
               AND ($6::int8 IS NULL OR status = $6) AND ($7::int8 IS NULL OR id < $7)
               AND ($8::text IS NULL OR at >= $8::timestamptz)
               AND ($9::text IS NULL OR at < $9::timestamptz)
             ORDER BY id DESC LIMIT $10"
        ),
        vec![
            P::Str(caller.tenant.clone()),
            pg::opt_str(key_prefix),
            pg::opt_str(user),
            pg::opt_str(method.as_deref()),
            pg::opt_str(route),
            status.map_or(P::DbNull, P::Int64),
            before_id.map_or(P::DbNull, P::Int64),
            pg::opt_str(since.as_deref()),
            pg::opt_str(until.as_deref()),
            P::Int64(limit),
        ],
    )
    .await
    .map_err(|e| {
        if e.status == 400 {
            e.with_field("since")
        } else {
            e
        }
    })?;
    let entries: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "id": pg::int(r, 0),
                "at": pg::text(r, 1),
                "key_prefix": pg::opt_text(r, 2),
                "user_id": pg::opt_text(r, 3),
                "role": pg::text(r, 4),
                "method": pg::text(r, 5),
                "route": pg::text(r, 6),
                "target_id": pg::opt_text(r, 7),
                "status": pg::int(r, 8),
                "request_id": pg::opt_text(r, 9),
            })
        })
        .collect();
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e["id"].clone()))
        .flatten();
    Ok((
        StatusCode::OK,
        json!({ "entries": entries, "next_before_id": next }),
    ))
}
