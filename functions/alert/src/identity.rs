//! The tenant, from the `x-tenant-id` header, which tessera_spin_kit::auth has set from the
//! caller's API key (or a trusted gateway set, in trusted-headers mode).

pub use tessera_spin_kit::identity::tenant;
