//! Outbound network permissions: parsing `allowed_outbound_hosts` (`allowed.rs`), parsing
//! the destination a guest asks for (`target.rs`, `postgres.rs`), and checking one against
//! the other.

mod allowed;
mod cidr;
mod postgres;
mod target;

pub use allowed::{AllowedHost, AllowedHosts};
pub use cidr::Cidr;
pub use postgres::postgres_targets;
pub use target::{Target, TargetError, parse_target, service_chaining_target};

/// Spin's `well_known_port`: the port used when an entry or URL names none.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports() {
        for (scheme, port) in [
            ("http", Some(80)),
            ("HTTPS", Some(443)),
            ("postgres", Some(5432)),
            ("mysql", Some(3306)),
            ("redis", Some(6379)),
            ("mqtt", Some(1883)),
            ("tcp", None),
            ("*", None),
        ] {
            assert_eq!(default_port(scheme), port, "{scheme}");
        }
    }
}
