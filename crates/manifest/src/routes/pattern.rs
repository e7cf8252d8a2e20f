//! One HTTP route pattern: parsing (with the application base), matching a request path,
//! and the specificity order used to pick the best of several matches.
//!
//! Spin delegates to the `routefinder` crate; we implement the subset Spin documents:
//! exact segments, `:name` parameter segments, and a trailing wildcard written `/...`
//! (or `/*`, which routefinder also accepts). Matching behaviour copied from Spin:
//! - an exact route also matches the path with one trailing slash (`/a` matches `/a/`);
//! - `/a/...` matches `/a`, `/a/`, `/a/x/y`; the wildcard part (Spin's `path_info`)
//!   keeps its leading and trailing slashes (`/x/y`, `/`, or empty for `/a`);
//! - parameters match one non-empty segment, captured without percent-decoding.

use std::cmp::Ordering;

/// One `/`-separated piece of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Exact(String),
    Param(String),
}

/// A parsed route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePattern {
    /// As written in the manifest (Spin's `raw_route`).
    raw: String,
    /// Base and route joined the way Spin does (`sanitize_with_base`): `/api` + `/x/...`
    /// gives `/api/x/...`; base `/` and route `/` give the empty string.
    based: String,
    segments: Vec<Segment>,
    /// Ends in `/...` (or `/*`).
    wildcard: bool,
}

/// The outcome of matching one path.
pub struct PathMatch {
    pub params: Vec<(String, String)>,
    /// Spin's `trailing_wildcard()`: empty for exact routes.
    pub path_info: String,
}

impl RoutePattern {
    /// Parses `raw` under application base `base` (which must start with `/`).
    pub fn parse(base: &str, raw: &str) -> Result<Self, String> {
        if let Some(c) = raw
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '?' || *c == '#')
        {
            return Err(format!(
                "route {raw:?} must be a path without whitespace, query or fragment (found {c:?})"
            ));
        }
        let based = join_base(base, raw);
        let (prefix, wildcard) = match based
            .strip_suffix("/...")
            .or_else(|| based.strip_suffix("/*"))
        {
            Some(prefix) => (prefix, true),
            None => (based.as_str(), false),
        };
        let mut segments = Vec::new();
        if let Some(rest) = prefix.strip_prefix('/') {
            for seg in rest.split('/') {
                segments.push(parse_segment(raw, seg)?);
            }
        } else if !prefix.is_empty() {
            return Err(format!("route {raw:?} must start with '/'"));
        }
        Ok(Self {
            raw: raw.to_string(),
            based,
            segments,
            wildcard,
        })
    }

    /// The route as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Base plus route, as Spin reports it in `spin-matched-route`.
    pub fn based(&self) -> &str {
        &self.based
    }

    /// The route as written minus a trailing `/...` (Spin's `raw_route_or_prefix`).
    pub fn component_route(&self) -> &str {
        self.raw.strip_suffix("/...").unwrap_or(&self.raw)
    }

    /// A key equal for two routes exactly when they match the same paths (parameter
    /// names do not matter), so equal keys mean a duplicate route.
    pub fn shape(&self) -> String {
        let mut key = String::new();
        for seg in &self.segments {
            key.push('/');
            match seg {
                // A leading ':' cannot start an exact segment, so this cannot collide.
                Segment::Exact(s) => key.push_str(s),
                Segment::Param(_) => key.push(':'),
            }
        }
        if self.wildcard {
            key.push_str("/...");
        }
        key
    }

    /// Matches `path` (no query string), given its segment byte ranges.
    pub fn matches(&self, path: &str, segs: &[(usize, usize)]) -> Option<PathMatch> {
        let n = self.segments.len();
        if segs.len() < n || (!self.wildcard && segs.len() != n) {
            return None;
        }
        let mut params = Vec::new();
        for (pat, &(start, end)) in self.segments.iter().zip(segs) {
            let seg = &path[start..end];
            match pat {
                Segment::Exact(s) if s == seg => {}
                Segment::Param(name) if !seg.is_empty() => {
                    params.push((name.clone(), seg.to_string()))
                }
                _ => return None,
            }
        }
        let path_info = if !self.wildcard {
            String::new()
        } else if n == 0 {
            path.to_string()
        } else {
            path[segs[n - 1].1..].to_string()
        };
        Some(PathMatch { params, path_info })
    }

    /// Most specific first: compare segment kinds left to right (exact before parameter
    /// before wildcard); the first difference decides. If one route's kinds are a prefix
    /// of the other's, the shorter wins: that only happens when the longer one's extra
    /// part is a wildcard matching nothing (`/a` beats `/a/...` for `/a`). This is
    /// routefinder's order: an exact route beats any wildcard, and the longest literal
    /// prefix wins among wildcards.
    pub fn specificity_cmp(&self, other: &Self) -> Ordering {
        let a = self.kinds();
        let b = other.kinds();
        a.iter()
            .zip(&b)
            .map(|(x, y)| x.cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.len().cmp(&b.len()))
    }

    fn kinds(&self) -> Vec<u8> {
        let mut kinds: Vec<u8> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Exact(_) => 0,
                Segment::Param(_) => 1,
            })
            .collect();
        if self.wildcard {
            kinds.push(2);
        }
        kinds
    }
}

