//! Why a search request was refused, in terms a client can act on: every error names the
//! field at fault (when there is one) and carries a stable machine-readable code.

/// A refused search request. `Display` is the human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the request body is not valid UTF-8")]
    InvalidUtf8,
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("unknown field `{}`", clip(field))]
    UnknownField { field: String },
    #[error("`{field}` is required")]
    Missing { field: &'static str },
    #[error("`{field}` must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("`query` must contain some text")]
    EmptyQuery,
    #[error("`query` has {chars} characters; at most {max} are allowed")]
    QueryTooLong { chars: usize, max: usize },
    #[error(
        "unknown mode `{}`; expected one of: hybrid, vector, text",
        clip(given)
    )]
    UnknownMode { given: String },
    #[error("`k` must be an integer from {min} to {max}; got {}", clip(given))]
    KOutOfRange {
        given: String,
        min: usize,
        max: usize,
    },
    #[error("invalid scope `{}`: {reason}", clip(given))]
    InvalidScope { given: String, reason: &'static str },
    #[error(
        "scope `{}` names another tenant; a request may only name its own (x-tenant-id)",
        clip(given)
    )]
    ForeignTenant { given: String },
    #[error("{count} scopes given; at most {max} are allowed")]
    TooManyScopes { count: usize, max: usize },
    #[error("invalid filter `{field}`: {reason}")]
    InvalidFilter { field: String, reason: String },
    /// Any other unusable value (documents: an empty `content`, an unknown `format`).
    #[error("`{field}`: {reason}")]
    InvalidValue { field: &'static str, reason: String },
    /// A value over its size limit (answered 413).
    #[error("`{field}`: {reason}")]
    TooLarge { field: &'static str, reason: String },
}

/// A caller's value as a message repeats it: at most 64 characters, then "…" (a 7 MiB
/// scope must not come back whole).
fn clip(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

impl QueryError {
    /// The request field at fault (`mode`, `k`, `scope`, `filter.sector`), if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            QueryError::InvalidUtf8 | QueryError::MalformedJson(_) | QueryError::NotAnObject => {
                None
            }
            QueryError::UnknownField { field } | QueryError::WrongType { field, .. } => Some(field),
            QueryError::InvalidFilter { field, .. } => Some(field),
            QueryError::InvalidValue { field, .. } | QueryError::TooLarge { field, .. } => {
                Some(field)
            }
            QueryError::Missing { field } => Some(field),
            QueryError::EmptyQuery | QueryError::QueryTooLong { .. } => Some("query"),
            QueryError::UnknownMode { .. } => Some("mode"),
            QueryError::KOutOfRange { .. } => Some("k"),
            QueryError::InvalidScope { .. }
            | QueryError::TooManyScopes { .. }
            | QueryError::ForeignTenant { .. } => Some("scope"),
        }
    }

    /// A stable code for `{error: {code, message, field}}`.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidUtf8 => "invalid_utf8",
            QueryError::MalformedJson(_) => "invalid_json",
            QueryError::NotAnObject | QueryError::UnknownField { .. } => "invalid_request",
            QueryError::Missing { .. } => "missing_field",
            QueryError::WrongType { .. } => "invalid_type",
            QueryError::KOutOfRange { .. }
            | QueryError::QueryTooLong { .. }
            | QueryError::TooManyScopes { .. } => "out_of_range",
            QueryError::EmptyQuery
            | QueryError::UnknownMode { .. }
            | QueryError::InvalidScope { .. }
            | QueryError::InvalidFilter { .. }
            | QueryError::InvalidValue { .. } => "invalid_value",
            QueryError::TooLarge { .. } => "too_large",
            QueryError::ForeignTenant { .. } => "foreign_tenant",
        }
    }

    /// The HTTP status for this refusal: 413 for sizes, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}
