//! `GET|PUT /v1/validator/limits`: a tenant's hard limits and breaker rules. PUT merges the
//! fields it names into the current ones; the result is checked whole before it is stored.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_spin_kit::{ApiError, StatusCode, connect, read_json};
use tessera_validation::breaker::BreakerRules;
use tessera_validation::trade::RiskLimits;

use crate::db::{self, P};
use crate::identity::Caller;

/// The tenant's limits and rules; the defaults until the tenant sets its own.
pub async fn load(db: &Connection, tenant: &str) -> Result<(RiskLimits, BreakerRules), ApiError> {
    let row = db::one(
        db,
        "read limits",
        "SELECT limits::text, breaker_rules::text FROM validator_limits WHERE tenant_id = $1",
        vec![P::Str(tenant.into())],
    )
    .await?;
    let Some(row) = row else {
        return Ok((RiskLimits::default(), BreakerRules::default()));
    };
    // Stored rows were checked on the way in; a field added later takes its default.
    let limits = serde_json::from_value(db::json(&row, 0))
        .map_err(|e| ApiError::internal(format!("stored limits: {e}")))?;
    let rules = serde_json::from_value(db::json(&row, 1))
        .map_err(|e| ApiError::internal(format!("stored breaker rules: {e}")))?;
    Ok((limits, rules))
}

async fn answer(db: &Connection, tenant: &str) -> Result<Value, ApiError> {
    let (limits, rules) = load(db, tenant).await?;
    let meta = db::one(
        db,
        "read limits",
        &format!(
            "SELECT updated_by, to_char(updated_at AT TIME ZONE 'UTC', {}) FROM validator_limits WHERE tenant_id = $1",
            db::ISO
        ),
        vec![P::Str(tenant.into())],
    )
    .await?;
    Ok(json!({
        "tenant_id": tenant,
        "limits": limits,
        "breaker_rules": rules,
        "updated_by": meta.as_ref().and_then(|r| db::opt_text(r, 0)),
        "updated_at": meta.as_ref().and_then(|r| db::opt_text(r, 1)),
        "default": meta.is_none(),
    }))
}

pub async fn get(caller: &Caller) -> crate::Handled {
    let db = connect(&caller.tenant).await?;
    Ok((StatusCode::OK, answer(&db, &caller.tenant).await?))
}

/// `PUT /v1/validator/limits`'s body: the fields named are laid over the current ones (the
/// rest keep their values), and the result is read as `RiskLimits` / `BreakerRules`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ValidatorLimitsUpdate")]
pub(crate) struct Update {
    /// The hard limits to change.
    #[serde(default)]
    #[schemars(with = "Option<RiskLimits>")]
    limits: Option<Map<String, Value>>,
    /// The breaker rules to change.
    #[serde(default)]
    #[schemars(with = "Option<BreakerRules>")]
    breaker_rules: Option<Map<String, Value>>,
}

/// `current` with `changes` laid over it, read back as `T`; errors name `prefix.field`.
fn merge<T: serde::de::DeserializeOwned + serde::Serialize>(
    current: &T,
    changes: Option<Map<String, Value>>,
    prefix: &str,
) -> Result<T, ApiError> {
    let mut value = serde_json::to_value(current).map_err(|e| ApiError::internal(e.to_string()))?;
    if let (Some(changes), Some(object)) = (changes, value.as_object_mut()) {
        for (k, v) in changes {
            object.insert(k, v);
        }
    }
    tessera_api::parse_json::<T>(value.to_string().as_bytes()).map_err(|mut e| {
        let field = e.field.take().unwrap_or_default();
        let field = if field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        e.with_field(&field)
    })
}

pub async fn put(req: Request, caller: &Caller) -> crate::Handled {
    let update: Update = read_json(req, crate::BODY_LIMIT).await?;
    if update.limits.is_none() && update.breaker_rules.is_none() {
        return Err(ApiError::missing("limits"));
    }
    let db = connect(&caller.tenant).await?;
    let (limits, rules) = load(&db, &caller.tenant).await?;
    let limits: RiskLimits = merge(&limits, update.limits, "limits")?;
    let rules: BreakerRules = merge(&rules, update.breaker_rules, "breaker_rules")?;
    limits
        .check()
        .map_err(|e| ApiError::invalid(&format!("limits.{}", e.field), e.message))?;
    rules.check().map_err(|(field, message)| {
        ApiError::invalid(&format!("breaker_rules.{field}"), message)
    })?;
    db::execute(
        &db,
        "store limits",
        "INSERT INTO validator_limits (tenant_id, limits, breaker_rules, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (tenant_id) DO UPDATE
         SET limits = EXCLUDED.limits, breaker_rules = EXCLUDED.breaker_rules,
             updated_by = EXCLUDED.updated_by, updated_at = now()",
        vec![
            P::Str(caller.tenant.clone()),
            db::jsonb(&serde_json::to_value(&limits).unwrap_or_default()),
            db::jsonb(&serde_json::to_value(&rules).unwrap_or_default()),
            db::opt_str(caller.user.as_deref()),
        ],
    )
    .await?;
    Ok((StatusCode::OK, answer(&db, &caller.tenant).await?))
}
