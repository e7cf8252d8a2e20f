//! The circuit breaker's storage: its state per tenant, the metrics the rules read (from
//! portfolio snapshots and closed trades), transitions with their events, and the endpoints
//! `GET /v1/system/circuit-breaker` (which runs the auto-resume check) and
//! `POST /v1/system/circuit-breaker/resume` (an operator's approval).

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_spin_kit::alert_inbox::{self, Alert, Severity};
use tessera_spin_kit::{ApiError, StatusCode, connect, read_json};
use tessera_validation::breaker::{
    self, BreakerRules, BreakerState, Metrics, Transition, auto_resume, resume_check, trips,
};
use tessera_validation::queries;

use crate::db::{self, P};
use crate::identity::Caller;

pub struct Current {
    pub state: BreakerState,
    pub reason: Option<String>,
    pub since: String,
}

/// The tenant's breaker, locked for the rest of the transaction when `lock` (callers that
/// may move it hold the row so two requests never both transition).
pub async fn current(db: &Connection, tenant: &str, lock: bool) -> Result<Current, ApiError> {
    db::execute(
        db,
        "create breaker",
        queries::ENSURE_BREAKER,
        vec![P::Str(tenant.into())],
    )
    .await?;
    let row = db::one(
        db,
        "read breaker",
        &format!(
            "SELECT state, reason, to_char(since AT TIME ZONE 'UTC', {}) FROM circuit_breakers WHERE tenant_id = $1{}",
            db::ISO,
            if lock { " FOR UPDATE" } else { "" }
        ),
        vec![P::Str(tenant.into())],
    )
    .await?
    .ok_or_else(|| ApiError::internal("breaker row missing after insert"))?;
    Ok(Current {
        state: BreakerState::parse(&db::text(&row, 0))
            .ok_or_else(|| ApiError::internal("unknown breaker state"))?,
        reason: db::opt_text(&row, 1),
        since: db::text(&row, 2),
    })
}

/// The numbers the breaker reads, from what the tenant reported.
pub async fn metrics(db: &Connection, tenant: &str) -> Result<Metrics, ApiError> {
    let t = || P::Str(tenant.into());
    let equity = db::one(db, "equity", queries::EQUITY, vec![t()])
        .await?
        .map(|r| (db::float(&r, 0), db::float(&r, 1), db::float(&r, 2)));
    let floats = |rows: Vec<spin_sdk::pg::Row>| rows.iter().map(|r| db::float(r, 0)).collect();
    let closed_pnls = floats(
        db::rows(
            db,
            "closed trades",
            queries::CLOSED_PNLS,
            vec![t(), P::Int64(queries::STREAK_WINDOW)],
        )
        .await?,
    );
    let cycles = db::one(
        db,
        "cycle errors",
        queries::CYCLES,
        vec![t(), P::Int64(queries::CYCLE_WINDOW)],
    )
    .await?
    .map_or((0, 0), |r| (db::int(&r, 0), db::int(&r, 1)));
    let daily_closes =
        floats(db::rows(db, "daily closes", queries::DAILY_CLOSES, vec![t()]).await?);
    Ok(queries::metrics(&queries::Rows {
        equity,
        closed_pnls,
        cycles,
        daily_closes,
    }))
}

/// Moves the breaker and records the event with the metrics behind it.
pub async fn apply(
    db: &Connection,
    tenant: &str,
    t: &Transition,
    metrics: &Metrics,
    actor: Option<&str>,
) -> Result<(), ApiError> {
    let reason = (t.to != BreakerState::Closed).then(|| t.reason.clone());
    db::execute(
        db,
        "move breaker",
        queries::MOVE_BREAKER,
        vec![
            P::Str(tenant.into()),
            P::Str(t.to.as_str().into()),
            db::opt_str(reason.as_deref()),
        ],
    )
    .await?;
    db::execute(
        db,
        "breaker event",
        queries::RECORD_EVENT,
        vec![
            P::Str(tenant.into()),
            P::Str(t.from.as_str().into()),
            P::Str(t.to.as_str().into()),
            P::Str(t.trigger.into()),
            P::Str(t.reason.clone()),
            db::jsonb(&serde_json::to_value(metrics).unwrap_or_default()),
            db::opt_str(actor),
        ],
    )
    .await?;
    alert_inbox::raise(db, tenant, &transition_alert(t, actor)).await
}

/// `circuit_breaker.<state>` for the operators: critical when trading halts, info when it
/// resumes or awaits approval.
fn transition_alert(t: &Transition, actor: Option<&str>) -> Alert {
    let to = t.to.as_str();
    let mut labels = serde_json::Map::new();
    labels.insert("state".into(), json!(to));
    labels.insert("trigger".into(), json!(t.trigger));
    Alert {
        event_type: format!("circuit_breaker.{to}"),
        severity: match t.to {
            BreakerState::Open => Severity::Critical,
            _ => Severity::Info,
        },
        labels,
        summary: Some(format!(
            "circuit breaker {} → {to}: {}",
            t.from.as_str(),
            t.reason
        )),
        payload: json!({ "from": t.from.as_str(), "to": to, "trigger": t.trigger,
                         "reason": t.reason, "actor": actor }),
    }
}

