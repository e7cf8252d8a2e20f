//! Where an outbound connection goes: `(scheme, host, port)` parsed from the address a
//! guest passed (Spin's `OutboundUrl`). Postgres connection strings have their own parser
//! (`postgres.rs`) because they are not generic URLs.
//!
//! The host is taken the way an RFC 3986 URL client reads it (authority ends at the
//! first `/`, `?` or `#`; userinfo ends at the last `@` inside it), so the host we check
//! is the host the HTTP client connects to, even for crafted URLs like
//! `http://evil?@allowed`.

use super::{default_port, postgres};

/// A parsed outbound destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Lowercase scheme (`postgresql` is reported as `postgres`).
    pub scheme: String,
    /// Lowercase host; IPv6 addresses keep their brackets (`[::1]`), as in URLs.
    pub host: String,
    /// The explicit port, else the scheme's default.
    pub port: u16,
}

/// Why an address could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// Parses a URL (`https://user:pw@host:8443/path?q`), a scheme-less `host:port` (using
/// `default_scheme`), or a Postgres connection string (when the address starts with
/// `postgres://`/`postgresql://`, or `default_scheme` is `postgres`, which also accepts the
/// `host=... port=...` key-value form). A Postgres string naming several hosts is an
/// error here; use `postgres_targets` to check them all.
pub fn parse_target(address: &str, default_scheme: &str) -> Result<Target, TargetError> {
    let address = address.trim();
    if postgres::is_postgres_url(address)
        || (!address.contains("://") && default_scheme == "postgres")
    {
        let mut targets = postgres::postgres_targets(address)?;
        if targets.len() != 1 {
            return Err(TargetError(format!(
                "the connection string names {} hosts; only one is supported",
                targets.len()
            )));
        }
        return Ok(targets.remove(0));
    }
    parse_url(address, default_scheme)
}

