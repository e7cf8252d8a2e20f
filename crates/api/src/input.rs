//! Checks every request gets before its values reach storage: the body's content type, NUL
//! characters (Postgres text cannot hold U+0000 and would answer a SQLSTATE), ids, and
//! percent-decoded query parameters.

use serde_json::Value;

use crate::{ApiError, echo};

/// A JSON endpoint accepts `application/json` (with any parameters) and `application/*+json`.
/// An absent (or empty) content type is accepted: curl and other non-browser clients often
/// send none, while a browser's cross-site post always names `text/plain` or a form type.
pub fn check_json_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let Some(given) = content_type.filter(|c| !c.trim().is_empty()) else {
        return Ok(());
    };
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json") && sub.len() > "+json".len());
    if json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(given))
    }
}

/// Refuses a JSON body with a NUL character in any string or key, naming where it is
/// (`filter.ticker`, `messages[2].content`). Cheap for the usual body: JSON can only carry
/// a NUL as the escape `\u0000`, so only a body containing that text is parsed to look.
/// A body that is not JSON passes: the caller's parser reports that.
pub fn refuse_nul(body: &[u8]) -> Result<(), ApiError> {
    if !body.windows(6).any(|w| w == br"\u0000") {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    match nul_path(&value, String::new()) {
        Some(path) => Err(nul_error(if path.is_empty() { "body" } else { &path })),
        None => Ok(()),
    }
}

fn nul_error(field: &str) -> ApiError {
    ApiError::invalid(
        field,
        format!("`{field}` contains a NUL character (U+0000), which cannot be stored"),
    )
}

/// The path of the first string or key holding a NUL, in serde_path_to_error's form.
fn nul_path(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if path.is_empty() {
                k.replace('\0', "\\u0000")
            } else {
                format!("{path}.{}", k.replace('\0', "\\u0000"))
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(v, here)
            }
        }),
        _ => None,
    }
}

/// A UUID (`8-4-4-4-12` hex digits), lowercased; otherwise 400 `invalid_id` naming `field`.
pub fn parse_uuid(id: &str, field: &str) -> Result<String, ApiError> {
    let valid = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if valid {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid_id(field, id))
    }
}

/// A request's query parameters, percent-decoded (`+` is a space). A NUL in a name or a
/// value is refused up front, like one in a JSON body.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Result<Query, ApiError> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let (k, v) = (decode(k), decode(v));
            if k.contains('\0') || v.contains('\0') {
                let name = k.replace('\0', "\\u0000");
                return Err(ApiError::invalid(
                    &name,
                    format!(
                        "query parameter {} contains a NUL character (U+0000)",
                        echo(&name)
                    ),
                ));
            }
            pairs.push((k, v));
        }
        Ok(Query { pairs })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decoding; bytes that are not UTF-8 become U+FFFD.
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = v
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(c)) => {
                out.push(c);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            None,
            Some(""),
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
        ] {
            assert!(check_json_content_type(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/+json",
            "text/json+json",
        ] {
            let e = check_json_content_type(Some(bad)).unwrap_err();
            assert_eq!((e.status, e.code), (415, "unsupported_media_type"), "{bad}");
        }
    }

    #[test]
    fn nul_paths() {
        let field = |body: &str| refuse_nul(body.as_bytes()).unwrap_err().field.unwrap();
        assert_eq!(
            field(r#"{"filter": {"ticker": "A\u0000"}}"#),
            "filter.ticker"
        );
        assert_eq!(field(r#"{"a": [{"b": "x"}, {"b": "\u0000"}]}"#), "a[1].b");
        assert_eq!(field(r#"{"meta": {"k\u0000": 1}}"#), "meta.k\\u0000");
        assert_eq!(field(r#""\u0000""#), "body");
        assert!(refuse_nul(br#"{"a": "\\u0000"}"#).is_ok());
        assert!(refuse_nul(br#"{"a": "plain"}"#).is_ok());
        // Not JSON: left to the parser.
        assert!(refuse_nul(br#"{"a": "\u0000"#).is_ok());
    }

    #[test]
    fn uuids() {
        assert_eq!(
            parse_uuid("0000000A-0000-4000-8000-000000000000", "id").unwrap(),
            "0000000a-0000-4000-8000-000000000000"
        );
        for bad in ["not-a-uuid", "", "0000000a-0000-4000-8000-00000000000g"] {
            let e = parse_uuid(bad, "message_id").unwrap_err();
            assert_eq!((e.status, e.code), (400, "invalid_id"));
            assert_eq!(e.field.as_deref(), Some("message_id"));
        }
    }

    #[test]
    fn query_parameters() {
        let q = Query::parse("scope=page%3A%2Fa+b&from=2024-01-01&flag").unwrap();
        assert_eq!(q.get("scope"), Some("page:/a b"));
        assert_eq!(q.get("from"), Some("2024-01-01"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("to"), None);
        let e = Query::parse("from=2024&scope=page:/x%00y").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("scope")));
        assert!(Query::parse("").unwrap().get("x").is_none());
    }
}
