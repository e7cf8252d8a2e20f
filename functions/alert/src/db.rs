//! Postgres helpers: tessera-spin-kit's, plus what this component's rows need.

pub use tessera_spin_kit::pg::*;

use spin_sdk::pg::{DbValue, Row};

/// `to_char` pattern for timestamps in answers.
pub const ISO: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'";

/// A `text[]` column.
pub fn str_array(row: &Row, i: usize) -> Vec<String> {
    match &row[i] {
        DbValue::ArrayStr(v) => v.iter().flatten().cloned().collect(),
        _ => Vec::new(),
    }
}

pub fn str_array_param(v: &[String]) -> P {
    P::ArrayStr(v.iter().cloned().map(Some).collect())
}