/// Spin's `sanitize_with_base`: make the route absolute, then drop one trailing slash from
/// both base and route before concatenating.
fn join_base(base: &str, raw: &str) -> String {
    let route = if raw.starts_with('/') {
        raw.to_string()
    } else {
        format!("/{raw}")
    };
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_string();
    format!("{}{}", strip(base), strip(&route))
}

fn parse_segment(raw: &str, seg: &str) -> Result<Segment, String> {
    if seg.is_empty() {
        return Err(format!("route {raw:?} has an empty path segment ('//')"));
    }
    if seg == "..." || seg.starts_with('*') {
        return Err(format!(
            "route {raw:?}: a wildcard is only allowed as the final '/...'"
        ));
    }
    match seg.strip_prefix(':') {
        None => Ok(Segment::Exact(seg.to_string())),
        Some("") => Err(format!("route {raw:?}: parameters must be named (':name')")),
        Some(name)
            if name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            Ok(Segment::Param(name.to_string()))
        }
        Some(name) => Err(format!(
            "route {raw:?}: parameter name {name:?} may only contain ASCII letters, digits, '_' and '-'"
        )),
    }
}

/// Byte ranges of a request path's segments: leading slashes skipped, one trailing slash
/// ignored (so `/a/` has the single segment `a`, and `/` has none).
pub fn split_path(path: &str) -> Vec<(usize, usize)> {
    let start = path.len() - path.trim_start_matches('/').len();
    let mut end = path.len();
    if end > start && path.ends_with('/') {
        end -= 1;
    }
    let mut out = Vec::new();
    if start >= end {
        return out;
    }
    let mut pos = start;
    for seg in path[start..end].split('/') {
        out.push((pos, pos + seg.len()));
        pos += seg.len() + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(raw: &str) -> RoutePattern {
        RoutePattern::parse("/", raw).unwrap()
    }

    fn run(raw: &str, path: &str) -> Option<(Vec<(String, String)>, String)> {
        pat(raw)
            .matches(path, &split_path(path))
            .map(|m| (m.params, m.path_info))
    }

    #[test]
    fn based_route_matches_spin_sanitize_with_base() {
        for (base, raw, based) in [
            ("/", "/", ""),
            ("/", "/foo", "/foo"),
            ("/", "/foo/", "/foo"),
            ("/", "foo", "/foo"),
            ("/", "/...", "/..."),
            ("/", "/foo/...", "/foo/..."),
            ("/api", "/foo", "/api/foo"),
            ("/api/", "/foo/...", "/api/foo/..."),
            ("/api", "/", "/api"),
        ] {
            let p = RoutePattern::parse(base, raw).unwrap();
            assert_eq!(p.based(), based, "{base} + {raw}");
            assert_eq!(p.raw(), raw);
        }
    }

    #[test]
    fn component_route_strips_only_dots_wildcard() {
        assert_eq!(pat("/foo/...").component_route(), "/foo");
        assert_eq!(pat("/...").component_route(), "");
        assert_eq!(pat("/foo").component_route(), "/foo");
        assert_eq!(pat("/foo/:id/...").component_route(), "/foo/:id");
        assert_eq!(pat("/foo/*").component_route(), "/foo/*");
    }

    #[test]
    fn parse_errors() {
        for (raw, why) in [
            ("/a//b", "empty path segment"),
            ("/a/.../b", "only allowed as the final"),
            ("/a/*/b", "only allowed as the final"),
            ("/a/*rest", "only allowed as the final"),
            ("/a/:", "parameters must be named"),
            ("/a/:x.json", "may only contain"),
            ("/a b", "without whitespace"),
            ("/a?x=1", "query"),
            ("/a#f", "fragment"),
        ] {
            let err = RoutePattern::parse("/", raw).unwrap_err();
            assert!(err.contains(why), "{raw}: {err}");
        }
    }

    #[test]
    fn exact_matching() {
        assert_eq!(run("/foo", "/foo"), Some((vec![], String::new())));
        assert_eq!(run("/foo", "/foo/"), Some((vec![], String::new())));
        assert_eq!(run("/foo", "/foo/bar"), None);
        assert_eq!(run("/foo", "/foobar"), None);
        assert_eq!(run("/foo", "/"), None);
        assert_eq!(run("/", "/"), Some((vec![], String::new())));
        assert_eq!(run("/", "/x"), None);
        assert_eq!(run("/foo/bar", "/foo/bar"), Some((vec![], String::new())));
    }

    #[test]
    fn wildcard_path_info_keeps_slashes_like_spin() {
        // Spin's trailing_wildcard_respects_trailing_slash and trailing_wildcard_is_captured.
        assert_eq!(run("/test/...", "/test").unwrap().1, "");
        assert_eq!(run("/test/...", "/test/").unwrap().1, "/");
        assert_eq!(run("/test/...", "/test/hello").unwrap().1, "/hello");
        assert_eq!(run("/test/...", "/test/hello/").unwrap().1, "/hello/");
        assert_eq!(run("/...", "/1/2/3").unwrap().1, "/1/2/3");
        assert_eq!(run("/...", "/").unwrap().1, "/");
        assert_eq!(run("/1/...", "/1/2/3").unwrap().1, "/2/3");
        assert_eq!(run("/test/*", "/test/a").unwrap().1, "/a");
        assert!(run("/test/...", "/testing").is_none());
        assert!(run("/test/...", "/other").is_none());
    }

    #[test]
    fn params_are_captured() {
        let (params, info) = run("/1/:two/3", "/1/2/3").unwrap();
        assert_eq!(params, [("two".to_string(), "2".to_string())]);
        assert_eq!(info, "");
        let (params, info) = run("/1/:two/...", "/1/2/3").unwrap();
        assert_eq!(params, [("two".to_string(), "2".to_string())]);
        assert_eq!(info, "/3");
        let (params, _) = run("/users/:id", "/users/a%20b").unwrap();
        assert_eq!(params[0].1, "a%20b");
        assert!(run("/users/:id", "/users").is_none());
        assert!(run("/users/:id", "/users//").is_none());
        assert!(run("/users/:id", "/users/1/2").is_none());
    }

    #[test]
    fn shapes_ignore_param_names_and_trailing_slash() {
        assert_eq!(pat("/a/:x").shape(), pat("/a/:y").shape());
        assert_eq!(pat("/a").shape(), pat("/a/").shape());
        assert_eq!(pat("/a/...").shape(), pat("/a/*").shape());
        assert_ne!(pat("/a").shape(), pat("/a/...").shape());
        assert_ne!(pat("/a/:x").shape(), pat("/a/b").shape());
        assert_eq!(pat("/").shape(), "");
        assert_eq!(pat("/...").shape(), "/...");
    }

    #[test]
    fn specificity() {
        let order = |a: &str, b: &str| pat(a).specificity_cmp(&pat(b));
        assert_eq!(order("/one", "/..."), Ordering::Less);
        assert_eq!(order("/a", "/a/..."), Ordering::Less);
        assert_eq!(order("/a/b/...", "/a/..."), Ordering::Less);
        assert_eq!(order("/a/:x", "/a/..."), Ordering::Less);
        assert_eq!(order("/a/b", "/a/:x"), Ordering::Less);
        assert_eq!(order("/a/:x", "/:y/b"), Ordering::Less);
        assert_eq!(order("/a/:x", "/a/:x/..."), Ordering::Less);
        assert_eq!(order("/a/...", "/a/b/..."), Ordering::Greater);
    }

    #[test]
    fn split_path_ranges() {
        let segs = |p: &str| -> Vec<String> {
            split_path(p)
                .into_iter()
                .map(|(s, e)| p[s..e].to_string())
                .collect()
        };
        assert!(segs("/").is_empty());
        assert!(segs("").is_empty());
        assert!(segs("//").is_empty());
        assert_eq!(segs("/a"), ["a"]);
        assert_eq!(segs("/a/"), ["a"]);
        assert_eq!(segs("/a/b"), ["a", "b"]);
        assert_eq!(segs("/a//b"), ["a", "", "b"]);
        assert_eq!(segs("a/b"), ["a", "b"]);
    }
}
