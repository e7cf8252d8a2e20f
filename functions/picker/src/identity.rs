//! The tenant, from the `x-tenant-id` header a trusted gateway sets (as in the other components).

pub use tessera_spin_kit::identity::tenant;
