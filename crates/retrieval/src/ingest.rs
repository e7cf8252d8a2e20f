//! A document to ingest, validated before anything is chunked, embedded or stored:
//!
//! ```json
//! {"title": "Sortino ratio", "content": "# Sortino ratio\n…", "scope": "global",
//!  "metadata": {"sector": "energy"}, "format": "markdown"}
//! ```
//!
//! `content` is required. Without `title` one is derived ([`crate::title::derive_title`]:
//! front matter, first heading, first line); `scope` defaults to `global`, `format` to
//! `markdown`, `metadata` to `{}`. Unknown fields are refused, as for searches.

use crate::query::{QueryError, Scope};
use serde_json::{Map, Value};

/// The largest `content` accepted, in bytes of UTF-8.
pub const MAX_CONTENT_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_TITLE_CHARS: usize = 300;
/// Serialised size of `metadata`; it is copied onto every chunk for filtering.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

const FIELDS: [&str; 5] = ["title", "content", "scope", "metadata", "format"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocumentFormat {
    /// Headings, lists, tables and code fences shape the chunks.
    #[default]
    Markdown,
    /// Paragraphs and sentences only.
    Text,
}

impl DocumentFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentFormat::Markdown => "markdown",
            DocumentFormat::Text => "text",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    pub title: String,
    pub content: String,
    pub scope: Scope,
    /// A JSON object.
    pub metadata: Value,
    pub format: DocumentFormat,
}

impl NewDocument {
    /// Validates a raw request body.
    pub fn from_json_bytes(body: &[u8]) -> Result<NewDocument, QueryError> {
        let text = std::str::from_utf8(body).map_err(|_| QueryError::InvalidUtf8)?;
        let value: Value =
            serde_json::from_str(text).map_err(|e| QueryError::MalformedJson(e.to_string()))?;
        NewDocument::from_json(&value)
    }

    pub fn from_json(value: &Value) -> Result<NewDocument, QueryError> {
        let Value::Object(body) = value else {
            return Err(QueryError::NotAnObject);
        };
        if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(QueryError::UnknownField {
                field: unknown.clone(),
            });
        }
        let given = |name: &str| body.get(name).filter(|v| !v.is_null());
        let content = parse_content(given("content"))?;
        let format = match given("format") {
            None => DocumentFormat::default(),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "markdown" | "md" => DocumentFormat::Markdown,
                "text" | "plain" => DocumentFormat::Text,
                _ => {
                    return Err(QueryError::InvalidValue {
                        field: "format",
                        reason: format!("unknown format {s:?}; expected markdown or text"),
                    });
                }
            },
            Some(_) => return Err(wrong_type("format", "\"markdown\" or \"text\"")),
        };
        let title = match given("title") {
            Some(title) => parse_title(title)?,
            None => {
                crate::title::derive_title(&content, format).ok_or(QueryError::InvalidValue {
                    field: "content",
                    reason: "is empty or only whitespace".into(),
                })?
            }
        };
        Ok(NewDocument {
            title,
            content,
            scope: match given("scope") {
                None => Scope::Global,
                Some(Value::String(s)) => Scope::parse(s.trim())?,
                Some(_) => return Err(wrong_type("scope", "a string such as \"global\"")),
            },
            metadata: parse_metadata(given("metadata"))?,
            format,
        })
    }
}

fn wrong_type(field: &str, expected: &'static str) -> QueryError {
    QueryError::WrongType {
        field: field.to_string(),
        expected,
    }
}

fn parse_title(value: &Value) -> Result<String, QueryError> {
    let title = value
        .as_str()
        .ok_or_else(|| wrong_type("title", "a string"))?
        .trim();
    if title.is_empty() {
        return Err(QueryError::InvalidValue {
            field: "title",
            reason: "must contain some text".into(),
        });
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return Err(QueryError::InvalidValue {
            field: "title",
            reason: format!("{chars} characters; at most {MAX_TITLE_CHARS} are allowed"),
        });
    }
    if title.contains('\0') {
        return Err(QueryError::InvalidValue {
            field: "title",
            reason: "must not contain NUL".into(),
        });
    }
    Ok(title.to_string())
}

fn parse_content(value: Option<&Value>) -> Result<String, QueryError> {
    let value = value.ok_or(QueryError::Missing { field: "content" })?;
    let content = value
        .as_str()
        .ok_or_else(|| wrong_type("content", "a string"))?;
    if content.len() > MAX_CONTENT_BYTES {
        return Err(QueryError::TooLarge {
            field: "content",
            reason: format!(
                "{} bytes; at most {MAX_CONTENT_BYTES} bytes ({} MiB) are accepted",
                content.len(),
                MAX_CONTENT_BYTES >> 20
            ),
        });
    }
    if content.trim().is_empty() {
        return Err(QueryError::InvalidValue {
            field: "content",
            reason: "is empty or only whitespace".into(),
        });
    }
    // Postgres text cannot hold NUL; refusing it here keeps the failure clear.
    if content.contains('\0') {
        return Err(QueryError::InvalidValue {
            field: "content",
            reason: "must not contain NUL".into(),
        });
    }
    Ok(content.to_string())
}

