//! Who may write what: the `curated` scope (answers chat ranks first, promoted from feedback)
//! is for operators and admins only; everything else in the caller's tenant is open to any
//! authenticated caller. The caller was identified by tessera_spin_kit::auth in `handle`.

use spin_sdk::http::Request;
use tessera_retrieval::Scope;
use tessera_spin_kit::ApiError;
use tessera_spin_kit::auth::{self, Role};

/// Whether the caller of `req` may write the `curated` scope.
pub fn may_curate(req: &Request) -> bool {
    auth::caller(req).is_some_and(|c| c.role.at_least(Role::Operator))
}

/// 403 naming the role when `scope` is `curated` and the caller may not write it.
pub fn check_scope(scope: &Scope, may_curate: bool) -> Result<(), ApiError> {
    if matches!(scope, Scope::Curated) && !may_curate {
        return Err(ApiError::new(
            403,
            "forbidden",
            "the curated scope is written by operators and admins only",
        )
        .with_field("scope"));
    }
    Ok(())
}
