//! The price-move monitor (issue 15): every `monitor_interval_s` (60 by default) one
//! dispatcher tick scans the last window of 1-minute bars of every tenant with
//! tessera_alerting::monitor::scan and raises a `price.move` event per qualifying symbol,
//! routed like any other event. The clock row makes one tick the scanner however many run at
//! once; cooldowns live in Postgres because the component keeps no state between requests.

use crate::clock::now_ms;
use crate::db::{self, P};
use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use std::collections::BTreeMap;
use tessera_alerting::monitor::{self, AssetClass, Bar, MonitorConfig, MonitorState};
use tessera_spin_kit::ApiError;

/// Scans when the interval has passed since the last scan; `None` when it has not.
pub async fn run_if_due(db: &Connection) -> Result<Option<Value>, ApiError> {
    let now = now_ms();
    if !claim(db, now, interval_ms().await).await? {
        return Ok(None);
    }
    let config = MonitorConfig::default();
    let since = now - i64::try_from(config.window.as_millis()).unwrap_or(i64::MAX);
    let mut raised = 0usize;
    for (tenant, bars) in recent_bars(db, since).await? {
        raised += scan_tenant(db, &tenant, &bars, now, &config).await?;
    }
    Ok(Some(json!({ "raised": raised })))
}

/// Asks the picker (`http://picker.spin.internal`) to run the pending event discovery runs,
/// on every tick while any is pending, so a run the picker could not start yet (another run
/// held the tenant's slot, the picker was unreachable) is asked for again. What the picker
/// answered, or `None` when nothing is pending.
pub async fn request_discovery_runs(db: &Connection) -> Result<Option<Value>, ApiError> {
    let pending = db::one(
        db,
        "pending discovery requests",
        "SELECT 1 FROM discovery_requests WHERE handled_at IS NULL \
           AND (claimed_at IS NULL OR claimed_at < now() - interval '300 seconds') LIMIT 1",
        vec![],
    )
    .await?;
    if pending.is_none() {
        return Ok(None);
    }
    let request = http::Request::post("http://picker.spin.internal/internal/discovery/requests")
        .header("content-type", "application/json")
        .body(spin_sdk::http::FullBody::new(bytes::Bytes::new()))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let answer = async {
        let resp = tessera_spin_kit::outbound::send(request).await?;
        let status = resp.status().as_u16();
        let body = spin_sdk::http::body::IncomingBodyExt::bytes(resp.into_body()).await?;
        Ok::<_, spin_sdk::wasip3::http::types::ErrorCode>((status, body))
    };
    Ok(Some(match answer.await {
        Ok((status, body)) => json!({
            "status": status,
            "answer": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
        }),
        Err(e) => {
            eprintln!("alert: the picker could not be asked for discovery runs: {e:?}");
            json!({ "error": format!("{e:?}") })
        }
    }))
}

/// Seconds between scans; the `monitor_interval_s` variable (tests shorten it).
async fn interval_ms() -> i64 {
    spin_sdk::variables::get("monitor_interval_s")
        .await
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(60_000, |s| (s * 1000.0) as i64)
}

/// Takes this interval's scan, atomically: only one tick's UPDATE matches.
async fn claim(db: &Connection, now: i64, interval: i64) -> Result<bool, ApiError> {
    let row = db::one(
        db,
        "claim monitor scan",
        "UPDATE alert_monitor_clock SET last_scan_ms = $1, scans = scans + 1 \
         WHERE id = 1 AND last_scan_ms <= $1 - $2 RETURNING scans",
        vec![P::Int64(now), P::Int64(interval)],
    )
    .await?;
    Ok(row.is_some())
}