fn parse_metadata(value: Option<&Value>) -> Result<Value, QueryError> {
    let Some(value) = value else {
        return Ok(Value::Object(Map::new()));
    };
    if !value.is_object() {
        return Err(wrong_type("metadata", "a JSON object"));
    }
    let size = value.to_string().len();
    if size > MAX_METADATA_BYTES {
        return Err(QueryError::TooLarge {
            field: "metadata",
            reason: format!("{size} bytes as JSON; at most {MAX_METADATA_BYTES} are accepted"),
        });
    }
    if value.to_string().contains("\\u0000") {
        return Err(QueryError::InvalidValue {
            field: "metadata",
            reason: "must not contain NUL".into(),
        });
    }
    Ok(value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> QueryError {
        NewDocument::from_json(&v).unwrap_err()
    }

    #[test]
    fn defaults_and_trimming() {
        let d = NewDocument::from_json(&json!({"title": " T ", "content": "body"})).unwrap();
        assert_eq!(d.title, "T");
        assert_eq!(d.scope, Scope::Global);
        assert_eq!(d.format, DocumentFormat::Markdown);
        assert_eq!(d.metadata, json!({}));
        let d = NewDocument::from_json(&json!({
            "title": "T", "content": "b", "scope": "tenant:acme", "format": "TEXT",
            "metadata": {"sector": "energy", "n": 3}
        }))
        .unwrap();
        assert_eq!(d.scope, Scope::Tenant("acme".into()));
        assert_eq!(d.format, DocumentFormat::Text);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (json!({}), "content", "missing_field"),
            (json!({"title": "t"}), "content", "missing_field"),
            (
                json!({"title": "t", "content": " \n\t "}),
                "content",
                "invalid_value",
            ),
            (
                json!({"title": "", "content": "x"}),
                "title",
                "invalid_value",
            ),
            (json!({"title": 3, "content": "x"}), "title", "invalid_type"),
            (
                json!({"title": "t", "content": "x", "scope": "planet:x"}),
                "scope",
                "invalid_value",
            ),
            (
                json!({"title": "t", "content": "x", "metadata": [1]}),
                "metadata",
                "invalid_type",
            ),
            (
                json!({"title": "t", "content": "x", "format": "pdf"}),
                "format",
                "invalid_value",
            ),
            (
                json!({"title": "t", "content": "x", "colour": 1}),
                "colour",
                "invalid_request",
            ),
            (
                json!({"title": "t", "content": "a\u{0}b"}),
                "content",
                "invalid_value",
            ),
        ];
        for (body, field, code) in cases {
            let e = err(body.clone());
            assert_eq!(e.field(), Some(field), "{body}: {e}");
            assert_eq!(e.code(), code, "{body}: {e}");
            assert_eq!(e.http_status(), 400, "{body}");
        }
    }

    #[test]
    fn a_missing_title_is_derived_from_the_content() {
        let d = NewDocument::from_json(&json!({"content": "Intro\n\n# Sortino ratio\n\nBody"}))
            .unwrap();
        assert_eq!(d.title, "Sortino ratio");
        let d = NewDocument::from_json(
            &json!({"content": "Intro\n# Not a heading", "format": "text", "title": null}),
        )
        .unwrap();
        assert_eq!(d.title, "Intro");
        // A given title is still validated.
        assert_eq!(
            err(json!({"title": "", "content": "x"})).field(),
            Some("title")
        );
    }

    #[test]
    fn oversized_content_is_413() {
        let big = "a".repeat(MAX_CONTENT_BYTES + 1);
        let e = err(json!({"title": "t", "content": big}));
        assert_eq!(
            (e.field(), e.code(), e.http_status()),
            (Some("content"), "too_large", 413)
        );
        let exact = "a".repeat(MAX_CONTENT_BYTES);
        assert!(NewDocument::from_json(&json!({"title": "t", "content": exact})).is_ok());
    }

    #[test]
    fn raw_bodies() {
        assert_eq!(
            NewDocument::from_json_bytes(b"{\"title\":")
                .unwrap_err()
                .code(),
            "invalid_json"
        );
        assert_eq!(
            NewDocument::from_json_bytes(b"\xff\xfe")
                .unwrap_err()
                .code(),
            "invalid_utf8"
        );
        assert_eq!(
            NewDocument::from_json_bytes(b"[1]").unwrap_err().code(),
            "invalid_request"
        );
    }
}

/// The `POST /v1/kb/documents` body for a markdown file that opens with front matter
/// (`title`, `scope`, `tags`), as the demo knowledge base's files do; `stem` (the file name
/// without `.md`) becomes the title when there is none and is kept as `metadata.doc`.
pub fn request_for_markdown_file(stem: &str, text: &str) -> Result<Value, String> {
    let front = crate::front_matter::parse(text).map_err(|e| format!("front matter: {e}"))?;
    let body_start = crate::front_matter::locate(text).map_or(0, |b| b.body_start);
    Ok(serde_json::json!({
        "title": front.text("title").unwrap_or(stem),
        "content": &text[body_start..],
        "scope": front.text("scope").unwrap_or("global"),
        "metadata": { "doc": stem, "source": format!("demo/kb/{stem}.md"), "tags": front.list("tags") },
    }))
}

#[cfg(test)]
mod markdown_file_tests {
    use super::*;

    #[test]
    fn front_matter_becomes_the_request() {
        let text = "---\ntitle: Beta\nscope: global\ntags: [risk, capm]\n---\n# Beta\n\nBody.\n";
        let r = request_for_markdown_file("beta", text).unwrap();
        assert_eq!(r["title"], "Beta");
        assert_eq!(r["scope"], "global");
        assert_eq!(r["content"], "# Beta\n\nBody.\n");
        assert_eq!(r["metadata"]["doc"], "beta");
        assert_eq!(r["metadata"]["tags"], serde_json::json!(["risk", "capm"]));
        // And the kb accepts it.
        assert!(NewDocument::from_json(&r).is_ok());
    }
}
