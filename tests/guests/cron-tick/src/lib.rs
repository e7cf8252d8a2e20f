//! A cron component (Spin's `fermyon:spin-cron@2.0.0` world, from wit/): on every
//! `handle-cron-event` it records the event's timestamp in Postgres:
//! `cron_ticks(id serial, fired_at bigint, recorded_at timestamptz default now())`.
//!
//! `handle-cron-event` is a synchronous export, and a synchronous task may not block
//! (wasmtime traps with "cannot block a synchronous task before returning"). So:
//! - Postgres goes through the synchronous `connection.open` / `execute`, which the host
//!   implements without blocking the guest task in the component-model sense;
//! - `variables.get` exists only as an `async func`; it is called through
//!   `wit_bindgen::block_on`, which completes without waiting when the host answers at
//!   once (variables are resolved in memory). A host that made the guest wait there would
//!   trap the event instead of hanging it.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "tessera:platform/cron-guest",
    generate_all,
});

use spin::postgres::postgres::{Connection, ParameterValue};

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS cron_ticks (
    id          serial PRIMARY KEY,
    fired_at    bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
)";

struct CronTick;

impl Guest for CronTick {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let url = wit_bindgen::block_on(spin::variables::variables::get("db_url".to_string()))
            .map_err(|e| Error::Other(format!("variable db_url: {e:?}")))?;
        let db = Connection::open(&url).map_err(|e| Error::Other(format!("connect: {e:?}")))?;
        db.execute(CREATE_TABLE, &[])
            .map_err(|e| Error::Other(format!("create table cron_ticks: {e:?}")))?;
        let fired_at = i64::try_from(metadata.timestamp)
            .map_err(|_| Error::Other(format!("timestamp {} out of range", metadata.timestamp)))?;
        db.execute(
            "INSERT INTO cron_ticks (fired_at) VALUES ($1)",
            &[ParameterValue::Int64(fired_at)],
        )
        .map_err(|e| Error::Other(format!("insert: {e:?}")))?;
        println!("cron-tick: recorded tick {fired_at}");
        Ok(())
    }
}

export!(CronTick);
