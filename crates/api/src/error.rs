//! The JSON error body every Tessera component answers with:
//! `{"error": {"code": "…", "message": "…", "field": "…"}}`.

use serde_json::{Value, json};

/// The longest message and field an answer carries: messages are a sentence or two, so
/// anything longer is echoed input that slipped through (see [`echo`]).
const MAX_MESSAGE_CHARS: usize = 512;
const MAX_FIELD_CHARS: usize = 128;
/// How much of a caller's value an error message repeats.
pub const ECHO_CHARS: usize = 64;

#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status (4xx: the caller's fault; 5xx: ours).
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// For 405: the `allow` header.
    pub allow: Option<&'static str>,
    /// For 503: seconds for the `retry-after` header.
    pub retry_after: Option<u32>,
    /// What went wrong inside (a database's message): logged with the request id, never
    /// answered, since it can carry SQL, SQLSTATEs and other tenants' values.
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            allow: None,
            retry_after: None,
            detail: None,
        }
    }

    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        Self {
            field: field.map(str::to_string),
            ..Self::new(400, code, message)
        }
    }

    /// A required field is absent.
    pub fn missing(field: &str) -> Self {
        Self::bad_request(
            "missing_field",
            format!("`{field}` is required"),
            Some(field),
        )
    }

    /// A field is present but unusable.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::bad_request("invalid_field", message, Some(field))
    }

    /// An id that is not a UUID (in a path or a body): it cannot name anything, and the
    /// same fault gets the same code in every component.
    pub fn invalid_id(field: &str, given: &str) -> Self {
        Self::bad_request(
            "invalid_id",
            format!("`{field}` must be a UUID, got {}", echo(given)),
            Some(field),
        )
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn too_large(field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            field: field.map(str::to_string),
            ..Self::new(413, "too_large", message)
        }
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(405, "method_not_allowed", format!("use {allow}"))
        }
    }

    /// A body whose `content-type` is not JSON (415): a browser's cross-site form or
    /// `text/plain` post must not be taken for a JSON request.
    pub fn unsupported_media_type(given: &str) -> Self {
        Self {
            field: Some("content-type".into()),
            ..Self::new(
                415,
                "unsupported_media_type",
                format!(
                    "send the body as JSON with content-type: application/json, not {}",
                    echo(given)
                ),
            )
        }
    }

    /// A dependency (variables, the model, another component) failed: not the caller's fault.
    pub fn dependency(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(500, code, message)
    }

    /// Our fault, with what happened kept for the log only (see [`ApiError::for_request`]).
    pub fn internal(detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::new(500, "internal_error", "internal error")
        }
    }

    /// The database cannot be reached (down, restarting, or no connection free in time):
    /// 503 with `retry-after`, so clients and load balancers retry instead of giving up.
    pub fn database_unavailable(detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            detail: Some(detail.into()),
            ..Self::new(
                503,
                "database_unavailable",
                "the database is unavailable; retry in a moment",
            )
        }
    }

    /// Names the field, unless one is named already.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field.get_or_insert_with(|| field.to_string());
        self
    }

    /// The error as answered to request `id`: an error with a hidden detail names the
    /// request, so the caller can quote it and an operator find the logged detail.
    pub fn for_request(mut self, id: Option<&str>) -> Self {
        self.message = self.message_for(id);
        self
    }

    /// The message as answered to request `id` (see [`ApiError::for_request`]).
    pub fn message_for(&self, id: Option<&str>) -> String {
        match (&self.detail, id) {
            (Some(_), Some(id)) => format!("{} (request {id})", self.message),
            _ => self.message.clone(),
        }
    }

    /// The line to log for this error, when it has a detail.
    pub fn log_line(&self, request_id: Option<&str>) -> Option<String> {
        let detail = self.detail.as_deref()?;
        Some(format!(
            "request {}: {} {}: {detail}",
            request_id.unwrap_or("-"),
            self.status,
            self.code
        ))
    }

    pub fn to_json(&self) -> Value {
        let mut error = json!({
            "code": self.code,
            "message": truncate(&self.message, MAX_MESSAGE_CHARS),
        });
        if let Some(field) = &self.field {
            error["field"] = json!(truncate(field, MAX_FIELD_CHARS));
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

/// A database failure, with what was being done; the database's words go to the log only.
pub fn db_error(context: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("{context}: {err}"))
}

/// A database failure by its SQLSTATE (`None`: no structured error). The server going away
/// or refusing connections is 503; a data exception (class 22: a value Postgres cannot
/// store or compare, e.g. an out-of-range date) is the input's fault, 400; anything else is
/// ours, 500. The message never carries the database's words.
pub fn db_failure(sqlstate: Option<&str>, detail: String) -> ApiError {
    let code = sqlstate.unwrap_or("");
    let unavailable =
        code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "53400");
    if unavailable {
        ApiError::database_unavailable(detail)
    } else if code.starts_with("22") {
        ApiError {
            detail: Some(detail),
            ..ApiError::bad_request(
                "invalid_value",
                "a value in the request cannot be stored or compared",
                None,
            )
        }
    } else {
        ApiError::internal(detail)
    }
}

