//! Postgres connection strings, read exactly the way `tokio-postgres` reads them (the
//! driver the host connects with), so the hosts we check are the hosts it dials. Spin
//! does the same: it parses with `tokio_postgres::Config` and checks every host against
//! `allowed_outbound_hosts` with scheme `postgres`; Unix sockets are never allowed.
//!
//! Both forms are supported:
//! - URL: `postgres[ql]://[user[:pw]@]host[:port][,host2[:port]]/db?host=..&port=..`
//!   (credentials end at the *first* `@`, as in tokio-postgres);
//! - key-value: `host=db port=5432 user=app` (values may be single-quoted).
//!
//! Host `i` connects on `port[i]`, else the first port, else 5432 (tokio-postgres'
//! rule). `hostaddr` entries, which tokio-postgres dials instead of `host`, are checked
//! too, so a connection is allowed only if every address involved is.

use super::target::{Target, TargetError, check_host, parse_port, split_host_port};

const PREFIXES: [&str; 2] = ["postgres://", "postgresql://"];

/// True for the URL form (tokio-postgres matches the prefix case-sensitively).
pub(super) fn is_postgres_url(s: &str) -> bool {
    PREFIXES.iter().any(|p| s.starts_with(p))
}

/// Every `(postgres, host, port)` a connection string may dial.
pub fn postgres_targets(conn: &str) -> Result<Vec<Target>, TargetError> {
    let conn = conn.trim();
    let mut params = Params::default();
    match PREFIXES.iter().find_map(|p| conn.strip_prefix(p)) {
        Some(rest) => parse_url(rest, &mut params)?,
        None => parse_key_values(conn, &mut params)?,
    }
    params.targets()
}

#[derive(Default)]
struct Params {
    hosts: Vec<String>,
    hostaddrs: Vec<String>,
    ports: Vec<u16>,
}

