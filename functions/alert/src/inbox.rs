//! Routes the alerts other components queued in `alert_inbox` (tessera_spin_kit::alert_inbox):
//! each pending row becomes an event, routed, grouped and written to the outbox like a posted
//! one, in the transaction that marks the row routed, so a row is routed exactly once however
//! many ticks run at once (`FOR UPDATE SKIP LOCKED`) and whenever the host stops.

use crate::clock::now_ms;
use crate::db::{self, P};
use serde_json::Value;
use spin_sdk::pg::{Connection, Row};
use tessera_alerting::{Event, Labels, Severity};
use tessera_spin_kit::ApiError;

/// Rows routed per tick; the rest wait for the next one.
const BATCH: i64 = 200;

/// Routes up to [`BATCH`] pending rows; returns how many became events.
pub async fn route_pending(db: &Connection) -> Result<usize, ApiError> {
    db::begin(db).await?;
    let result = route_in(db).await;
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

async fn route_in(db: &Connection) -> Result<usize, ApiError> {
    let rows = db::rows(
        db,
        "pending alerts",
        "SELECT id, tenant_id, type, severity, labels::text, summary, payload::text, \
                (extract(epoch FROM occurred_at) * 1000)::bigint \
         FROM alert_inbox WHERE routed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        vec![P::Int64(BATCH)],
    )
    .await?;
    let now = now_ms();
    let mut routed = 0;
    for row in &rows {
        let id = db::int(row, 0);
        let error = match event(row) {
            Ok(event) => {
                let key = format!("inbox:{id}");
                crate::events::raise_in(db, &db::text(row, 1), &event, Some(&key), now).await?;
                routed += 1;
                None
            }
            // A row that can never become an event is marked, not retried forever.
            Err(e) => Some(e),
        };
        db::execute(
            db,
            "mark alert routed",
            "UPDATE alert_inbox SET routed_at = now(), error = $2 WHERE id = $1",
            vec![P::Int64(id), db::opt_str(error.as_deref())],
        )
        .await?;
    }
    Ok(routed)
}

/// The event a row describes, checked like a posted one.
fn event(row: &Row) -> Result<Event, String> {
    let severity = match db::text(row, 3).as_str() {
        "info" => Severity::Info,
        "warning" => Severity::Warning,
        _ => Severity::Critical,
    };
    let labels: Labels = match serde_json::from_str::<Value>(&db::text(row, 4)) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        _ => return Err("labels must be a JSON object".into()),
    };
    let event = Event {
        event_type: db::text(row, 2),
        severity,
        labels,
        summary: db::opt_text(row, 5),
        payload: serde_json::from_str(&db::text(row, 6)).unwrap_or(Value::Null),
        occurred_at_ms: db::int(row, 7),
    };
    event.validate().map_err(|e| format!("{e:?}"))?;
    Ok(event)
}
