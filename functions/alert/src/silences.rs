//! Silences: matchers and a window during which matching alerts are not notified (applied
//! when a group flushes, as in Alertmanager).

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use tessera_alerting::{Matcher, Silence};
use tessera_spin_kit::pg::parse_uuid;
use tessera_spin_kit::{ApiError, StatusCode, read_json};

use crate::clock::now_ms;
use crate::db::{self, P};
use crate::{BODY_LIMIT, Handled};

/// A silence as created or replaced (`POST /v1/alerts/silences`, `PUT …/{id}`): the end as
/// `ends_at_ms` or `duration_ms` (one of the two).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AlertSilenceInput")]
pub(crate) struct SilenceInput {
    matchers: Vec<Matcher>,
    /// Unix milliseconds; default now.
    #[serde(default)]
    starts_at_ms: Option<i64>,
    /// Unix milliseconds; or give `duration_ms`.
    #[serde(default)]
    ends_at_ms: Option<i64>,
    #[serde(default)]
    duration_ms: Option<i64>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// Year 9999: later is a typo (and out of `timestamptz`'s comfortable range).
const MAX_MS: i64 = 253_402_300_799_000;

impl SilenceInput {
    fn into_silence(self) -> Result<Silence, ApiError> {
        let starts = self.starts_at_ms.unwrap_or_else(now_ms);
        if !(0..MAX_MS).contains(&starts) {
            return Err(ApiError::invalid(
                "starts_at_ms",
                "`starts_at_ms` is out of range",
            ));
        }
        let ends = match (self.ends_at_ms, self.duration_ms) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "duration_ms",
                    "give `ends_at_ms` or `duration_ms`, not both",
                ));
            }
            (Some(e), None) => e,
            (None, Some(d)) if d > 0 => starts.saturating_add(d),
            (None, Some(_)) => {
                return Err(ApiError::invalid(
                    "duration_ms",
                    "`duration_ms` must be positive",
                ));
            }
            (None, None) => return Err(ApiError::missing("ends_at_ms")),
        };
        if !(0..MAX_MS).contains(&ends) {
            return Err(ApiError::invalid(
                "ends_at_ms",
                "`ends_at_ms` is out of range",
            ));
        }
        let silence = Silence {
            id: String::new(),
            matchers: self.matchers,
            starts_at_ms: starts,
            ends_at_ms: ends,
            created_by: self.created_by.chars().take(200).collect(),
            comment: self.comment.chars().take(2000).collect(),
        };
        silence.validate().map_err(|e| {
            let field = match e {
                tessera_alerting::silence::SilenceError::EndsBeforeStart => "ends_at_ms",
                _ => "matchers",
            };
            ApiError::invalid(field, e.to_string())
        })?;
        Ok(silence)
    }
}

const SELECT: &str = "SELECT id::text, matchers, (extract(epoch FROM starts_at) * 1000)::int8, \
    (extract(epoch FROM ends_at) * 1000)::int8, created_by, comment FROM alert_silences \
    WHERE tenant_id = $1";

fn from_row(r: &spin_sdk::pg::Row) -> Result<Silence, ApiError> {
    Ok(Silence {
        id: db::text(r, 0),
        matchers: serde_json::from_value(db::json(r, 1))
            .map_err(|e| ApiError::internal(format!("stored silence {}: {e}", db::text(r, 0))))?,
        starts_at_ms: db::int(r, 2),
        ends_at_ms: db::int(r, 3),
        created_by: db::text(r, 4),
        comment: db::text(r, 5),
    })
}

fn to_json(s: &Silence, now: i64) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    v["active"] = json!(s.is_active(now));
    v
}

/// The tenant's silences not yet over at `now_ms`.
pub async fn load_current(
    db: &spin_sdk::pg::Connection,
    tenant: &str,
) -> Result<Vec<Silence>, ApiError> {
    let rows = db::rows(
        db,
        "load silences",
        &format!("{SELECT} AND ends_at > now()"),
        vec![P::Str(tenant.into())],
    )
    .await?;
    rows.iter().map(from_row).collect()
}

fn params(tenant: &str, s: &Silence) -> Vec<P> {
    vec![
        P::Str(tenant.into()),
        db::jsonb(&serde_json::to_value(&s.matchers).unwrap_or(Value::Null)),
        P::Int64(s.starts_at_ms),
        P::Int64(s.ends_at_ms),
        P::Str(s.created_by.clone()),
        P::Str(s.comment.clone()),
    ]
}

pub async fn create(req: Request, tenant: &str) -> Handled {
    let input: SilenceInput = read_json(req, BODY_LIMIT).await?;
    let mut silence = input.into_silence()?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let row = db::one(
        &db,
        "insert silence",
        "INSERT INTO alert_silences (tenant_id, matchers, starts_at, ends_at, created_by, comment) \
         VALUES ($1, $2, to_timestamp($3 / 1000.0), to_timestamp($4 / 1000.0), $5, $6) RETURNING id::text",
        params(tenant, &silence),
    )
    .await?
    .ok_or_else(|| ApiError::internal("insert silence: no row"))?;
    silence.id = db::text(&row, 0);
    Ok((StatusCode::CREATED, to_json(&silence, now_ms())))
}

pub async fn list(tenant: &str) -> Handled {
    let db = tessera_spin_kit::connect(tenant).await?;
    let rows = db::rows(
        &db,
        "list silences",
        &format!("{SELECT} ORDER BY starts_at, id"),
        vec![P::Str(tenant.into())],
    )
    .await?;
    let now = now_ms();
    let silences = rows
        .iter()
        .map(|r| from_row(r).map(|s| to_json(&s, now)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((StatusCode::OK, json!({ "silences": silences })))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("silence_not_found", format!("no silence {id}"))
}

pub async fn get(tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let row = db::one(
        &db,
        "get silence",
        &format!("{SELECT} AND id = $2::uuid"),
        vec![P::Str(tenant.into()), P::Str(id.clone())],
    )
    .await?
    .ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::OK, to_json(&from_row(&row)?, now_ms())))
}

pub async fn update(req: Request, tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let input: SilenceInput = read_json(req, BODY_LIMIT).await?;
    let mut silence = input.into_silence()?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let mut p = params(tenant, &silence);
    p.push(P::Str(id.clone()));
    let n = db::execute(
        &db,
        "update silence",
        "UPDATE alert_silences SET matchers = $2, starts_at = to_timestamp($3 / 1000.0), \
         ends_at = to_timestamp($4 / 1000.0), created_by = $5, comment = $6 \
         WHERE tenant_id = $1 AND id = $7::uuid",
        p,
    )
    .await?;
    if n == 0 {
        return Err(not_found(&id));
    }
    silence.id = id;
    Ok((StatusCode::OK, to_json(&silence, now_ms())))
}

pub async fn delete(tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let n = db::execute(
        &db,
        "delete silence",
        "DELETE FROM alert_silences WHERE tenant_id = $1 AND id = $2::uuid",
        vec![P::Str(tenant.into()), P::Str(id.clone())],
    )
    .await?;
    if n == 0 {
        return Err(not_found(&id));
    }
    Ok((StatusCode::OK, json!({ "deleted": id })))
}
