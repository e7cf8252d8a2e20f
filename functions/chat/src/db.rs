//! Postgres helpers: tessera-spin-kit's, plus this component's way of naming a missing id.

use tessera_spin_kit::ApiError;
pub use tessera_spin_kit::pg::*;

/// A UUID from a path segment, or a 404 with `code` (`conversation_not_found` → "no
/// conversation with id …").
pub fn parse_uuid(id: &str, code: &'static str) -> Result<String, ApiError> {
    tessera_spin_kit::pg::parse_uuid(id, code, code.trim_end_matches("_not_found"))
}
