//! The chat sweep: on every `handle-cron-event` (Spin's `fermyon:spin-cron@2.0.0` world, from
//! wit/), every chat turn left `running` for longer than `stale_turn_s` (default 45 s, a
//! little over the host's 30 s request timeout) is marked failed with its steps, in one
//! statement (tessera_progressive::stale). The chat component does the same for one
//! conversation before a new post; this sweep closes the rest, so no turn a deadline, a
//! disconnect or a crash cut off stays `running`.
//!
//! A cron component exports the synchronous `handle-cron-event`, so Postgres goes through the
//! synchronous interface and `variables.get` through `wit_bindgen::block_on` (as in
//! functions/feedback-report).

wit_bindgen::generate!({
    path: "../../wit",
    world: "tessera:platform/cron-guest",
    generate_all,
});

use spin::postgres::postgres::{Connection, DbValue, ParameterValue as P};
use tessera_progressive::stale;

struct ChatSweep;

fn variable(name: &str) -> Option<String> {
    wit_bindgen::block_on(spin::variables::variables::get(name.to_string())).ok()
}

impl Guest for ChatSweep {
    fn handle_cron_event(_metadata: Metadata) -> Result<(), Error> {
        let url = variable("db_url").ok_or_else(|| Error::Other("variable db_url".into()))?;
        let after = stale::stale_after(&variable("stale_turn_s").unwrap_or_default())
            .map_err(|e| Error::Other(format!("variable stale_turn_s: {e}")))?;
        let db = Connection::open(&url).map_err(|e| Error::Other(format!("connect: {e:?}")))?;
        // A sweep over every tenant: row-level security scope '*' (migrations/0018).
        db.query(
            tessera_api::tenancy::SET_TENANT_SQL,
            &[P::Str(tessera_api::tenancy::ACROSS_TENANTS.into())],
        )
        .map_err(|e| Error::Other(format!("name the connection's scope: {e:?}")))?;
        let set = db
            .query(
                &stale::close_sql(false),
                &[P::Int32(after as i32), P::Str(stale::REASON.into())],
            )
            .map_err(|e| Error::Other(format!("close stale turns: {e:?}")))?;
        let count = |i: usize| match set.rows.first().and_then(|r| r.get(i)) {
            Some(DbValue::Int64(n)) => *n,
            _ => 0,
        };
        if count(0) > 0 {
            println!(
                "chat-sweep: closed {} stale turn(s) and {} step(s)",
                count(0),
                count(1)
            );
        }
        Ok(())
    }
}

export!(ChatSweep);
