//! Circuit breaker rows (`provider_breakers`): shared with the picker, in
//! tessera_spin_kit::llm::breakers.

pub use tessera_spin_kit::llm::breakers::*;
