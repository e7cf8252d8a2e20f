//! Circuit breaker rows (`provider_breakers`): tessera-gateway's state machine, stored as
//! JSON and written by compare-and-set on `version`, so two instances recording outcomes at
//! once never lose one (the loser re-reads and re-applies).

use std::collections::HashMap;

use crate::ApiError;
use spin_sdk::pg::Connection;
use tessera_gateway::BreakerState;

use crate::pg::{self as db, P};

/// Every stored breaker: provider → (state, version).
pub async fn load(db: &Connection) -> Result<HashMap<String, (BreakerState, i64)>, ApiError> {
    let rows = db::rows(
        db,
        "read breakers",
        "SELECT provider, state::text, version FROM provider_breakers",
        vec![],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let state = serde_json::from_str(&db::text(r, 1)).unwrap_or_default();
            (db::text(r, 0), (state, db::int(r, 2)))
        })
        .collect())
}

/// Applies `change` to the provider's state. `None` from `change` writes nothing and returns
/// false (e.g. the breaker refuses the call); an unchanged state is not written either.
pub async fn update(
    db: &Connection,
    provider: &str,
    change: impl Fn(BreakerState) -> Option<BreakerState>,
) -> Result<bool, ApiError> {
    update_known(db, provider, None, change).await
}

/// As [`update`], starting from `known` — the state and version read earlier in this turn —
/// instead of reading it again. Every write is a compare-and-set on the version it started
/// from, so when another instance changed the row meanwhile, it fails and the state is read
/// again and `change` re-applied. Starting from `known` saves a round trip in the common case.
pub async fn update_known(
    db: &Connection,
    provider: &str,
    known: Option<&(BreakerState, i64)>,
    change: impl Fn(BreakerState) -> Option<BreakerState>,
) -> Result<bool, ApiError> {
    let mut known = known.map(|(state, version)| (state.clone(), Some(*version)));
    for _ in 0..5 {
        let (old, version) = match known.take() {
            Some(k) => k,
            None => read(db, provider).await?,
        };
        let Some(new) = change(old.clone()) else {
            return Ok(false);
        };
        if new == old || write(db, provider, &new, version).await? {
            return Ok(true);
        }
    }
    Err(ApiError::dependency(
        "breaker_contention",
        format!("could not update the breaker of {provider}"),
    ))
}

/// The provider's state and version; the default state and no version when it has no row.
async fn read(db: &Connection, provider: &str) -> Result<(BreakerState, Option<i64>), ApiError> {
    let row = db::one(
        db,
        "read breaker",
        "SELECT state::text, version FROM provider_breakers WHERE provider = $1",
        vec![P::Str(provider.into())],
    )
    .await?;
    Ok(match &row {
        Some(r) => (
            serde_json::from_str(&db::text(r, 0)).unwrap_or_default(),
            Some(db::int(r, 1)),
        ),
        None => (BreakerState::default(), None),
    })
}

/// Writes `state` if the row is still at `version` (or still absent); whether it was written.
async fn write(
    db: &Connection,
    provider: &str,
    state: &BreakerState,
    version: Option<i64>,
) -> Result<bool, ApiError> {
    let state = serde_json::to_string(state).expect("breaker state serialises");
    let written = match version {
        Some(v) => {
            db::execute(
                db,
                "write breaker",
                "UPDATE provider_breakers SET state = $2::jsonb, version = version + 1, updated_at = now()
                 WHERE provider = $1 AND version = $3",
                vec![P::Str(provider.into()), P::Str(state), P::Int64(v)],
            )
            .await?
        }
        None => {
            db::execute(
                db,
                "write breaker",
                "INSERT INTO provider_breakers (provider, state) VALUES ($1, $2::jsonb) ON CONFLICT (provider) DO NOTHING",
                vec![P::Str(provider.into()), P::Str(state)],
            )
            .await?
        }
    };
    Ok(written == 1)
}
