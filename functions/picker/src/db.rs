//! Postgres helpers: tessera-spin-kit's, plus what this component's rows need.

pub use tessera_spin_kit::pg::*;

/// `to_char` pattern for timestamps in answers.
pub const ISO: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

pub fn str_param(s: &str) -> P {
    P::Str(s.to_string())
}

/// A `text[]` column.
pub fn str_array(row: &spin_sdk::pg::Row, i: usize) -> Vec<String> {
    match &row[i] {
        spin_sdk::pg::DbValue::ArrayStr(v) => v.iter().flatten().cloned().collect(),
        _ => Vec::new(),
    }
}
