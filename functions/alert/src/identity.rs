//! The tenant, from the `x-tenant-id` header a trusted gateway sets (as in feedback and kb).

pub use tessera_spin_kit::identity::tenant;
