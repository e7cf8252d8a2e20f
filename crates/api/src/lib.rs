//! Tessera's API conventions, shared by every component and free of any runtime so they are
//! unit-tested natively: the JSON error body `{"error": {"code", "message", "field"}}`,
//! JSON request parsing whose errors name the offending field, and the checks every request
//! gets before it reaches storage (content type, NUL characters, ids, query parameters).

mod error;
mod input;
pub mod openapi;
pub mod tenancy;

pub use error::{ApiError, ECHO_CHARS, db_error, db_failure, echo};
pub use input::{Query, check_json_content_type, parse_uuid, refuse_nul};

use serde::de::DeserializeOwned;

/// Parses a JSON request body into `T`. Errors name the offending field (`a.b[2]`), say
/// whether the body was not UTF-8 or not JSON at all, and never echo the body back. A NUL
/// character in any string is refused here (see [`refuse_nul`]).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body is empty; send a JSON object",
            None,
        ));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::bad_request(
            "invalid_utf8",
            format!(
                "the request body is not valid UTF-8 (at byte {})",
                e.valid_up_to()
            ),
            None,
        ));
    }
    refuse_nul(bytes)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(
                "invalid_json",
                format!("the request body is not valid JSON: {inner}"),
                None,
            )
        } else {
            let field = if path == "." {
                None
            } else {
                Some(path.as_str())
            };
            let message = match field {
                Some(f) => format!("`{f}`: {}", short(&strip_position(&inner.to_string()))),
                None => short(&strip_position(&inner.to_string())),
            };
            let field = field.or_else(|| missing_field_name(&message));
            let code = if message.contains("missing field") {
                "missing_field"
            } else {
                "invalid_field"
            };
            ApiError::bad_request(code, message.clone(), field)
        }
    })?;
    Ok(value)
}

/// serde_json appends " at line 1 column 42"; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// serde quotes the value it could not use ("invalid value: string \"…\""); a huge one is
/// cut like any echoed input.
fn short(message: &str) -> String {
    const MAX: usize = 160;
    match message.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

/// "missing field `content`" → "content" (serde reports it on the parent, path ".").
fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.split("missing field `").nth(1)?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        title: String,
        k: Option<u32>,
        inner: Option<Inner>,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        tags: Vec<String>,
    }

    fn err(body: &[u8]) -> ApiError {
        parse_json::<Doc>(body).unwrap_err()
    }

    #[test]
    fn names_fields() {
        let e = err(br#"{"k": 3}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("title"))
        );
        let e = err(br#"{"title": "t", "k": "many"}"#);
        assert_eq!((e.code, e.field.as_deref()), ("invalid_field", Some("k")));
        let e = err(br#"{"title": "t", "inner": {"tags": [1]}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.tags[0]"));
        let e = err(br#"{"title": "t", "extra": 1}"#);
        assert!(e.message.contains("extra"), "{}", e.message);
    }

    #[test]
    fn syntax_utf8_and_empty() {
        assert_eq!(err(b"{\"title\": ").code, "invalid_json");
        assert_eq!(err(b"  ").code, "invalid_json");
        assert_eq!(err(b"{\"title\": \"\xff\"}").code, "invalid_utf8");
        assert!(parse_json::<Doc>(br#"{"title": "ok"}"#).is_ok());
    }

    #[test]
    fn nul_anywhere_is_refused_with_its_path() {
        let e = err(br#"{"title": "a\u0000b"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("title"))
        );
        let e = err(br#"{"title": "t", "inner": {"tags": ["ok", "\u0000"]}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.tags[1]"));
        // An escaped backslash followed by "u0000" is no NUL.
        assert!(parse_json::<Doc>(br#"{"title": "a\\u0000"}"#).is_ok());
    }

    #[test]
    fn huge_values_are_not_echoed() {
        let body = format!(r#"{{"title": "t", "k": "{}"}}"#, "9".repeat(100_000));
        let e = err(body.as_bytes());
        assert!(e.message.len() < 300, "{}", e.message.len());
    }
}