/// Minute bars since `since_ms`, grouped by tenant, with each symbol's asset class.
async fn recent_bars(
    db: &Connection,
    since_ms: i64,
) -> Result<BTreeMap<String, Vec<Bar>>, ApiError> {
    let rows = db::rows(
        db,
        "recent minute bars",
        "SELECT b.tenant_id, b.symbol, s.asset_class, \
                (extract(epoch FROM b.time) * 1000)::bigint, b.open, b.close \
         FROM market_bars b \
         JOIN market_symbols s ON s.tenant_id = b.tenant_id AND s.ticker = b.symbol \
         WHERE b.interval = '1m' AND b.time >= to_timestamp($1 / 1000.0)",
        vec![P::Int64(since_ms)],
    )
    .await?;
    let mut by_tenant: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for row in &rows {
        let symbol = db::text(row, 1);
        let asset_class = asset_class(db::opt_text(row, 2).as_deref(), &symbol);
        by_tenant.entry(db::text(row, 0)).or_default().push(Bar {
            symbol,
            asset_class,
            start_ms: db::int(row, 3),
            open: db::float(row, 4),
            close: db::float(row, 5),
        });
    }
    Ok(by_tenant)
}

/// The market tables' class as the rule sees it: ETFs trade like stocks; a symbol with no
/// class is judged by its shape (an OCC option symbol is an option).
fn asset_class(class: Option<&str>, symbol: &str) -> AssetClass {
    match class {
        Some("stock" | "etf") => AssetClass::Stock,
        Some("option") => AssetClass::Option,
        Some(_) => AssetClass::Other,
        None => AssetClass::guess(symbol),
    }
}

/// One tenant's scan: cooldowns in, moves raised as events, cooldowns out, in one
/// transaction so a crash leaves either both or neither.
async fn scan_tenant(
    db: &Connection,
    tenant: &str,
    bars: &[Bar],
    now: i64,
    config: &MonitorConfig,
) -> Result<usize, ApiError> {
    db::begin(db).await?;
    let result = scan_in(db, tenant, bars, now, config).await;
    match result {
        Ok(n) => {
            db::commit(db).await?;
            Ok(n)
        }
        Err(e) => {
            db::rollback(db).await;
            Err(e)
        }
    }
}

async fn scan_in(
    db: &Connection,
    tenant: &str,
    bars: &[Bar],
    now: i64,
    config: &MonitorConfig,
) -> Result<usize, ApiError> {
    let t = P::Str(tenant.into());
    let mut state = MonitorState::default();
    for row in db::rows(
        db,
        "monitor cooldowns",
        "SELECT symbol, last_alert_ms FROM alert_monitor_cooldowns WHERE tenant_id = $1",
        vec![t.clone()],
    )
    .await?
    {
        state
            .last_alert_ms
            .insert(db::text(&row, 0), db::int(&row, 1));
    }
    let moves = monitor::scan(bars, now, config, &mut state);
    for change in &moves {
        let event = change.to_event(now);
        // One event per symbol and move end, whichever scan finds it.
        let key = format!(
            "{}:{}:{}",
            monitor::EVENT_TYPE,
            change.symbol,
            change.to_at_ms
        );
        let raised = crate::events::raise_in(db, tenant, &event, Some(&key), now).await?;
        if matches!(raised, crate::events::Raised::New { .. }) {
            // The move also asks the picker for an event discovery run, in this same
            // transaction: no alert without its run, and no run twice for one move.
            db::execute(
                db,
                "request event discovery run",
                "INSERT INTO discovery_requests (tenant_id, symbol, reason, detail) \
                 VALUES ($1, $2, $3, $4)",
                vec![
                    t.clone(),
                    P::Str(change.symbol.clone()),
                    P::Str(monitor::EVENT_TYPE.into()),
                    db::jsonb(&event.payload),
                ],
            )
            .await?;
        }
        db::execute(
            db,
            "monitor cooldown",
            "INSERT INTO alert_monitor_cooldowns (tenant_id, symbol, last_alert_ms) \
             VALUES ($1, $2, $3) ON CONFLICT (tenant_id, symbol) \
             DO UPDATE SET last_alert_ms = EXCLUDED.last_alert_ms",
            vec![t.clone(), P::Str(change.symbol.clone()), P::Int64(now)],
        )
        .await?;
    }
    Ok(moves.len())
}
