//! Time and randomness for the gateway's pure decisions, from WASI (shared with the picker
//! in tessera_spin_kit::llm::clock).

pub use tessera_spin_kit::llm::clock::{now_ms, random_unit, sleep, timeout};

pub fn random_bytes(n: usize) -> Vec<u8> {
    spin_sdk::wasip3::random::random::get_random_bytes(n as u64)
}