async fn events(db: &Connection, tenant: &str) -> Result<Vec<Value>, ApiError> {
    let rows = db::rows(
        db,
        "breaker events",
        &format!(
            "SELECT from_state, to_state, trigger, reason, metrics::text, actor,
                    to_char(created_at AT TIME ZONE 'UTC', {})
             FROM circuit_breaker_events WHERE tenant_id = $1
             ORDER BY created_at DESC, id DESC LIMIT 20",
            db::ISO
        ),
        vec![P::Str(tenant.into())],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "from": db::text(r, 0), "to": db::text(r, 1), "trigger": db::text(r, 2),
                "reason": db::text(r, 3), "metrics": db::json(r, 4), "actor": db::opt_text(r, 5),
                "at": db::text(r, 6),
            })
        })
        .collect())
}

/// The answer about the breaker: state, metrics, what trips now, the resume check, events.
pub async fn view(
    db: &Connection,
    tenant: &str,
    rules: &BreakerRules,
    metrics: &Metrics,
    transition: Option<&Transition>,
) -> Result<Value, ApiError> {
    let now = current(db, tenant, false).await?;
    Ok(json!({
        "state": now.state,
        "reason": now.reason,
        "since": now.since,
        "metrics": metrics,
        "tripped_rules": trips(metrics, rules),
        "resume_check": resume_check(metrics, rules),
        "transition": transition,
        "rules": rules,
        "events": events(db, tenant).await?,
    }))
}

/// `GET /v1/system/circuit-breaker`: the check before a trading cycle. An open breaker whose
/// recovery conditions all pass moves to awaiting approval (never to closed).
pub async fn get(caller: &Caller) -> crate::Handled {
    let db = connect(&caller.tenant).await?;
    let (_, rules) = crate::limits::load(&db, &caller.tenant).await?;
    db::begin(&db).await?;
    let result = async {
        let now = current(&db, &caller.tenant, true).await?;
        let m = metrics(&db, &caller.tenant).await?;
        let t = auto_resume(now.state, &resume_check(&m, &rules));
        if let Some(t) = &t {
            apply(&db, &caller.tenant, t, &m, None).await?;
        }
        Ok::<_, ApiError>((m, t))
    }
    .await;
    let (m, t) = match result {
        Ok(v) => {
            db::commit(&db).await?;
            v
        }
        Err(e) => {
            db::rollback(&db).await;
            return Err(e);
        }
    };
    Ok((
        StatusCode::OK,
        view(&db, &caller.tenant, &rules, &m, t.as_ref()).await?,
    ))
}

/// `POST /v1/system/circuit-breaker/resume`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CircuitBreakerResume")]
pub(crate) struct Resume {
    /// Who approves; `x-user-id` when absent.
    #[serde(default)]
    #[schemars(length(max = 64))]
    operator: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 500))]
    note: Option<String>,
}

/// `POST /v1/system/circuit-breaker/resume`: an operator closes a breaker awaiting approval.
pub async fn resume(req: Request, caller: &Caller) -> crate::Handled {
    let body: Resume = read_json(req, 16 * 1024).await?;
    let operator = body
        .operator
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .or_else(|| caller.user.clone())
        .ok_or_else(|| ApiError::missing("operator"))?;
    if operator.chars().count() > 64 {
        return Err(ApiError::invalid(
            "operator",
            "operator is at most 64 characters",
        ));
    }
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::invalid("note", "note is at most 500 characters"));
    }
    let db = connect(&caller.tenant).await?;
    let (_, rules) = crate::limits::load(&db, &caller.tenant).await?;
    db::begin(&db).await?;
    let result = async {
        let now = current(&db, &caller.tenant, true).await?;
        let t = breaker::operator_resume(now.state, &operator, body.note.as_deref())
            .map_err(|why| ApiError::conflict("breaker_not_awaiting_approval", why))?;
        let m = metrics(&db, &caller.tenant).await?;
        apply(&db, &caller.tenant, &t, &m, Some(&operator)).await?;
        Ok::<_, ApiError>((m, t))
    }
    .await;
    match result {
        Ok((m, t)) => {
            db::commit(&db).await?;
            Ok((
                StatusCode::OK,
                view(&db, &caller.tenant, &rules, &m, Some(&t)).await?,
            ))
        }
        Err(e) => {
            db::rollback(&db).await;
            Err(e)
        }
    }
}
