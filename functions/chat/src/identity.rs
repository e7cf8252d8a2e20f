//! Who is asking: the caller tessera_spin_kit::auth identified (an API key, or the headers
//! of a trusted gateway in trusted-headers mode).

use spin_sdk::http::Request;
use tessera_spin_kit::ApiError;
use tessera_spin_kit::auth::{self, Forward, Role};

#[derive(Clone)]
pub struct Caller {
    pub tenant: String,
    pub user: String,
    pub role: Role,
    /// The request's id (`x-request-id`, set by the host): internal errors name it, in the
    /// answer and in the log, also when they happen after the stream has started.
    pub request: Option<String>,
    /// The caller's identity for self requests to the kb.
    pub forward: Forward,
}

impl Caller {
    /// The owner whose rows a query must be limited to: the caller's own for members and
    /// services, none (the whole tenant) for operators and admins.
    pub fn owner_filter(&self) -> Option<&str> {
        (!self.role.at_least(Role::Operator)).then_some(self.user.as_str())
    }

    /// As `auth::Caller`, for `auth::require_role`.
    pub fn auth(&self) -> auth::Caller {
        auth::Caller {
            tenant: self.tenant.clone(),
            user: Some(self.user.clone()),
            role: self.role,
            key_prefix: None,
        }
    }
}

/// The caller of a request that went through `auth::identify`.
pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    let who =
        auth::caller(req).ok_or_else(|| ApiError::internal("the request was not authenticated"))?;
    Ok(Caller {
        tenant: who.tenant.clone(),
        user: who.user_or("anonymous"),
        role: who.role,
        request: tessera_spin_kit::request_id(req),
        forward: Forward::of(req),
    })
}
