//! HTTP routing: which component handles a request path, and what Spin tells it about the
//! match. Built from the `[[trigger.http]]` entries and `[application.trigger.http] base`.
//!
//! Differences from Spin, on purpose: a duplicate route (two triggers matching exactly
//! the same paths) is a load error naming both triggers, where Spin warns and lets the
//! last one win.

mod headers;
mod pattern;

pub use headers::{full_url, spin_headers};
pub use pattern::RoutePattern;

use crate::error::ManifestError;
use crate::manifest::{AppManifest, HttpRoute, HttpTrigger};
use pattern::split_path;

/// Maps request paths to components.
#[derive(Clone, Debug)]
pub struct Router {
    base: String,
    routes: Vec<Entry>,
    private: Vec<String>,
}

#[derive(Clone, Debug)]
struct Entry {
    pattern: RoutePattern,
    component: String,
}

/// A successful route lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// The component to invoke.
    pub component_id: String,
    /// The route as written in the manifest (`/hello/...`): `spin-raw-component-route`.
    pub raw_route: String,
    /// Base plus route (`/hello/...` under base `/`): `spin-matched-route`.
    pub based_route: String,
    /// The route without a trailing `/...` (`/hello`): `spin-component-route`.
    pub component_route: String,
    /// What the wildcard matched (`/x/y` for `/hello/x/y`), empty for exact routes:
    /// `spin-path-info`.
    pub path_info: String,
    /// The application base: `spin-base-path`.
    pub base_path: String,
    /// `:name` captures, in route order: `spin-path-match-<name>`.
    pub params: Vec<(String, String)>,
}

impl RouteMatch {
    /// A match as if `path` had hit a `/...` route of `component_id`. Spin uses this for
    /// in-process requests (service chaining, private components), which skip routing.
    pub fn synthetic(component_id: &str, path: &str) -> Self {
        Self {
            component_id: component_id.to_string(),
            raw_route: "/...".to_string(),
            based_route: "/...".to_string(),
            component_route: String::new(),
            path_info: path.to_string(),
            base_path: "/".to_string(),
            params: Vec::new(),
        }
    }

    /// The value captured for `:name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Router {
    /// The router for a loaded manifest.
    pub fn new(manifest: &AppManifest) -> Result<Self, ManifestError> {
        Self::build(&manifest.application.http_base, &manifest.http_triggers)
    }

    /// Builds from a base path and HTTP triggers. Fails on a bad route (naming
    /// `trigger.http[N].route`) or on two triggers with the same route.
    pub fn build(base: &str, triggers: &[HttpTrigger]) -> Result<Self, ManifestError> {
        let mut routes: Vec<(Entry, &HttpTrigger)> = Vec::new();
        let mut private = Vec::new();
        for trigger in triggers {
            let field = format!("{}.route", trigger.field());
            let raw = match &trigger.route {
                HttpRoute::Private => {
                    if !private.contains(&trigger.component) {
                        private.push(trigger.component.clone());
                    }
                    continue;
                }
                HttpRoute::Path(raw) => raw,
            };
            let pattern =
                RoutePattern::parse(base, raw).map_err(|reason| ManifestError::Invalid {
                    field: field.clone(),
                    reason,
                })?;
            if let Some((other, other_trigger)) = routes
                .iter()
                .find(|(e, _)| e.pattern.shape() == pattern.shape())
            {
                return Err(ManifestError::DuplicateRoute {
                    field,
                    route: raw.clone(),
                    other_field: format!("{}.route", other_trigger.field()),
                    other_route: other.pattern.raw().to_string(),
                    other_component: other.component.clone(),
                });
            }
            routes.push((
                Entry {
                    pattern,
                    component: trigger.component.clone(),
                },
                trigger,
            ));
        }
        Ok(Self {
            base: base.to_string(),
            routes: routes.into_iter().map(|(e, _)| e).collect(),
            private,
        })
    }