/// A caller's value as an error message repeats it: quoted, and cut after [`ECHO_CHARS`]
/// characters with "…", so a huge value never comes back whole.
pub fn echo(value: &str) -> String {
    let mut chars = value.char_indices();
    match chars.nth(ECHO_CHARS) {
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
        None => format!("{value:?}"),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_cuts_long_values() {
        assert_eq!(echo("abc"), "\"abc\"");
        let long = "é".repeat(7 << 20);
        let e = echo(&long);
        assert_eq!(e, format!("{:?}…", "é".repeat(ECHO_CHARS)));
        assert_eq!(
            echo(&"x".repeat(ECHO_CHARS)),
            format!("{:?}", "x".repeat(64))
        );
    }

    #[test]
    fn answers_never_carry_huge_messages_or_fields() {
        let mut e = ApiError::invalid(&"f".repeat(1000), "m".repeat(10_000));
        e.field = Some("f".repeat(1000));
        let j = e.to_json();
        assert!(j["error"]["message"].as_str().unwrap().chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(j["error"]["field"].as_str().unwrap().chars().count() <= MAX_FIELD_CHARS + 1);
    }

    #[test]
    fn internal_details_are_logged_not_answered() {
        let e = db_error(
            "insert message",
            "ERROR 22021: invalid byte sequence for encoding \"UTF8\": 0x00",
        )
        .for_request(Some("r-42"));
        let j = e.to_json().to_string();
        assert_eq!(e.status, 500);
        assert_eq!(e.code, "internal_error");
        assert!(!j.contains("22021") && !j.contains("UTF8"), "{j}");
        assert!(j.contains("request r-42"), "{j}");
        let line = e.log_line(Some("r-42")).unwrap();
        assert!(line.contains("r-42") && line.contains("22021"), "{line}");
        // Without a detail there is nothing to log and the message stays as it is.
        let plain = ApiError::missing("content").for_request(Some("r-1"));
        assert!(plain.log_line(Some("r-1")).is_none());
        assert!(!plain.message.contains("r-1"));
    }

    #[test]
    fn sqlstates_map_to_statuses() {
        let d = || "detail".to_string();
        let e = db_failure(Some("08006"), d());
        assert_eq!(
            (e.status, e.code, e.retry_after),
            (503, "database_unavailable", Some(1))
        );
        assert_eq!(db_failure(Some("57P01"), d()).status, 503);
        let e = db_failure(Some("22008"), d());
        assert_eq!((e.status, e.code), (400, "invalid_value"));
        assert!(!e.to_json().to_string().contains("detail"));
        assert_eq!(db_failure(Some("42P01"), d()).status, 500);
        assert_eq!(db_failure(None, d()).code, "internal_error");
    }

    #[test]
    fn ids_and_media_types() {
        let e = ApiError::invalid_id("conversation_id", &"z".repeat(500));
        assert_eq!((e.status, e.code), (400, "invalid_id"));
        assert_eq!(e.field.as_deref(), Some("conversation_id"));
        assert!(e.message.len() < 200, "{}", e.message);
        let e = ApiError::unsupported_media_type("text/plain");
        assert_eq!((e.status, e.code), (415, "unsupported_media_type"));
        assert_eq!(e.field.as_deref(), Some("content-type"));
    }
}
