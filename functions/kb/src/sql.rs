//! Postgres through Spin's interface, which has no vector type: vectors travel as text and
//! are cast with `::vector`. The helpers are tessera-spin-kit's, shared by every component.

pub use tessera_spin_kit::pg::*;
