//! Who is asking: tenant and user from headers a trusted gateway sets (until API keys exist,
//! as in the kb component).

use spin_sdk::http::Request;
use tessera_spin_kit::ApiError;
use tessera_spin_kit::identity::identity_header;

pub struct Caller {
    pub tenant: String,
    pub user: String,
    /// The request's id (`x-request-id`, set by the host): internal errors name it, in the
    /// answer and in the log, also when they happen after the stream has started.
    pub request: Option<String>,
}

fn header(req: &Request, name: &'static str, default: &str) -> Result<String, ApiError> {
    Ok(identity_header(req, name)?.unwrap_or_else(|| default.to_string()))
}

pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    Ok(Caller {
        tenant: header(req, "x-tenant-id", "default")?,
        user: header(req, "x-user-id", "anonymous")?,
        request: tessera_spin_kit::request_id(req),
    })
}
