//! Time and randomness for the gateway's pure decisions, from WASI (shared with the picker
//! in tessera_spin_kit::clock).

pub use tessera_spin_kit::clock::{now_ms, random_unit, sleep};

pub fn random_bytes(n: usize) -> Vec<u8> {
    spin_sdk::wasip3::random::random::get_random_bytes(n as u64)
}
