//! API keys of the caller's tenant: create (the full key answered once), list (prefixes
//! only), rotate, revoke.

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_spin_kit::auth::{Caller, Role, key};
use tessera_spin_kit::identity::valid_identity;
use tessera_spin_kit::pg::{self, P};
use tessera_spin_kit::{ApiError, StatusCode, connect, read_json};

use crate::ISO;

const MAX_NAME_CHARS: usize = 100;
const MAX_RATE_LIMIT: i64 = 1_000_000;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// member, service, operator or admin.
    role: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rate_limit_per_minute: Option<i64>,
}

/// What a key is, as stored.
struct Spec {
    role: Role,
    user: Option<String>,
    name: String,
    rate_limit: Option<i64>,
}

fn validate(k: NewKey) -> Result<Spec, ApiError> {
    let role = Role::parse(k.role.trim()).ok_or_else(|| {
        ApiError::invalid(
            "role",
            format!(
                "expected admin, operator, member or service, got {}",
                tessera_api::echo(&k.role)
            ),
        )
    })?;
    if let Some(u) = &k.user_id
        && !valid_identity(u)
    {
        return Err(ApiError::invalid(
            "user_id",
            "user_id is 1-64 letters, digits, '-', '_', '.' or '@'",
        ));
    }
    let name = k.name.unwrap_or_default().trim().to_string();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::too_large(
            Some("name"),
            format!("`name` is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if let Some(n) = k.rate_limit_per_minute
        && !(1..=MAX_RATE_LIMIT).contains(&n)
    {
        return Err(ApiError::invalid(
            "rate_limit_per_minute",
            format!("rate_limit_per_minute is 1 to {MAX_RATE_LIMIT} (omit it for no limit)"),
        ));
    }
    Ok(Spec {
        role,
        user: k.user_id,
        name,
        rate_limit: k.rate_limit_per_minute,
    })
}

/// A new random key (WASI randomness: the host's CSPRNG).
fn new_key() -> (String, String) {
    let bytes = spin_sdk::wasip3::random::random::get_random_bytes(38);
    let mut prefix = [0u8; 6];
    let mut secret = [0u8; 32];
    prefix.copy_from_slice(&bytes[..6]);
    secret.copy_from_slice(&bytes[6..38]);
    key::format_key(&prefix, &secret)
}

const COLUMNS: &str = "prefix, role, user_id, name, rate_limit_per_minute::int8, rotated_from";

fn timestamps() -> String {
    format!(
        "to_char(created_at AT TIME ZONE 'UTC', {ISO}), to_char(last_used_at AT TIME ZONE 'UTC', {ISO}),
         to_char(revoked_at AT TIME ZONE 'UTC', {ISO})"
    )
}

fn describe(row: &spin_sdk::pg::Row) -> Value {
    json!({
        "prefix": pg::text(row, 0),
        "role": pg::text(row, 1),
        "user_id": pg::opt_text(row, 2),
        "name": pg::text(row, 3),
        "rate_limit_per_minute": pg::opt_int(row, 4),
        "rotated_from": pg::opt_text(row, 5),
        "created_at": pg::text(row, 6),
        "last_used_at": pg::opt_text(row, 7),
        "revoked_at": pg::opt_text(row, 8),
    })
}

/// Inserts a key of `tenant`; answers its description with the full key (shown this once).
async fn insert(
    db: &Connection,
    tenant: &str,
    spec: &Spec,
    rotated_from: Option<&str>,
) -> Result<Value, ApiError> {
    // A prefix collision (1 in 2^48 per pair) answers 500 rather than overwriting.
    let (prefix, full) = new_key();
    let secret = key::parse(&full)
        .map_err(|_| ApiError::internal("a generated key does not parse"))?
        .secret;
    let row = pg::one(
        db,
        "store the key",
        &format!(
            "INSERT INTO api_keys (tenant_id, prefix, secret_hash, role, user_id, name,
                                   rate_limit_per_minute, rotated_from)
             VALUES ($1, $2, $3, $4, $5, $6, $7::int8::int4, $8)
             RETURNING {COLUMNS}, {}",
            timestamps()
        ),
        vec![
            P::Str(tenant.into()),
            P::Str(prefix),
            P::Str(key::hash_secret(secret)),
            P::Str(spec.role.as_str().into()),
            pg::opt_str(spec.user.as_deref()),
            P::Str(spec.name.clone()),
            spec.rate_limit.map_or(P::DbNull, P::Int64),
            pg::opt_str(rotated_from),
        ],
    )
    .await?
    .ok_or_else(|| ApiError::internal("store the key: no row returned"))?;
    let mut v = describe(&row);
    v["tenant"] = json!(tenant);
    v["key"] = json!(full);
    Ok(v)
}

pub async fn create(req: Request, caller: &Caller) -> crate::Handled {
    let spec = validate(read_json::<NewKey>(req, crate::BODY_LIMIT).await?)?;
    let db = connect(&caller.tenant).await?;
    Ok((
        StatusCode::CREATED,
        insert(&db, &caller.tenant, &spec, None).await?,
    ))
}

pub async fn list(caller: &Caller) -> crate::Handled {
    let db = connect(&caller.tenant).await?;
    let rows = pg::rows(
        &db,
        "list keys",
        &format!(
            "SELECT {COLUMNS}, {} FROM api_keys WHERE tenant_id = $1
             ORDER BY created_at DESC, prefix",
            timestamps()
        ),
        vec![P::Str(caller.tenant.clone())],
    )
    .await?;
    Ok((
        StatusCode::OK,
        json!({ "keys": rows.iter().map(describe).collect::<Vec<_>>() }),
    ))
}

fn checked_prefix(prefix: &str) -> Result<String, ApiError> {
    if key::valid_prefix(prefix) {
        Ok(prefix.to_string())
    } else {
        Err(ApiError::invalid(
            "prefix",
            "a key prefix is 12 lowercase hex digits (the part after tsk_)",
        ))
    }
}

fn no_key(prefix: &str) -> ApiError {
    ApiError::not_found("key_not_found", format!("no key with prefix {prefix:?}"))
        .with_field("prefix")
}

/// Revokes `prefix` within the open transaction; refuses the tenant's last active admin key
/// (nobody could make keys any more).
async fn revoke_in(db: &Connection, tenant: &str, prefix: &str) -> Result<Value, ApiError> {
    let row = pg::one(
        db,
        "lock the key",
        "SELECT role, revoked_at IS NOT NULL FROM api_keys
         WHERE tenant_id = $1 AND prefix = $2 FOR UPDATE",
        vec![P::Str(tenant.into()), P::Str(prefix.into())],
    )
    .await?
    .ok_or_else(|| no_key(prefix))?;
    if pg::boolean(&row, 1) {
        return Err(
            ApiError::conflict("key_revoked", format!("key {prefix} is already revoked"))
                .with_field("prefix"),
        );
    }
    Ok(json!({ "role": pg::text(&row, 0) }))
}

async fn last_admin_guard(db: &Connection, tenant: &str, prefix: &str) -> Result<(), ApiError> {
    let others = pg::one(
        db,
        "count admin keys",
        "SELECT count(*)::int8 FROM api_keys
         WHERE tenant_id = $1 AND role = 'admin' AND revoked_at IS NULL AND prefix <> $2",
        vec![P::Str(tenant.into()), P::Str(prefix.into())],
    )
    .await?
    .map_or(0, |r| pg::int(&r, 0));
    if others == 0 {
        return Err(ApiError::conflict(
            "last_admin_key",
            "this is the tenant's last active admin key; create another admin key first",
        )
        .with_field("prefix"));
    }
    Ok(())
}

async fn mark_revoked(db: &Connection, tenant: &str, prefix: &str) -> Result<Value, ApiError> {
    let row = pg::one(
        db,
        "revoke the key",
        &format!(
            "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND prefix = $2
             RETURNING {COLUMNS}, {}",
            timestamps()
        ),
        vec![P::Str(tenant.into()), P::Str(prefix.into())],
    )
    .await?
    .ok_or_else(|| no_key(prefix))?;
    Ok(describe(&row))
}

pub async fn revoke(caller: &Caller, prefix: &str) -> crate::Handled {
    let prefix = checked_prefix(prefix)?;
    let db = connect(&caller.tenant).await?;
    pg::begin(&db).await?;
    let result = async {
        let current = revoke_in(&db, &caller.tenant, &prefix).await?;
        if current["role"] == "admin" {
            last_admin_guard(&db, &caller.tenant, &prefix).await?;
        }
        mark_revoked(&db, &caller.tenant, &prefix).await
    }
    .await;
    match result {
        Ok(v) => {
            pg::commit(&db).await?;
            Ok((StatusCode::OK, v))
        }
        Err(e) => {
            pg::rollback(&db).await;
            Err(e)
        }
    }
}

pub async fn rotate(caller: &Caller, prefix: &str) -> crate::Handled {
    let prefix = checked_prefix(prefix)?;
    let db = connect(&caller.tenant).await?;
    pg::begin(&db).await?;
    let result = async {
        revoke_in(&db, &caller.tenant, &prefix).await?;
        let old = mark_revoked(&db, &caller.tenant, &prefix).await?;
        let spec = Spec {
            role: Role::parse(old["role"].as_str().unwrap_or_default())
                .ok_or_else(|| ApiError::internal("api_keys.role holds an unknown role"))?,
            user: old["user_id"].as_str().map(str::to_string),
            name: old["name"].as_str().unwrap_or_default().to_string(),
            rate_limit: old["rate_limit_per_minute"].as_i64(),
        };
        insert(&db, &caller.tenant, &spec, Some(&prefix)).await
    }
    .await;
    match result {
        Ok(v) => {
            pg::commit(&db).await?;
            Ok((StatusCode::CREATED, v))
        }
        Err(e) => {
            pg::rollback(&db).await;
            Err(e)
        }
    }
}
