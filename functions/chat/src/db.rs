//! Postgres helpers: tessera-spin-kit's.

pub use tessera_spin_kit::pg::*;
