//! Whose rows a database connection may see. Row-level security (migrations/0018,
//! docs/adr/0018-row-level-security.md) lets a connection read and write only the rows of
//! the tenant it names once, right after it is opened; a query that forgets its
//! `WHERE tenant_id = …` then still returns nothing of another tenant.

/// Names the connection's tenant for the rest of its session; `$1` is the tenant, or
/// [`ACROSS_TENANTS`]. Session-wide (`false`), so it holds across the connection's
/// transactions; every connection a component opens runs it first, so a pooled connection
/// never keeps the previous holder's tenant past its opening.
pub const SET_TENANT_SQL: &str = "SELECT set_config('tessera.tenant', $1, false)";

/// The scope of work that spans tenants by design: cron sweeps, the alert dispatcher, the
/// API-key lookup that finds a key's tenant. Never a tenant id: those are letters, digits
/// and `-_.@` ([`valid_tenant`]).
pub const ACROSS_TENANTS: &str = "*";

/// Whether `tenant` may be named as a connection's tenant: 1–64 letters, digits, `-`, `_`,
/// `.` or `@` (the identity rule), so never [`ACROSS_TENANTS`].
pub fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_across_tenants_is_never_a_tenant() {
        assert!(!valid_tenant(ACROSS_TENANTS));
        assert!(!valid_tenant(""));
        assert!(!valid_tenant("a b"));
        assert!(!valid_tenant(&"x".repeat(65)));
        assert!(valid_tenant("acme-corp_1.eu@x"));
    }
}
