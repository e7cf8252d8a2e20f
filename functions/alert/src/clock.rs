//! The guest's clock and timers (tessera-alerting reads none: times are parameters), from
//! tessera_spin_kit::clock; milliseconds signed, as Postgres' bigint columns hold them.

pub use tessera_spin_kit::clock::{random_unit, timeout};

pub fn now_ms() -> i64 {
    tessera_spin_kit::clock::now_ms() as i64
}
