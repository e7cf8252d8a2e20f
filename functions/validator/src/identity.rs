//! Who is asking: tenant and user from headers a trusted gateway sets (as in chat and feedback).

use spin_sdk::http::Request;
use tessera_spin_kit::ApiError;

pub struct Caller {
    pub tenant: String,
    pub user: Option<String>,
}

fn header(req: &Request, name: &'static str) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(name) else {
        return Ok(None);
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
            format!("{name} must be 1-64 letters, digits, '-', '_', '.' or '@'"),
            Some(name),
        ));
    }
    Ok(Some(text.to_string()))
}

pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    Ok(Caller {
        tenant: header(req, "x-tenant-id")?.unwrap_or_else(|| "default".into()),
        user: header(req, "x-user-id")?,
    })
}