impl Params {
    fn set(&mut self, key: &str, value: &str) -> Result<(), TargetError> {
        match key {
            "host" => self.hosts.extend(value.split(',').map(str::to_string)),
            "hostaddr" => self.hostaddrs.extend(value.split(',').map(str::to_string)),
            "port" => {
                for port in value.split(',') {
                    self.ports.push(if port.is_empty() {
                        5432
                    } else {
                        parse_port(port)?
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn targets(&self) -> Result<Vec<Target>, TargetError> {
        let count = self.hosts.len().max(self.hostaddrs.len());
        if count == 0 {
            return Err(TargetError("the connection string names no host".into()));
        }
        let mut out = Vec::new();
        for i in 0..count {
            let port = self
                .ports
                .get(i)
                .or(self.ports.first())
                .copied()
                .unwrap_or(5432);
            for host in [self.hosts.get(i), self.hostaddrs.get(i)]
                .into_iter()
                .flatten()
            {
                if host.starts_with('/') {
                    return Err(TargetError(format!(
                        "Unix-socket host {host:?} is not allowed"
                    )));
                }
                if host.contains('%') {
                    return Err(TargetError(format!(
                        "percent-encoded host {host:?} is not supported"
                    )));
                }
                // Bare IPv6 (`::1`) gets brackets so it compares equal to URL-style entries.
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                let target = Target {
                    scheme: "postgres".into(),
                    host: check_host(&host)?,
                    port,
                };
                if !out.contains(&target) {
                    out.push(target);
                }
            }
        }
        Ok(out)
    }
}

/// tokio-postgres' `UrlParser`, minus what does not affect the destination.
fn parse_url(rest: &str, params: &mut Params) -> Result<(), TargetError> {
    let rest = rest.split_once('@').map_or(rest, |(_, after)| after);
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (hosts, rest) = rest.split_at(host_end);
    if !hosts.is_empty() {
        for chunk in hosts.split(',') {
            let (host, port) = split_host_port(chunk)?;
            // tokio-postgres strips the brackets; `Params::targets` puts them back.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            params.hosts.push(host.to_string());
            params.ports.push(port.unwrap_or(5432));
        }
    }
    let Some((_, query)) = rest.split_once('?') else {
        return Ok(());
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| TargetError(format!("unterminated parameter {pair:?}")))?;
        params.set(key, value)?;
    }
    Ok(())
}

/// tokio-postgres' key-value `Parser`: `key = value` pairs separated by whitespace;
/// values are bare or single-quoted, with `\` escaping the next character.
fn parse_key_values(s: &str, params: &mut Params) -> Result<(), TargetError> {
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            return Ok(());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(TargetError(format!(
                "expected '=' after {key:?} in connection string"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                None if quoted => {
                    return Err(TargetError(
                        "unterminated quoted connection parameter value".into(),
                    ));
                }
                None => break,
                Some('\'') if quoted => break,
                Some(c) if !quoted && c.is_whitespace() => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
            }
        }
        if value.is_empty() && !quoted {
            return Err(TargetError(format!("missing value for {key:?}")));
        }
        params.set(&key, &value)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(conn: &str) -> Vec<(String, u16)> {
        postgres_targets(conn)
            .unwrap()
            .into_iter()
            .map(|t| {
                assert_eq!(t.scheme, "postgres");
                (t.host, t.port)
            })
            .collect()
    }

    fn h(host: &str, port: u16) -> (String, u16) {
        (host.to_string(), port)
    }

    #[test]
    fn url_form() {
        assert_eq!(
            hosts("postgres://user:pw@host:6543/db?x=1"),
            [h("host", 6543)]
        );
        assert_eq!(hosts("postgresql://host/db"), [h("host", 5432)]);
        assert_eq!(hosts("postgres://Host"), [h("host", 5432)]);
        assert_eq!(hosts("postgres://u:p#w@db/x"), [h("db", 5432)]);
        assert_eq!(hosts("postgres://[::1]:5433/db"), [h("[::1]", 5433)]);
        assert_eq!(
            hosts("postgres://a:1,b:2,c/db"),
            [h("a", 1), h("b", 2), h("c", 5432)]
        );
        // Query parameters add hosts and ports.
        assert_eq!(hosts("postgres:///db?host=a&port=7000"), [h("a", 7000)]);
    }

    #[test]
    fn key_value_form() {
        assert_eq!(hosts("host=db port=6000 user=app"), [h("db", 6000)]);
        assert_eq!(hosts("host = db dbname=x"), [h("db", 5432)]);
        assert_eq!(hosts("host='db' port='5'"), [h("db", 5)]);
        assert_eq!(hosts("password='a \\' b' host=db"), [h("db", 5432)]);
        assert_eq!(hosts("host=a,b port=1,2"), [h("a", 1), h("b", 2)]);
        assert_eq!(hosts("host=a,b port=9"), [h("a", 9), h("b", 9)]);
        assert_eq!(hosts("host=::1"), [h("[::1]", 5432)]);
        assert_eq!(
            hosts("host=db hostaddr=10.0.0.5"),
            [h("db", 5432), h("10.0.0.5", 5432)]
        );
    }

    #[test]
    fn errors() {
        for (conn, msg) in [
            ("postgres:///db", "names no host"),
            ("user=x", "names no host"),
            ("host=/var/run/postgresql", "Unix-socket host"),
            ("postgres:///db?host=%2Ftmp", "percent-encoded host"),
            ("host=db port=x", "invalid port \"x\""),
            ("host db", "expected '=' after \"host\""),
            ("host='db", "unterminated quoted"),
            ("host=", "missing value for \"host\""),
            (
                "postgres://db/x?sslmode",
                "unterminated parameter \"sslmode\"",
            ),
            ("postgres://db:99999", "invalid port"),
            ("host='a b'", "invalid host \"a b\""),
            // Credentials end at the first '@', as in tokio-postgres.
            ("postgres://u:p@x@db/app", "invalid host \"x@db\""),
        ] {
            let err = postgres_targets(conn).unwrap_err().to_string();
            assert!(err.contains(msg), "{conn}: {err}");
        }
    }
}
