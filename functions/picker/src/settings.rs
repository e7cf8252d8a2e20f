//! A tenant's discovery settings (tessera-picking's `DiscoverySettings`): the metric
//! criteria, fuzzy weights, ensemble weights per picker, how many suggestions, the
//! watchlist's maximum size and the index ticker.

use serde_json::json;
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_picking::discovery::DiscoverySettings;
use tessera_spin_kit::{ApiError, StatusCode, read_json};

use crate::db;
use crate::{BODY_LIMIT, Handled};

pub async fn load(db: &Connection, tenant: &str) -> Result<DiscoverySettings, ApiError> {
    let row = db::one(
        db,
        "load settings",
        "SELECT settings FROM discovery_settings WHERE tenant_id = $1",
        vec![db::str_param(tenant)],
    )
    .await?;
    match row {
        None => Ok(DiscoverySettings::default()),
        Some(r) => serde_json::from_value(db::json(&r, 0))
            .map_err(|e| ApiError::internal(format!("stored settings of {tenant}: {e}"))),
    }
}

pub async fn get(tenant: &str) -> Handled {
    let db = tessera_spin_kit::connect(tenant).await?;
    let settings = load(&db, tenant).await?;
    Ok((StatusCode::OK, json!({ "settings": settings })))
}

pub async fn put(req: Request, tenant: &str) -> Handled {
    let settings: DiscoverySettings = read_json(req, BODY_LIMIT).await?;
    settings
        .validate()
        .map_err(|e| ApiError::invalid(&e.field, e.message))?;
    let value = serde_json::to_value(&settings).unwrap_or_default();
    let db = tessera_spin_kit::connect(tenant).await?;
    db::execute(
        &db,
        "save settings",
        "INSERT INTO discovery_settings (tenant_id, settings) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings, updated_at = now()",
        vec![db::str_param(tenant), db::jsonb(&value)],
    )
    .await?;
    Ok((StatusCode::OK, json!({ "settings": value })))
}
