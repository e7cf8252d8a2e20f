//! `allowed_outbound_hosts` rules, parsed and matched as Spin's
//! `outbound-networking-config/src/allowed_hosts.rs` does:
//! - an entry is `<scheme>://<host>[:<port>]`, each part may be `*`;
//! - host `*.example.com` matches any subdomain (not `example.com` itself); `self` (and
//!   Spin's `self.alt`) means the app itself; `10.0.0.0/8` is a CIDR network;
//! - a missing port means the scheme's default port (http 80, https 443, postgres 5432,
//!   mysql 3306, redis 6379, mqtt 1883), an error for other schemes;
//! - port ranges `8000..8010` exclude the end, like Spin's `Range<u16>`;
//! - an empty path (`https://x/`) is tolerated, any other path is an error;
//! - `{a,b}` lists are rejected ("not yet supported" in Spin too).
//!
//! Deliberate difference: schemes and hosts compare case-insensitively (Spin compares the
//! entry verbatim with a URL-lowercased host, so an uppercase entry silently never
//! matched there).

use std::net::IpAddr;

use super::cidr::Cidr;
use super::default_port;
use super::target::Target;
use crate::error::ManifestError;
use crate::manifest::AppManifest;
use crate::reader::join;
use crate::template::Template;
use crate::variables::Resolver;

/// One parsed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    original: String,
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SchemeRule {
    Any,
    Is(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostRule {
    Any,
    /// The suffix including its leading dot: `.example.com`.
    Subdomain(String),
    /// The application itself (relative URLs, `http://self`).
    ToSelf,
    Exact(String),
    Cidr(Cidr),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PortRule {
    Any,
    Port(u16),
    /// `start..end`, end excluded.
    Range(u16, u16),
}

impl AllowedHost {
    /// Parses one literal (already template-resolved) entry; the error is the reason.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let url = entry.trim();
        if url == "insecure:allow-all" {
            return Err(
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic"
                    .into(),
            );
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(match url {
                "*" | ":" | "" | "?" => "not an allowed outbound host format. Hosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each. To allow all outbound networking (no sandboxing at all), use '*://*:*'".into(),
                "self" => "does not contain a scheme; write \"http://self\" to allow requests to the app itself".into(),
                _ => "does not contain a scheme (e.g., 'http://' or '*://')".into(),
            });
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((_, path)) if !path.is_empty() => {
                return Err("must not contain a path".into());
            }
            Some((port, _)) => port,
            None => rest,
        };
        let scheme_rule = parse_scheme(scheme)?;
        Ok(Self {
            original: entry.to_string(),
            host: parse_host(host)?,
            port: parse_port(port, &scheme.to_ascii_lowercase())?,
            scheme: scheme_rule,
        })
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// Whether a connection to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme_allows(scheme) && self.host_allows(host) && self.port_allows(port)
    }

    /// Spin's `allows_relative`: requests to the app itself are allowed by `self` and by a
    /// host wildcard, for a scheme the caller uses (http or https).
    fn allows_self(&self) -> bool {
        ["http", "https"].iter().any(|s| self.scheme_allows(s))
            && matches!(self.host, HostRule::Any | HostRule::ToSelf)
    }

    fn scheme_allows(&self, scheme: &str) -> bool {
        match &self.scheme {
            SchemeRule::Any => true,
            SchemeRule::Is(s) => s.eq_ignore_ascii_case(scheme),
        }
    }

    fn host_allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match &self.host {
            HostRule::Any => true,
            HostRule::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            HostRule::ToSelf => false,
            HostRule::Exact(h) => *h == host,
            HostRule::Cidr(net) => {
                let bare = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(&host);
                bare.parse::<IpAddr>().is_ok_and(|ip| net.contains(ip))
            }
        }
    }

    fn port_allows(&self, port: u16) -> bool {
        match self.port {
            PortRule::Any => true,
            PortRule::Port(p) => p == port,
            PortRule::Range(start, end) => (start..end).contains(&port),
        }
    }
}

fn parse_scheme(scheme: &str) -> Result<SchemeRule, String> {
    if scheme == "*" {
        return Ok(SchemeRule::Any);
    }
    if scheme.starts_with('{') {
        return Err("scheme lists are not supported".into());
    }
    if scheme.is_empty() || scheme.chars().any(|c| !c.is_ascii_alphabetic()) {
        return Err(format!("scheme {scheme:?} must be '*' or letters only"));
    }
    Ok(SchemeRule::Is(scheme.to_ascii_lowercase()))
}

fn parse_host(host: &str) -> Result<HostRule, String> {
    let host = host.trim();
    if host == "*" {
        return Ok(HostRule::Any);
    }
    if host == "self" || host == "self.alt" {
        return Ok(HostRule::ToSelf);
    }
    if host.starts_with('{') {
        return Err("host lists are not supported".into());
    }
    if let Some(net) = Cidr::parse(host) {
        return Ok(HostRule::Cidr(net));
    }
    if matches!(host.split('/').nth(1), Some(path) if !path.is_empty()) {
        return Err("hosts must not contain paths".into());
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') {
            return Err(format!(
                "invalid host {host:?}: wildcards are allowed only as prefixes"
            ));
        }
        return Ok(HostRule::Subdomain(format!(
            ".{}",
            domain.trim_end_matches('/').to_ascii_lowercase()
        )));
    }
    if host.contains('*') {
        return Err(format!(
            "invalid host {host:?}: wildcards are allowed only as subdomains"
        ));
    }
    let host = host.trim_end_matches('/');
    if host.is_empty() {
        return Err("missing host".into());
    }
    Ok(HostRule::Exact(host.to_ascii_lowercase()))
}

