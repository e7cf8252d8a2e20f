//! Postgres helpers: tessera-spin-kit's, plus the timestamp format of this component's answers.

pub use tessera_spin_kit::pg::*;

/// `to_char` pattern for timestamps in answers.
pub const ISO: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";
