//! The nightly feedback report: on every `handle-cron-event` (Spin's `fermyon:spin-cron@2.0.0`
//! world, from wit/), the report of the default window (the 30 complete UTC days before
//! today, scope `all`, the default threshold) is computed for each tenant with feedback in it
//! and stored in `feedback_reports`, where `GET /v1/feedback/report` finds it.
//!
//! A separate component from `feedback`: that one is a WASIp3 HTTP service built with
//! spin-sdk, while a cron component exports the synchronous `handle-cron-event`; the report
//! logic and its SQL live in tessera-feedback, so both compute the same report.
//!
//! The export is synchronous and may not block, so Postgres goes through the synchronous
//! `connection.open` / `query` / `execute`, and `variables.get` (async only) through
//! `wit_bindgen::block_on`, which the host answers at once (see tests/guests/cron-tick).

wit_bindgen::generate!({
    path: "../../wit",
    world: "tessera:platform/cron-guest",
    generate_all,
});

use spin::postgres::postgres::{Connection, DbValue, ParameterValue as P, Row};
use tessera_feedback::cluster::DEFAULT_THRESHOLD;
use tessera_feedback::queries::{self, RatedRow};
use tessera_feedback::report;

struct FeedbackReport;

impl Guest for FeedbackReport {
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
        let window = query(&db, "default window", queries::DEFAULT_WINDOW, &[])?;
        let row = window
            .first()
            .ok_or_else(|| Error::Other("default window: no row".into()))?;
        let (from, to) = (text(row, 0), text(row, 1));
        let tenants = query(
            &db,
            "tenants",
            queries::TENANTS_WITH_FEEDBACK,
            &[P::Str(from.clone()), P::Str(to.clone())],
        )?;
        for t in &tenants {
            let tenant = text(t, 0);
            let rows = query(
                &db,
                "rated messages",
                queries::RATED,
                &[
                    P::Str(tenant.clone()),
                    P::Str(from.clone()),
                    P::Str(to.clone()),
                    P::Str("all".into()),
                ],
            )?;
            let built = report::build(rows.iter().map(rated).collect(), DEFAULT_THRESHOLD);
            let json =
                serde_json::to_string(&built).map_err(|e| Error::Other(format!("report: {e}")))?;
            db.execute(
                queries::STORE,
                &[
                    P::Str(tenant.clone()),
                    P::Str("all".into()),
                    P::Str(from.clone()),
                    P::Str(to.clone()),
                    P::Floating32(DEFAULT_THRESHOLD),
                    P::Str(json),
                ],
            )
            .map_err(|e| Error::Other(format!("store report of {tenant}: {e:?}")))?;
            println!(
                "feedback-report: {tenant} {from}..{to}: {} rated messages, {} clusters",
                built.messages,
                built.clusters.len()
            );
        }
        Ok(())
    }
}

fn query(db: &Connection, what: &str, sql: &str, params: &[P]) -> Result<Vec<Row>, Error> {
    db.query(sql, params)
        .map(|set| set.rows)
        .map_err(|e| Error::Other(format!("{what}: {e:?}")))
}

fn text(row: &Row, i: usize) -> String {
    match row.get(i) {
        Some(DbValue::Str(s)) => s.clone(),
        _ => String::new(),
    }
}

fn int(row: &Row, i: usize) -> i64 {
    match row.get(i) {
        Some(DbValue::Int64(v)) => *v,
        Some(DbValue::Int32(v)) => i64::from(*v),
        _ => 0,
    }
}

fn rated(r: &Row) -> report::RatedMessage {
    RatedRow {
        message_id: text(r, 0),
        question: text(r, 1),
        embedding: Some(text(r, 2)).filter(|e| !e.is_empty()),
        up: int(r, 3),
        down: int(r, 4),
        cost_micros: int(r, 5),
        steps: text(r, 6),
        sources: int(r, 7),
        tags: text(r, 8),
    }
    .into_message()
}

export!(FeedbackReport);