fn parse_port(port: &str, scheme: &str) -> Result<PortRule, String> {
    if port.is_empty() {
        return default_port(scheme).map(PortRule::Port).ok_or_else(|| {
            format!(
                "no port was provided and the scheme {scheme:?} does not have a known default port number"
            )
        });
    }
    if port == "*" {
        return Ok(PortRule::Any);
    }
    if port.starts_with('{') {
        return Err("port lists are not supported".into());
    }
    if let Some((start, end)) = port.split_once("..") {
        let bad = || format!("port range {port:?} contains non-number");
        return Ok(PortRule::Range(
            start.parse().map_err(|_| bad())?,
            end.parse().map_err(|_| bad())?,
        ));
    }
    port.parse()
        .map(PortRule::Port)
        .map_err(|_| format!("port {port:?} is not a number"))
}

/// A component's parsed `allowed_outbound_hosts`. Empty means no outbound access at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parses literal entries (no templates); the error names the entry index and reason.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, (usize, String)> {
        let hosts = entries
            .iter()
            .enumerate()
            .map(|(i, e)| AllowedHost::parse(e.as_ref()).map_err(|reason| (i, reason)))
            .collect::<Result<_, _>>()?;
        Ok(Self { hosts })
    }

    /// The rules of one component, with `{{ var }}` templates resolved through the
    /// resolver. Errors name `component.<id>.allowed_outbound_hosts[N]` and show the
    /// entry as written (never the resolved value, which may contain a secret).
    pub fn for_component(
        manifest: &AppManifest,
        component_id: &str,
        resolver: &Resolver,
    ) -> Result<Self, ManifestError> {
        let component_field = join("component", component_id);
        let component = manifest
            .component(component_id)
            .ok_or_else(|| ManifestError::Invalid {
                field: component_field.clone(),
                reason: "no such component".into(),
            })?;
        let mut hosts = Vec::new();
        for (i, entry) in component.allowed_outbound_hosts.iter().enumerate() {
            let field = format!("{component_field}.allowed_outbound_hosts[{i}]");
            let template = Template::parse(entry).map_err(|source| ManifestError::Template {
                field: field.clone(),
                template: entry.clone(),
                source,
            })?;
            let (resolved, templated) = if template.is_literal() {
                (entry.clone(), false)
            } else {
                let value = resolver.render(&template).map_err(|variable| {
                    ManifestError::UndefinedVariable {
                        field: field.clone(),
                        variable,
                        defined: resolver.variable_names(),
                    }
                })?;
                (value, true)
            };
            let host =
                AllowedHost::parse(&resolved).map_err(|reason| ManifestError::AllowedHost {
                    field,
                    entry: entry.clone(),
                    reason: if templated {
                        format!("after resolving variables: {reason}")
                    } else {
                        reason
                    },
                })?;
            hosts.push(host);
        }
        Ok(Self { hosts })
    }

    /// Whether `scheme://host:port` may be connected to (port already defaulted).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.hosts.iter().any(|h| h.allows(scheme, host, port))
    }

    /// `allows` for a parsed target.
    pub fn allows_target(&self, target: &Target) -> bool {
        self.allows(&target.scheme, &target.host, target.port)
    }

    /// Whether requests to the app itself (relative URLs, `http://self`) are allowed.
    pub fn allows_self(&self) -> bool {
        self.hosts.iter().any(AllowedHost::allows_self)
    }

    /// The parsed entries.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.hosts
    }

    /// True when nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(entry: &str) -> AllowedHost {
        AllowedHost::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e}"))
    }

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries).unwrap()
    }

    #[test]
    fn parses_like_spin() {
        let cases: &[(&str, SchemeRule, HostRule, PortRule)] = &[
            (
                "http://spin.fermyon.dev",
                SchemeRule::Is("http".into()),
                HostRule::Exact("spin.fermyon.dev".into()),
                PortRule::Port(80),
            ),
            (
                "http://spin.fermyon.dev/",
                SchemeRule::Is("http".into()),
                HostRule::Exact("spin.fermyon.dev".into()),
                PortRule::Port(80),
            ),
            (
                "https://spin.fermyon.dev:5555",
                SchemeRule::Is("https".into()),
                HostRule::Exact("spin.fermyon.dev".into()),
                PortRule::Port(5555),
            ),
            (
                "http://spin.fermyon.dev:4444/",
                SchemeRule::Is("http".into()),
                HostRule::Exact("spin.fermyon.dev".into()),
                PortRule::Port(4444),
            ),
            (
                "http://spin.fermyon.dev:4444..5555",
                SchemeRule::Is("http".into()),
                HostRule::Exact("spin.fermyon.dev".into()),
                PortRule::Range(4444, 5555),
            ),
            (
                "*://spin.fermyon.dev:7777",
                SchemeRule::Any,
                HostRule::Exact("spin.fermyon.dev".into()),
                PortRule::Port(7777),
            ),
            (
                "http://self",
                SchemeRule::Is("http".into()),
                HostRule::ToSelf,
                PortRule::Port(80),
            ),
            (
                "http://*.example.com",
                SchemeRule::Is("http".into()),
                HostRule::Subdomain(".example.com".into()),
                PortRule::Port(80),
            ),
            (
                "http://[::1]:8001",
                SchemeRule::Is("http".into()),
                HostRule::Exact("[::1]".into()),
                PortRule::Port(8001),
            ),
            ("*://*:*", SchemeRule::Any, HostRule::Any, PortRule::Any),
            (
                "postgres://db",
                SchemeRule::Is("postgres".into()),
                HostRule::Exact("db".into()),
                PortRule::Port(5432),
            ),
            (
                "redis://cache",
                SchemeRule::Is("redis".into()),
                HostRule::Exact("cache".into()),
                PortRule::Port(6379),
            ),
            (
                "mysql://db",
                SchemeRule::Is("mysql".into()),
                HostRule::Exact("db".into()),
                PortRule::Port(3306),
            ),
            (
                "HTTPS://API.Example.com",
                SchemeRule::Is("https".into()),
                HostRule::Exact("api.example.com".into()),
                PortRule::Port(443),
            ),
            (
                "*://127.0.0.0/24:80",
                SchemeRule::Any,
                HostRule::Cidr(Cidr::parse("127.0.0.0/24").unwrap()),
                PortRule::Port(80),
            ),
        ];
        for (entry, scheme, h, port) in cases {
            let parsed = host(entry);
            assert_eq!(
                (&parsed.scheme, &parsed.host, &parsed.port),
                (scheme, h, port),
                "{entry}"
            );
            assert_eq!(parsed.as_str(), *entry);
        }
    }

    #[test]
    fn parse_errors() {
        for (entry, msg) in [
            ("spin.fermyon.dev", "does not contain a scheme"),
            ("spin.fermyon.dev:80", "does not contain a scheme"),
            ("localhost", "does not contain a scheme"),
            ("self", "write \"http://self\""),
            ("*", "not an allowed outbound host format"),
            ("", "not an allowed outbound host format"),
            ("insecure:allow-all", "'insecure:allow-all' is not allowed"),
            ("http://spin.fermyon.dev/a", "hosts must not contain paths"),
            (
                "http://spin.fermyon.dev:6666/a/b",
                "must not contain a path",
            ),
            ("http://*.fermyon.dev/a", "hosts must not contain paths"),
            ("http://[::1]", "port \"1]\" is not a number"),
            (
                "*://127.0.0.0/24",
                "scheme \"*\" does not have a known default port",
            ),
            (
                "tcp://host",
                "scheme \"tcp\" does not have a known default port",
            ),
            ("h2c://host:80", "must be '*' or letters only"),
            ("://host:80", "must be '*' or letters only"),
            ("{http,https}://host", "scheme lists are not supported"),
            ("http://{a,b}", "host lists are not supported"),
            ("http://host:{80,81}", "port lists are not supported"),
            ("http://*.ex*.com", "wildcards are allowed only as prefixes"),
            ("http://ex*.com", "wildcards are allowed only as subdomains"),
            ("http://", "missing host"),
            ("http://host:abc", "port \"abc\" is not a number"),
            (
                "http://host:1..x",
                "port range \"1..x\" contains non-number",
            ),
        ] {
            let err = AllowedHost::parse(entry).unwrap_err();
            assert!(err.contains(msg), "{entry}: {err}");
        }
    }

    #[test]
    fn specific_hosts() {
        let a = hosts(&["*://spin.fermyon.dev:443", "http://example.com:8383"]);
        assert!(a.allows("http", "example.com", 8383));
        assert!(a.allows("https", "spin.fermyon.dev", 443));
        assert!(a.allows("postgres", "spin.fermyon.dev", 443));
        assert!(!a.allows("http", "example.com", 80));
        assert!(!a.allows("https", "example.com", 8383));
        assert!(!a.allows("http", "google.com", 80));
        assert!(a.allows("HTTP", "Example.COM", 8383));
    }

    #[test]
    fn default_ports_and_wildcards() {
        let a = hosts(&["https://api.openai.com", "http://localhost:*"]);
        assert!(a.allows("https", "api.openai.com", 443));
        assert!(!a.allows("https", "api.openai.com", 8443));
        assert!(!a.allows("http", "api.openai.com", 443));
        assert!(a.allows("http", "localhost", 1));
        assert!(a.allows("http", "localhost", 65535));
        assert!(!a.allows("https", "localhost", 443));
    }

    #[test]
    fn subdomain_wildcards() {
        let a = hosts(&["http://*.example.com", "http://*.example2.com:8383"]);
        assert!(a.allows("http", "a.example.com", 80));
        assert!(a.allows("http", "a.b.example.com", 80));
        assert!(a.allows("http", "a.b.example2.com", 8383));
        assert!(!a.allows("http", "a.b.example2.com", 80));
        assert!(!a.allows("http", "example.com", 80));
        assert!(!a.allows("http", "example.com", 8383));
        assert!(!a.allows("http", "myexample.com", 80));
        let any = hosts(&["*://*.example.com:443"]);
        assert!(any.allows("https", "x.example.com", 443));
        assert!(any.allows("wss", "x.example.com", 443));
    }

    #[test]
    fn port_ranges_exclude_the_end() {
        let a = hosts(&["http://127.0.0.1:8000..8010"]);
        assert!(a.allows("http", "127.0.0.1", 8000));
        assert!(a.allows("http", "127.0.0.1", 8009));
        assert!(!a.allows("http", "127.0.0.1", 8010));
        assert!(!a.allows("http", "127.0.0.1", 7999));
    }

    #[test]
    fn cidr_networks() {
        let a = hosts(&["*://127.0.0.1/24:63551", "*://ff00::/8:80"]);
        assert!(a.allows("tcp", "127.0.0.9", 63551));
        assert!(!a.allows("tcp", "127.0.1.9", 63551));
        assert!(!a.allows("tcp", "localhost", 63551));
        assert!(a.allows("http", "[ff02::1]", 80));
    }

    #[test]
    fn self_requests() {
        assert!(hosts(&["http://self"]).allows_self());
        assert!(hosts(&["https://self"]).allows_self());
        assert!(hosts(&["http://self.alt"]).allows_self());
        assert!(hosts(&["*://*:*"]).allows_self());
        assert!(hosts(&["http://*:80"]).allows_self());
        assert!(!hosts(&["postgres://self"]).allows_self());
        assert!(!hosts(&["http://localhost"]).allows_self());
        assert!(!hosts(&[] as &[&str]).allows_self());
        // `self` is not a host name for ordinary requests.
        assert!(!hosts(&["http://self"]).allows("http", "self", 80));
    }

    #[test]
    fn empty_allows_nothing() {
        let a = AllowedHosts::default();
        assert!(a.is_empty());
        assert!(!a.allows("http", "localhost", 80));
    }

    #[test]
    fn parse_reports_index() {
        let err = AllowedHosts::parse(&["http://ok", "nope"]).unwrap_err();
        assert_eq!(err.0, 1);
        assert!(err.1.contains("does not contain a scheme"));
        assert_eq!(hosts(&["http://a", "http://b"]).entries().len(), 2);
    }

    #[test]
    fn targets() {
        let a = hosts(&["postgres://db:5432"]);
        let t = crate::outbound::parse_target("postgres://u:p@db/app", "postgres").unwrap();
        assert!(a.allows_target(&t));
        let t = crate::outbound::parse_target("postgres://u:p@db:5433/app", "postgres").unwrap();
        assert!(!a.allows_target(&t));
    }

    fn manifest(hosts: &str) -> AppManifest {
        crate::load::parse(
            &format!(
                r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
db_host = {{ default = "db.internal" }}
db_url = {{ required = true, secret = true }}
[component.kb]
source = "kb.wasm"
allowed_outbound_hosts = [{hosts}]
"#
            ),
            std::path::Path::new("/app"),
        )
        .unwrap()
    }

    fn resolver(m: &AppManifest, db_url: &str) -> Resolver {
        let db_url = db_url.to_string();
        Resolver::new(m, move |k| {
            (k == "SPIN_VARIABLE_DB_URL").then(|| db_url.clone())
        })
        .unwrap()
    }

    #[test]
    fn for_component_resolves_templates() {
        let m = manifest(r#""postgres://{{ db_host }}:6543", "https://api.openai.com""#);
        let a = AllowedHosts::for_component(&m, "kb", &resolver(&m, "x")).unwrap();
        assert!(a.allows("postgres", "db.internal", 6543));
        assert!(!a.allows("postgres", "db.internal", 5432));
        assert!(a.allows("https", "api.openai.com", 443));
        assert_eq!(a.entries()[0].as_str(), "postgres://db.internal:6543");
    }

    #[test]
    fn for_component_errors_never_show_resolved_values() {
        let m = manifest(r#""{{ db_url }}""#);
        let err = AllowedHosts::for_component(&m, "kb", &resolver(&m, "s3cr3t.example.com"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "component.kb.allowed_outbound_hosts[0]: invalid allowed outbound host \"{{ db_url }}\": after resolving variables: does not contain a scheme (e.g., 'http://' or '*://')"
        );
        assert!(!err.contains("s3cr3t"));
        let err = AllowedHosts::for_component(&m, "ghost", &resolver(&m, "x")).unwrap_err();
        assert_eq!(err.to_string(), "component.ghost: no such component");
    }
}
