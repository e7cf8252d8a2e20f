//! The tenant, from the `x-tenant-id` header a trusted gateway sets (as in feedback and kb).

use spin_sdk::http::Request;
use tessera_spin_kit::ApiError;

pub fn tenant(req: &Request) -> Result<String, ApiError> {
    const NAME: &str = "x-tenant-id";
    let Some(value) = req.headers().get(NAME) else {
        return Ok("default".to_string());
    };
    let text = value.to_str().unwrap_or("");
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if !valid {
        return Err(ApiError::bad_request(
            "invalid_header",
            format!("{NAME} must be 1-64 letters, digits, '-', '_', '.' or '@'"),
            Some(NAME),
        ));
    }
    Ok(text.to_string())
}
