//! The JSON error body every Tessera component answers with:
//! `{"error": {"code": "…", "message": "…", "field": "…"}}`.

use serde_json::{Value, json};
use spin_sdk::http::{IntoResponse, Response, StatusCode};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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
            ..Self::new(StatusCode::BAD_REQUEST, code, message)
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

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("use {allow}"),
            )
        }
    }

    /// A dependency (variables, Postgres, key-value) failed: not the caller's fault.
    pub fn dependency(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
    }

    pub fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(
        self,
    ) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode>
    {
        let mut builder = Response::builder()
            .status(self.status)
            .header("content-type", "application/json");
        if let Some(allow) = self.allow {
            builder = builder.header("allow", allow);
        }
        builder
            .body(self.to_json().to_string())
            .expect("static headers are valid")
            .into_response()
    }
}

pub fn json_response(
    status: StatusCode,
    body: &Value,
) -> Result<spin_sdk::wasip3::http::types::Response, spin_sdk::wasip3::http::types::ErrorCode> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .expect("static headers are valid")
        .into_response()
}

/// The database address, from the component variable `db_url`.
pub async fn db_url() -> Result<String, ApiError> {
    spin_sdk::variables::get("db_url").await.map_err(|e| {
        ApiError::dependency(
            "config_error",
            format!("component variable db_url is not available: {e}"),
        )
    })
}

/// Opens the database named by `db_url`.
pub async fn connect() -> Result<spin_sdk::pg::Connection, ApiError> {
    let url = db_url().await?;
    spin_sdk::pg::Connection::open(url)
        .await
        .map_err(|e| ApiError::dependency("database_error", format!("connect: {e}")))
}

pub fn db_error(context: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::dependency("database_error", format!("{context}: {err}"))
}
