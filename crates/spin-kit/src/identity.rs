//! Who is asking: the tenant and user from the identity headers (`x-tenant-id`,
//! `x-user-id`), checked the same way in every component. In `keys` mode
//! [`crate::auth::identify`] has replaced whatever a client sent with the key's own before
//! these are read; in `trusted-headers` mode a gateway in front sets them.

use crate::ApiError;
use spin_sdk::http::Request;

/// The value of identity header `name`, `None` when absent; 400 naming the header when it is
/// not 1–64 letters, digits, `-`, `_`, `.` or `@`.
pub fn identity_header(req: &Request, name: &'static str) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(name) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    if !valid_identity(text) {
        return Err(ApiError::bad_request(
            "invalid_header",
            format!("{name} must be 1-64 letters, digits, '-', '_', '.' or '@'"),
            Some(name),
        ));
    }
    Ok(Some(text.to_string()))
}

/// The tenant (`x-tenant-id`), `default` when the header is absent.
pub fn tenant(req: &Request) -> Result<String, ApiError> {
    Ok(identity_header(req, "x-tenant-id")?.unwrap_or_else(|| "default".to_string()))
}

/// Whether `text` may name a tenant or a user.
pub fn valid_identity(text: &str) -> bool {
    tessera_api::tenancy::valid_tenant(text)
}
