//! The `spin-*` request headers Spin adds for the guest (Spin's
//! `trigger-http/src/headers.rs`, `compute_default_headers`): same names, same values,
//! same order. The host should *insert* them (replacing any the client sent) so clients
//! cannot spoof them.

use std::fmt::Display;

use super::RouteMatch;

/// `{scheme}://{host}{path_and_query}` the way Spin builds `spin-full-url`: the scheme
/// defaults to `http` and the host (the `Host` header) to `localhost`.
pub fn full_url(scheme: Option<&str>, host: Option<&str>, path_and_query: &str) -> String {
    format!(
        "{}://{}{}",
        scheme.unwrap_or("http"),
        host.unwrap_or("localhost"),
        path_and_query
    )
}

/// All `spin-*` headers for a matched request, lowercase names. `client_addr` is
/// anything printable: a `SocketAddr` (`127.0.0.1:8777`), or an empty string for
/// in-process requests that have no client.
///
/// `spin-base-path` carries the application base (`/` unless the manifest sets
/// `[application.trigger.http] base`; current Spin always sends `/`). Each `:name`
/// capture becomes `spin-path-match-<name>` with `_` turned into `-` (Spin uppercases
/// `SPIN_PATH_MATCH_<NAME>` and then maps `_` to `-` and lowercases).
pub fn spin_headers(
    m: &RouteMatch,
    full_url: &str,
    client_addr: impl Display,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("spin-path-info".to_string(), m.path_info.clone()),
        ("spin-full-url".to_string(), full_url.to_string()),
        ("spin-matched-route".to_string(), m.based_route.clone()),
        ("spin-base-path".to_string(), m.base_path.clone()),
        ("spin-raw-component-route".to_string(), m.raw_route.clone()),
        (
            "spin-component-route".to_string(),
            m.component_route.clone(),
        ),
        ("spin-client-addr".to_string(), client_addr.to_string()),
    ];
    for (name, value) in &m.params {
        let name = format!("spin-path-match-{name}")
            .replace('_', "-")
            .to_ascii_lowercase();
        headers.push((name, value.clone()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{HttpRoute, HttpTrigger};
    use crate::routes::Router;

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    fn router(route: &str) -> Router {
        Router::build(
            "/",
            &[HttpTrigger {
                index: 0,
                id: None,
                component: "DUMMY".into(),
                route: HttpRoute::Path(route.into()),
            }],
        )
        .unwrap()
    }

    #[test]
    fn default_headers_match_spin_test() {
        // Spin's headers.rs test_default_headers.
        let m = router("/foo/...").route("/foo/bar").unwrap();
        let url = full_url(
            Some("https"),
            Some("fermyon.dev"),
            "/foo/bar?key1=value1&key2=value2",
        );
        let client: std::net::SocketAddr = "127.0.0.1:8777".parse().unwrap();
        let h = spin_headers(&m, &url, client);
        assert_eq!(
            get(&h, "spin-full-url"),
            "https://fermyon.dev/foo/bar?key1=value1&key2=value2"
        );
        assert_eq!(get(&h, "spin-path-info"), "/bar");
        assert_eq!(get(&h, "spin-matched-route"), "/foo/...");
        assert_eq!(get(&h, "spin-base-path"), "/");
        assert_eq!(get(&h, "spin-raw-component-route"), "/foo/...");
        assert_eq!(get(&h, "spin-component-route"), "/foo");
        assert_eq!(get(&h, "spin-client-addr"), "127.0.0.1:8777");
        assert_eq!(h.len(), 7);
        assert_eq!(h[0].0, "spin-path-info");
    }

    #[test]
    fn named_wildcards_match_spin_test() {
        // Spin's headers.rs test_default_headers_with_named_wildcards.
        let m = router("/foo/:userid/...").route("/foo/42/bar").unwrap();
        let h = spin_headers(&m, "https://fermyon.dev/foo/42/bar", "127.0.0.1:8777");
        assert_eq!(get(&h, "spin-path-info"), "/bar");
        assert_eq!(get(&h, "spin-matched-route"), "/foo/:userid/...");
        assert_eq!(get(&h, "spin-raw-component-route"), "/foo/:userid/...");
        assert_eq!(get(&h, "spin-component-route"), "/foo/:userid");
        assert_eq!(get(&h, "spin-path-match-userid"), "42");
    }

    #[test]
    fn param_names_are_lowercased_with_dashes() {
        let m = router("/a/:User_Id").route("/a/7").unwrap();
        let client: std::net::SocketAddr = "[::1]:9".parse().unwrap();
        let h = spin_headers(&m, "http://localhost/a/7", client);
        assert_eq!(get(&h, "spin-path-match-user-id"), "7");
        assert_eq!(get(&h, "spin-client-addr"), "[::1]:9");
        let h = spin_headers(&m, "http://localhost/a/7", "");
        assert_eq!(get(&h, "spin-client-addr"), "");
    }

    #[test]
    fn full_url_defaults() {
        assert_eq!(full_url(None, None, "/x?y"), "http://localhost/x?y");
        assert_eq!(full_url(Some("https"), Some("h:8"), "/"), "https://h:8/");
    }
}