    /// The most specific public route matching `path` (a query string, if passed, is
    /// ignored). `None` means 404. Private routes never match.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
        let segs = split_path(path);
        let mut best: Option<(&Entry, pattern::PathMatch)> = None;
        for entry in &self.routes {
            let Some(m) = entry.pattern.matches(path, &segs) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((b, _)) => entry.pattern.specificity_cmp(&b.pattern).is_lt(),
            };
            if better {
                best = Some((entry, m));
            }
        }
        let (entry, m) = best?;
        Some(RouteMatch {
            component_id: entry.component.clone(),
            raw_route: entry.pattern.raw().to_string(),
            based_route: entry.pattern.based().to_string(),
            component_route: entry.pattern.component_route().to_string(),
            path_info: m.path_info,
            base_path: self.base.clone(),
            params: m.params,
        })
    }

    /// Components with a `route = { private = true }` trigger: reachable in-process
    /// (service chaining) but never from outside.
    pub fn private_components(&self) -> &[String] {
        &self.private
    }

    /// Public routes as `(route as written, component id)`, in manifest order.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.routes
            .iter()
            .map(|e| (e.pattern.raw(), e.component.as_str()))
    }

    /// True when the component has any HTTP trigger, public or private: what
    /// `http://<id>.spin.internal` service chaining requires.
    pub fn has_http_component(&self, component_id: &str) -> bool {
        self.private.iter().any(|c| c == component_id)
            || self.routes.iter().any(|e| e.component == component_id)
    }

    /// The application base path.
    pub fn base(&self) -> &str {
        &self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trig(index: usize, component: &str, route: &str) -> HttpTrigger {
        HttpTrigger {
            index,
            id: None,
            component: component.into(),
            route: HttpRoute::Path(route.into()),
        }
    }

    fn router(routes: &[(&str, &str)]) -> Router {
        let triggers: Vec<_> = routes
            .iter()
            .enumerate()
            .map(|(i, (c, r))| trig(i, c, r))
            .collect();
        Router::build("/", &triggers).unwrap()
    }

    fn comp(r: &Router, path: &str) -> Option<String> {
        r.route(path).map(|m| m.component_id)
    }

    #[test]
    fn exact_routes() {
        let r = router(&[("foo", "/foo"), ("foobar", "/foo/bar")]);
        assert_eq!(comp(&r, "/foo").as_deref(), Some("foo"));
        assert_eq!(comp(&r, "/foo/bar").as_deref(), Some("foobar"));
        assert_eq!(comp(&r, "/foo/baz"), None);
        assert_eq!(comp(&r, "/"), None);
    }

    #[test]
    fn respects_base() {
        let triggers = [trig(0, "foo", "/foo"), trig(1, "foobar", "/foo/bar")];
        let r = Router::build("/base", &triggers).unwrap();
        assert_eq!(comp(&r, "/base/foo").as_deref(), Some("foo"));
        assert_eq!(comp(&r, "/base/foo/bar").as_deref(), Some("foobar"));
        assert_eq!(comp(&r, "/foo"), None);
        let m = r.route("/base/foo").unwrap();
        assert_eq!(m.based_route, "/base/foo");
        assert_eq!(m.raw_route, "/foo");
        assert_eq!(m.base_path, "/base");
        assert_eq!(r.base(), "/base");
    }

    #[test]
    fn catch_all_wildcard() {
        let r = router(&[("all", "/...")]);
        for p in ["/foo/bar", "/abc/", "/", "/this/should/be/captured?abc=def"] {
            assert_eq!(comp(&r, p).as_deref(), Some("all"), "{p}");
        }
        // The query string is not part of the path.
        assert_eq!(r.route("/this/is?abc=def").unwrap().path_info, "/this/is");
    }

    #[test]
    fn longest_wildcard_prefix_wins_regardless_of_order() {
        let routes = [
            ("one", "/one/..."),
            ("onetwo", "/one/two/..."),
            ("onetwothree", "/one/two/three/..."),
        ];
        let mut reversed = routes;
        reversed.reverse();
        for r in [router(&routes), router(&reversed)] {
            assert_eq!(
                comp(&r, "/one/two/three/four").as_deref(),
                Some("onetwothree")
            );
            assert_eq!(comp(&r, "/one/two/x").as_deref(), Some("onetwo"));
            assert_eq!(comp(&r, "/one").as_deref(), Some("one"));
        }
    }

    #[test]
    fn exact_beats_parameter_beats_wildcard() {
        let r = router(&[
            ("wild", "/users/..."),
            ("param", "/users/:id"),
            ("exact", "/users/me"),
            ("root", "/..."),
        ]);
        assert_eq!(comp(&r, "/users/me").as_deref(), Some("exact"));
        assert_eq!(comp(&r, "/users/42").as_deref(), Some("param"));
        assert_eq!(comp(&r, "/users/42/posts").as_deref(), Some("wild"));
        assert_eq!(comp(&r, "/users").as_deref(), Some("wild"));
        assert_eq!(comp(&r, "/other").as_deref(), Some("root"));
        let r = router(&[("one_exact", "/one"), ("wildcard", "/...")]);
        assert_eq!(comp(&r, "/one").as_deref(), Some("one_exact"));
    }

    #[test]
    fn route_match_fields_for_wildcard() {
        let r = router(&[("hello", "/hello/...")]);
        let m = r.route("/hello/x/y").unwrap();
        assert_eq!(
            m,
            RouteMatch {
                component_id: "hello".into(),
                raw_route: "/hello/...".into(),
                based_route: "/hello/...".into(),
                component_route: "/hello".into(),
                path_info: "/x/y".into(),
                base_path: "/".into(),
                params: vec![],
            }
        );
    }

    #[test]
    fn route_match_fields_for_exact_and_params() {
        let r = router(&[("root", "/"), ("user", "/users/:id/...")]);
        let m = r.route("/").unwrap();
        assert_eq!(m.component_id, "root");
        assert_eq!(m.path_info, "");
        assert_eq!(m.raw_route, "/");
        assert_eq!(m.component_route, "/");
        // Spin's sanitize_with_base turns "/" under base "/" into "".
        assert_eq!(m.based_route, "");
        let m = r.route("/users/42/posts").unwrap();
        assert_eq!(m.param("id"), Some("42"));
        assert_eq!(m.param("nope"), None);
        assert_eq!(m.component_route, "/users/:id");
        assert_eq!(m.path_info, "/posts");
    }

    #[test]
    fn duplicate_routes_are_errors_naming_both_triggers() {
        for (a, b) in [
            ("/foo", "/foo"),
            ("/foo", "/foo/"),
            ("/...", "/..."),
            ("/a/:x", "/a/:y"),
            ("/a/...", "/a/*"),
        ] {
            let triggers = [
                trig(0, "first", a),
                trig(1, "other", "/z"),
                trig(2, "second", b),
            ];
            let err = Router::build("/", &triggers).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "trigger.http[2].route: route {b:?} duplicates trigger.http[0].route (route {a:?}, component \"first\")"
                )
            );
        }
    }

    #[test]
    fn bad_route_names_the_field() {
        let triggers = [trig(0, "a", "/ok"), trig(1, "b", "/x/.../y")];
        let err = Router::build("/", &triggers).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("trigger.http[1].route: route \"/x/.../y\": a wildcard"),
            "{err}"
        );
    }

    #[test]
    fn private_routes_never_match_but_are_recorded() {
        let triggers = [
            trig(0, "public", "/pub"),
            HttpTrigger {
                index: 1,
                id: None,
                component: "internal".into(),
                route: HttpRoute::Private,
            },
            HttpTrigger {
                index: 2,
                id: None,
                component: "internal".into(),
                route: HttpRoute::Private,
            },
        ];
        let r = Router::build("/", &triggers).unwrap();
        assert_eq!(r.private_components(), ["internal"]);
        assert_eq!(comp(&r, "/internal"), None);
        assert!(r.has_http_component("internal"));
        assert!(r.has_http_component("public"));
        assert!(!r.has_http_component("nope"));
        assert_eq!(r.routes().collect::<Vec<_>>(), [("/pub", "public")]);
    }

    #[test]
    fn synthetic_match() {
        let m = RouteMatch::synthetic("svc", "/a/b");
        assert_eq!(m.component_id, "svc");
        assert_eq!(m.raw_route, "/...");
        assert_eq!(m.component_route, "");
        assert_eq!(m.path_info, "/a/b");
    }
}
