//! Who is asking: the caller tessera_spin_kit::auth identified (an API key, or the headers
//! of a trusted gateway in trusted-headers mode). Rating by presigned token needs neither.

use spin_sdk::http::Request;
use tessera_spin_kit::ApiError;
use tessera_spin_kit::auth::{self, Forward, Role};

pub struct Caller {
    pub tenant: String,
    pub user: String,
    pub role: Role,
    /// The caller's identity for the self request to the kb (promotion).
    pub forward: Forward,
}

impl Caller {
    /// Whether the caller may see or rate answers given to `owner`: their own, or any in the
    /// tenant for operators and admins.
    pub fn may_act_for(&self, owner: &str) -> bool {
        self.role.at_least(Role::Operator) || self.user == owner
    }
}

/// The caller of a request that went through `auth::identify`; 401 when no API key was sent
/// (a route that also takes a feedback token checks that first).
pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    let who = auth::caller(req).ok_or_else(|| {
        ApiError::new(
            401,
            "unauthorized",
            "an API key (`Authorization: Bearer tsk_<prefix>_<secret>`) or a feedback token is required",
        )
        .with_field("authorization")
    })?;
    Ok(Caller {
        tenant: who.tenant.clone(),
        user: who.user_or("anonymous"),
        role: who.role,
        forward: Forward::of(req),
    })
}
