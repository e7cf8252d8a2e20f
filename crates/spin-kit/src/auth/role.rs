//! Roles, ordered by what they may do: a role may do everything a lower one may.

use std::fmt;

/// A key's role. `service` is a tenant's automation (a trading bot posting snapshots,
/// a monitor raising alert events): more than a member, less than a person who operates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Member,
    Service,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Member, Role::Service, Role::Operator, Role::Admin];

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "member" => Role::Member,
            "service" => Role::Service,
            "operator" => Role::Operator,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Service => "service",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn at_least(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin.at_least(Role::Operator));
        assert!(Role::Operator.at_least(Role::Service));
        assert!(Role::Service.at_least(Role::Member));
        assert!(!Role::Member.at_least(Role::Service));
        assert!(!Role::Operator.at_least(Role::Admin));
        assert!(Role::Member.at_least(Role::Member));
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse(""), None);
    }
}