fn parse_url(address: &str, default_scheme: &str) -> Result<Target, TargetError> {
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (scheme, rest),
        None => (default_scheme, address),
    };
    let scheme = scheme.to_ascii_lowercase();
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Err(TargetError(format!("invalid scheme {scheme:?}")));
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_host_port(host_port)?;
    let port = match port {
        Some(port) => port,
        None => default_port(&scheme).ok_or_else(|| {
            TargetError(format!(
                "no port given and scheme {scheme:?} has no default port"
            ))
        })?,
    };
    Ok(Target {
        scheme,
        host: check_host(host)?,
        port,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`. An empty port (`host:`) means the default.
pub(super) fn split_host_port(s: &str) -> Result<(&str, Option<u16>), TargetError> {
    let (host, port) = if s.starts_with('[') {
        let close = s
            .find(']')
            .ok_or_else(|| TargetError(format!("unclosed '[' in host {s:?}")))?;
        let rest = &s[close + 1..];
        let port = match rest.strip_prefix(':') {
            Some(port) => port,
            None if rest.is_empty() => "",
            None => return Err(TargetError(format!("unexpected {rest:?} after host"))),
        };
        (&s[..=close], port)
    } else {
        s.split_once(':').unwrap_or((s, ""))
    };
    let port = if port.is_empty() {
        None
    } else {
        Some(parse_port(port)?)
    };
    Ok((host, port))
}

pub(super) fn parse_port(port: &str) -> Result<u16, TargetError> {
    port.parse()
        .map_err(|_| TargetError(format!("invalid port {port:?}")))
}

/// Lowercases and rejects hosts a client would read differently from us: empty,
/// percent-encoded, or containing separators or whitespace.
pub(super) fn check_host(host: &str) -> Result<String, TargetError> {
    if host.is_empty() {
        return Err(TargetError("missing host".into()));
    }
    let inner = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ok = inner
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'));
    if !ok || (inner.contains(':') && inner.len() == host.len()) {
        return Err(TargetError(format!("invalid host {host:?}")));
    }
    Ok(host.to_ascii_lowercase())
}

/// The component id in a service-chaining host (`<id>.spin.internal`, port ignored), as
/// Spin's `parse_service_chaining_host`; `*` for the wildcard form.
pub fn service_chaining_target(host: &str) -> Option<&str> {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let (first, rest) = host.split_once('.')?;
    (rest == "spin.internal").then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(scheme: &str, host: &str, port: u16) -> Target {
        Target {
            scheme: scheme.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn urls() {
        for (url, expected) in [
            ("https://api.openai.com", t("https", "api.openai.com", 443)),
            (
                "https://api.openai.com/v1/x?y=1",
                t("https", "api.openai.com", 443),
            ),
            ("http://127.0.0.1:8080/", t("http", "127.0.0.1", 8080)),
            ("HTTP://Example.COM", t("http", "example.com", 80)),
            ("http://[::1]:8001/x", t("http", "[::1]", 8001)),
            ("http://[::1]", t("http", "[::1]", 80)),
            (
                "https://user:password@example.com",
                t("https", "example.com", 443),
            ),
            (
                "https://example.com/file@0.1.0.json",
                t("https", "example.com", 443),
            ),
            (
                "https://u:p@example.com/file@0.1.0.json",
                t("https", "example.com", 443),
            ),
            ("redis://cache:6380", t("redis", "cache", 6380)),
            ("redis://cache", t("redis", "cache", 6379)),
            ("mysql://u:p@db", t("mysql", "db", 3306)),
            ("http://host:/", t("http", "host", 80)),
            // The host an HTTP client would connect to, not the one after a later '@'.
            ("http://evil.com?@allowed.com", t("http", "evil.com", 80)),
            ("http://evil.com#@allowed.com", t("http", "evil.com", 80)),
            // Scheme-less addresses take the default scheme.
            ("example.com:8383", t("http", "example.com", 8383)),
            ("spin.fermyon.dev", t("http", "spin.fermyon.dev", 80)),
        ] {
            assert_eq!(parse_target(url, "http").unwrap(), expected, "{url}");
        }
        assert_eq!(
            parse_target("spin.fermyon.dev:443", "https").unwrap(),
            t("https", "spin.fermyon.dev", 443)
        );
    }

    #[test]
    fn url_errors() {
        for (url, msg) in [
            ("http://", "missing host"),
            ("http://:80", "missing host"),
            ("http://host:99999", "invalid port \"99999\""),
            ("http://host:x", "invalid port \"x\""),
            ("http://[::1", "unclosed '['"),
            ("http://[::1]x", "unexpected \"x\" after host"),
            ("http://a b", "invalid host \"a b\""),
            ("http://a%2eb", "invalid host"),
            ("http://::1:80", "invalid port"),
            ("tcp://host", "scheme \"tcp\" has no default port"),
            ("1http://host", "invalid scheme"),
            ("://host", "invalid scheme \"\""),
        ] {
            let err = parse_target(url, "http").unwrap_err().to_string();
            assert!(err.contains(msg), "{url}: {err}");
        }
    }

    #[test]
    fn postgres_is_dispatched() {
        assert_eq!(
            parse_target("postgres://u:pw@db:6543/app?sslmode=disable", "postgres").unwrap(),
            t("postgres", "db", 6543)
        );
        assert_eq!(
            parse_target("postgresql://db/app", "http").unwrap(),
            t("postgres", "db", 5432)
        );
        assert_eq!(
            parse_target("host=db port=6000 user=x", "postgres").unwrap(),
            t("postgres", "db", 6000)
        );
        assert_eq!(
            parse_target("postgres://a,b/db", "postgres")
                .unwrap_err()
                .to_string(),
            "the connection string names 2 hosts; only one is supported"
        );
    }

    #[test]
    fn service_chaining() {
        assert_eq!(service_chaining_target("kb.spin.internal"), Some("kb"));
        assert_eq!(service_chaining_target("kb.spin.internal:80"), Some("kb"));
        assert_eq!(service_chaining_target("*.spin.internal"), Some("*"));
        assert_eq!(service_chaining_target("spin.internal"), None);
        assert_eq!(service_chaining_target("a.b.spin.internal"), None);
        assert_eq!(service_chaining_target("example.com"), None);
    }
}
