//! Who is asking: tenant and user from headers a trusted gateway sets (until API keys exist,
//! as in the kb component).

use spin_sdk::http::Request;
use tessera_spin_kit::ApiError;

pub struct Caller {
    pub tenant: String,
    pub user: String,
    /// The request's id (`x-request-id`, set by the host): internal errors name it, in the
    /// answer and in the log, also when they happen after the stream has started.
    pub request: Option<String>,
}

fn header(req: &Request, name: &'static str, default: &str) -> Result<String, ApiError> {
    let Some(value) = req.headers().get(name) else {
        return Ok(default.to_string());
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
    Ok(text.to_string())
}

pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    Ok(Caller {
        tenant: header(req, "x-tenant-id", "default")?,
        user: header(req, "x-user-id", "anonymous")?,
        request: tessera_spin_kit::request_id(req),
    })
}
