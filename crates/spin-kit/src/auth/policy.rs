//! Which role each route needs, in one table for the whole application, so the rules can be
//! read (and tested) in one place. Checks that depend on the body (a plan tier in a profile,
//! the `curated` scope of an ingest) or on who owns a row are the components' own, with
//! [`super::require_role`]. Pure: no I/O.

use super::Role;

/// A route pattern: segments, `*` for one segment, a final `**` for any rest (also none).
struct Rule {
    methods: &'static [&'static str],
    pattern: &'static str,
    role: Role,
}

const WRITE: &[&str] = &["POST", "PUT", "PATCH", "DELETE"];
const ANY: &[&str] = &[];

const RULES: &[Rule] = &[
    // Key administration and the audit log.
    Rule {
        methods: ANY,
        pattern: "/v1/admin/**",
        role: Role::Admin,
    },
    // Curating what chat answers from; reports that span users.
    Rule {
        methods: &["POST"],
        pattern: "/v1/feedback/*/promote",
        role: Role::Operator,
    },
    Rule {
        methods: &["GET"],
        pattern: "/v1/feedback/report",
        role: Role::Operator,
    },
    // Trading controls.
    Rule {
        methods: WRITE,
        pattern: "/v1/validator/**",
        role: Role::Operator,
    },
    Rule {
        methods: WRITE,
        pattern: "/v1/system/circuit-breaker/**",
        role: Role::Operator,
    },
    Rule {
        methods: WRITE,
        pattern: "/v1/portfolio/snapshots",
        role: Role::Service,
    },
    // Alerting configuration; raising events is automation's job.
    Rule {
        methods: WRITE,
        pattern: "/v1/alerts/channels/**",
        role: Role::Operator,
    },
    Rule {
        methods: WRITE,
        pattern: "/v1/alerts/rules/**",
        role: Role::Operator,
    },
    Rule {
        methods: WRITE,
        pattern: "/v1/alerts/silences/**",
        role: Role::Operator,
    },
    Rule {
        methods: WRITE,
        pattern: "/v1/alerts/deliveries/**",
        role: Role::Operator,
    },
    Rule {
        methods: WRITE,
        pattern: "/v1/alerts/events",
        role: Role::Service,
    },
    // Market data comes from feeds and brokers; a tenant's picker settings are the desk's.
    Rule {
        methods: WRITE,
        pattern: "/v1/market/**",
        role: Role::Service,
    },
    Rule {
        methods: WRITE,
        pattern: "/v1/trades/**",
        role: Role::Service,
    },
    Rule {
        methods: WRITE,
        pattern: "/v1/discovery/settings",
        role: Role::Operator,
    },
];

fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.trim_matches('/').split('/');
    let mut have = path.trim_matches('/').split('/').filter(|s| !s.is_empty());
    loop {
        match (want.next(), have.next()) {
            (Some("**"), _) => return true,
            (Some("*"), Some(_)) => {}
            (Some(w), Some(h)) if w == h => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The least role that may call `method path`; [`Role::Member`] for everything not listed.
pub fn required_role(method: &str, path: &str) -> Role {
    RULES
        .iter()
        .find(|r| {
            (r.methods.is_empty() || r.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
                && matches(r.pattern, path)
        })
        .map_or(Role::Member, |r| r.role)
}

/// Whether `method` changes state (and is audited).
pub fn is_write(method: &str) -> bool {
    WRITE.iter().any(|m| m.eq_ignore_ascii_case(method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert!(matches("/v1/admin/**", "/v1/admin"));
        assert!(matches("/v1/admin/**", "/v1/admin/keys/abc/rotate"));
        assert!(!matches("/v1/admin/**", "/v1/administrators"));
        assert!(matches("/v1/feedback/*/promote", "/v1/feedback/42/promote"));
        assert!(!matches("/v1/feedback/*/promote", "/v1/feedback/promote"));
        assert!(!matches(
            "/v1/feedback/*/promote",
            "/v1/feedback/1/2/promote"
        ));
        assert!(matches("/v1/alerts/events", "/v1/alerts/events/"));
    }

    #[test]
    fn the_table_names_the_roles_of_the_issue() {
        let cases = [
            ("GET", "/v1/admin/keys", Role::Admin),
            ("POST", "/v1/admin/keys", Role::Admin),
            ("DELETE", "/v1/admin/keys/0123456789ab", Role::Admin),
            ("GET", "/v1/admin/audit", Role::Admin),
            ("POST", "/v1/feedback/7/promote", Role::Operator),
            ("GET", "/v1/feedback/report", Role::Operator),
            ("PUT", "/v1/validator/limits", Role::Operator),
            ("GET", "/v1/validator/limits", Role::Member),
            ("POST", "/v1/system/circuit-breaker/resume", Role::Operator),
            ("GET", "/v1/system/circuit-breaker", Role::Member),
            ("POST", "/v1/portfolio/snapshots", Role::Service),
            ("POST", "/v1/alerts/rules", Role::Operator),
            ("PUT", "/v1/alerts/channels/ch1", Role::Operator),
            ("DELETE", "/v1/alerts/silences/s1", Role::Operator),
            ("GET", "/v1/alerts/rules", Role::Member),
            ("POST", "/v1/alerts/events", Role::Service),
            ("POST", "/v1/alerts/deliveries/5/replay", Role::Operator),
            ("POST", "/v1/chat/conversations", Role::Member),
            ("PUT", "/v1/chat/profile", Role::Member),
            ("POST", "/v1/validate/trade", Role::Member),
            ("POST", "/v1/messages/m/feedback", Role::Member),
        ];
        for (method, path, role) in cases {
            assert_eq!(required_role(method, path), role, "{method} {path}");
        }
    }

    #[test]
    fn writes_are_the_state_changing_methods() {
        for m in ["POST", "put", "PATCH", "DELETE"] {
            assert!(is_write(m), "{m}");
        }
        for m in ["GET", "HEAD", "OPTIONS"] {
            assert!(!is_write(m), "{m}");
        }
    }
}
