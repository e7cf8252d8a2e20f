//! Who is asking: tenant and user from the identity headers, which tessera_spin_kit::auth
//! has set from the caller's API key (or a trusted gateway set, in trusted-headers mode).

use spin_sdk::http::Request;
use tessera_spin_kit::ApiError;
use tessera_spin_kit::identity::{identity_header, tenant};

pub struct Caller {
    pub tenant: String,
    pub user: Option<String>,
}

pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    Ok(Caller {
        tenant: tenant(req)?,
        user: identity_header(req, "x-user-id")?,
    })
}
