//! The auto-resume check on a schedule: on every `handle-cron-event` (Spin's
//! `fermyon:spin-cron@2.0.0` world, from wit/), each tenant whose circuit breaker is open has
//! its recovery conditions checked (drawdown under 15 %, a win streak of 3, 7-day Sharpe above
//! 0.3, or the tenant's own thresholds); when all pass the breaker moves to
//! `awaiting_approval` with an event — never to closed, which only an operator does.
//!
//! The same check runs on `GET /v1/system/circuit-breaker` (functions/validator); both read
//! the numbers with the SQL in tessera_validation::queries and decide with
//! tessera_validation::breaker. The export is synchronous, so Postgres goes through the
//! synchronous `query` / `execute` and `variables.get` through `wit_bindgen::block_on`, as
//! functions/feedback-report does.

wit_bindgen::generate!({
    path: "../../wit",
    world: "tessera:platform/cron-guest",
    generate_all,
});

use spin::postgres::postgres::{Connection, DbValue, ParameterValue as P, Row};
use tessera_validation::breaker::{BreakerRules, BreakerState, auto_resume, resume_check};
use tessera_validation::queries;

struct ValidatorCron;

impl Guest for ValidatorCron {
    fn handle_cron_event(_metadata: Metadata) -> Result<(), Error> {
        let url = wit_bindgen::block_on(spin::variables::variables::get("db_url".to_string()))
            .map_err(|e| Error::Other(format!("variable db_url: {e:?}")))?;
        let db = Connection::open(&url).map_err(|e| Error::Other(format!("connect: {e:?}")))?;
        // A sweep over every tenant: row-level security scope '*' (migrations/0018).
        db.query(
            tessera_api::tenancy::SET_TENANT_SQL,
            &[P::Str(tessera_api::tenancy::ACROSS_TENANTS.into())],
        )
        .map_err(|e| Error::Other(format!("name the connection's scope: {e:?}")))?;
        let open = query(&db, "open breakers", queries::OPEN_BREAKERS, &[])?;
        for row in &open {
            let tenant = text(row, 0);
            // One tenant's failure is logged and does not stop the others' checks.
            if let Err(e) = check_tenant(&db, &tenant) {
                let _ = db.execute("ROLLBACK", &[]);
                eprintln!("validator-cron: {tenant}: {e:?}");
            }
        }
        Ok(())
    }
}

fn check_tenant(db: &Connection, tenant: &str) -> Result<(), Error> {
    let t = || P::Str(tenant.to_string());
    let rules = query(
        db,
        "rules",
        "SELECT breaker_rules::text FROM validator_limits WHERE tenant_id = $1",
        &[t()],
    )?
    .first()
    .and_then(|r| serde_json::from_str::<BreakerRules>(&text(r, 0)).ok())
    .unwrap_or_default();
    execute(db, "begin", "BEGIN", &[])?;
    let state = query(db, "lock breaker", queries::LOCK_BREAKER, &[t()])?
        .first()
        .and_then(|r| BreakerState::parse(&text(r, 0)));
    // Another request may have moved it since the list was read.
    if state != Some(BreakerState::Open) {
        return execute(db, "commit", "COMMIT", &[]);
    }
    let equity = query(db, "equity", queries::EQUITY, &[t()])?
        .first()
        .map(|r| (float(r, 0), float(r, 1), float(r, 2)));
    let floats = |rows: Vec<Row>| rows.iter().map(|r| float(r, 0)).collect();
    let closed_pnls = floats(query(
        db,
        "closed trades",
        queries::CLOSED_PNLS,
        &[t(), P::Int64(queries::STREAK_WINDOW)],
    )?);
    let cycles = query(
        db,
        "cycles",
        queries::CYCLES,
        &[t(), P::Int64(queries::CYCLE_WINDOW)],
    )?
    .first()
    .map_or((0, 0), |r| (int(r, 0), int(r, 1)));
    let daily_closes = floats(query(db, "daily closes", queries::DAILY_CLOSES, &[t()])?);
    let metrics = queries::metrics(&queries::Rows {
        equity,
        closed_pnls,
        cycles,
        daily_closes,
    });
    let check = resume_check(&metrics, &rules);
    if let Some(tr) = auto_resume(BreakerState::Open, &check) {
        execute(
            db,
            "move breaker",
            queries::MOVE_BREAKER,
            &[
                t(),
                P::Str(tr.to.as_str().into()),
                P::Str(tr.reason.clone()),
            ],
        )?;
        let metrics_json = serde_json::to_vec(&metrics).unwrap_or_else(|_| b"{}".to_vec());
        execute(
            db,
            "record event",
            queries::RECORD_EVENT,
            &[
                t(),
                P::Str(tr.from.as_str().into()),
                P::Str(tr.to.as_str().into()),
                P::Str(tr.trigger.into()),
                P::Str(tr.reason.clone()),
                P::Jsonb(metrics_json),
                P::DbNull,
            ],
        )?;
        println!("validator-cron: {tenant}: {}", tr.reason);
    }
    execute(db, "commit", "COMMIT", &[])
}

fn query(db: &Connection, what: &str, sql: &str, params: &[P]) -> Result<Vec<Row>, Error> {
    db.query(sql, params)
        .map(|set| set.rows)
        .map_err(|e| Error::Other(format!("{what}: {e:?}")))
}

fn execute(db: &Connection, what: &str, sql: &str, params: &[P]) -> Result<(), Error> {
    db.execute(sql, params)
        .map(|_| ())
        .map_err(|e| Error::Other(format!("{what}: {e:?}")))
}

fn text(row: &Row, i: usize) -> String {
    match row.get(i) {
        Some(DbValue::Str(s)) => s.clone(),
        _ => String::new(),
    }
}

fn float(row: &Row, i: usize) -> f64 {
    match row.get(i) {
        Some(DbValue::Floating64(v)) => *v,
        _ => 0.0,
    }
}

fn int(row: &Row, i: usize) -> i64 {
    match row.get(i) {
        Some(DbValue::Int64(v)) => *v,
        Some(DbValue::Int32(v)) => i64::from(*v),
        _ => 0,
    }
}

export!(ValidatorCron);
