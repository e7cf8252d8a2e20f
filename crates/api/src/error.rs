//! The JSON error body every Tessera component answers with:
//! `{"error": {"code": "…", "message": "…", "field": "…"}}`.

use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status (4xx: the caller's fault; 5xx: ours).
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// For 405: the `allow` header.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            allow: None,
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

    /// A dependency (variables, Postgres, the model) failed: not the caller's fault.
    pub fn dependency(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(500, code, message)
    }

    /// Names the field, unless one is named already.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field.get_or_insert_with(|| field.to_string());
        self
    }

    pub fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

/// A database failure, with what was being done.
pub fn db_error(context: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::dependency("database_error", format!("{context}: {err}"))
}
