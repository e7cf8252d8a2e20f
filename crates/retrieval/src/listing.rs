//! `GET /v1/kb/documents` (filters and keyset pagination) and the filter of a bulk delete
//! (`POST /v1/kb/documents/delete`), validated before anything reaches storage.
//!
//! Pages are ordered newest first by `(created_at, id)`; the cursor is that pair for the
//! last document of a page, base64url-encoded so clients treat it as opaque.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::query::{MetadataFilter, QueryError, Scope, parse_scopes};

pub const DEFAULT_LIST_LIMIT: usize = 20;
pub const MAX_LIST_LIMIT: usize = 100;

/// A document's embedding state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentStatus {
    Pending,
    Ready,
    Failed,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Pending => "pending",
            DocumentStatus::Ready => "ready",
            DocumentStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<DocumentStatus, QueryError> {
        match text {
            "pending" => Ok(DocumentStatus::Pending),
            "ready" => Ok(DocumentStatus::Ready),
            "failed" => Ok(DocumentStatus::Failed),
            _ => Err(QueryError::InvalidValue {
                field: "status",
                reason: format!("unknown status {text:?}; expected pending, ready or failed"),
            }),
        }
    }
}

/// Where the next page starts: after the document created at `created_micros` (µs since
/// the Unix epoch) with id `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_micros: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.created_micros, self.id))
    }

    pub fn decode(text: &str) -> Result<Cursor, QueryError> {
        let bad = || QueryError::InvalidValue {
            field: "cursor",
            reason: "not a cursor this API returned (pass `next_cursor` back unchanged)".into(),
        };
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let plain = String::from_utf8(bytes).map_err(|_| bad())?;
        let (micros, id) = plain.split_once('.').ok_or_else(bad)?;
        let created_micros = micros.parse::<i64>().map_err(|_| bad())?;
        if !is_uuid(id) {
            return Err(bad());
        }
        Ok(Cursor {
            created_micros,
            id: id.to_ascii_lowercase(),
        })
    }
}

fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A validated `GET /v1/kb/documents` query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    pub scope: Option<Scope>,
    pub filter: MetadataFilter,
    pub status: Option<DocumentStatus>,
    /// Created at or after, µs since the epoch.
    pub created_after: Option<i64>,
    /// Created before, µs since the epoch.
    pub created_before: Option<i64>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

const LIST_PARAMS: [&str; 7] = [
    "scope",
    "filter",
    "status",
    "created_after",
    "created_before",
    "limit",
    "cursor",
];

impl ListQuery {
    /// From the query string's parameter names (to refuse unknown ones) and a lookup of
    /// their decoded values.
    pub fn parse<'a>(
        names: &[&str],
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<ListQuery, QueryError> {
        if let Some(unknown) = names.iter().find(|n| !LIST_PARAMS.contains(n)) {
            return Err(QueryError::UnknownField {
                field: unknown.to_string(),
            });
        }
        let filter = match get("filter") {
            None => MetadataFilter::default(),
            Some(text) => {
                let value: Value =
                    serde_json::from_str(text).map_err(|e| QueryError::InvalidFilter {
                        field: "filter".into(),
                        reason: format!("not a JSON object: {e}"),
                    })?;
                MetadataFilter::from_json(&value)?
            }
        };
        Ok(ListQuery {
            scope: get("scope").map(Scope::parse).transpose()?,
            filter,
            status: get("status").map(DocumentStatus::parse).transpose()?,
            created_after: get("created_after")
                .map(|t| parse_time("created_after", t))
                .transpose()?,
            created_before: get("created_before")
                .map(|t| parse_time("created_before", t))
                .transpose()?,
            limit: get("limit").map_or(Ok(DEFAULT_LIST_LIMIT), parse_limit)?,
            cursor: get("cursor").map(Cursor::decode).transpose()?,
        })
    }
}

fn parse_limit(text: &str) -> Result<usize, QueryError> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
        .ok_or_else(|| QueryError::InvalidValue {
            field: "limit",
            reason: format!("must be an integer from 1 to {MAX_LIST_LIMIT}"),
        })
}

/// RFC 3339 (`2026-12-04T17:00:00Z`, any offset) or a UTC day (`2026-12-04`), as µs
/// since the epoch.
fn parse_time(field: &'static str, text: &str) -> Result<i64, QueryError> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc().timestamp_micros());
    }
    Err(QueryError::InvalidValue {
        field,
        reason: "expected an RFC 3339 time such as 2026-12-04T17:00:00Z, or a day 2026-12-04"
            .into(),
    })
}

/// Which documents a bulk delete removes. At least one condition, or `all: true`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteFilter {
    pub scopes: Vec<Scope>,
    pub filter: MetadataFilter,
    pub status: Option<DocumentStatus>,
    pub all: bool,
}

const DELETE_FIELDS: [&str; 4] = ["scope", "filter", "status", "all"];

impl DeleteFilter {
    pub fn from_json_bytes(body: &[u8]) -> Result<DeleteFilter, QueryError> {
        let text = std::str::from_utf8(body).map_err(|_| QueryError::InvalidUtf8)?;
        let value: Value =
            serde_json::from_str(text).map_err(|e| QueryError::MalformedJson(e.to_string()))?;
        DeleteFilter::from_json(&value)
    }

    pub fn from_json(value: &Value) -> Result<DeleteFilter, QueryError> {
        let Value::Object(body) = value else {
            return Err(QueryError::NotAnObject);
        };
        if let Some(unknown) = body.keys().find(|k| !DELETE_FIELDS.contains(&k.as_str())) {
            return Err(QueryError::UnknownField {
                field: unknown.clone(),
            });
        }
        let given = |name: &str| body.get(name).filter(|v| !v.is_null());
        let out = DeleteFilter {
            scopes: given("scope").map_or(Ok(Vec::new()), parse_scopes)?,
            filter: given("filter")
                .map_or(Ok(MetadataFilter::default()), MetadataFilter::from_json)?,
            status: match given("status") {
                None => None,
                Some(Value::String(s)) => Some(DocumentStatus::parse(s)?),
                Some(_) => {
                    return Err(QueryError::WrongType {
                        field: "status".into(),
                        expected: "\"pending\", \"ready\" or \"failed\"",
                    });
                }
            },
            all: match given("all") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(QueryError::WrongType {
                        field: "all".into(),
                        expected: "a boolean",
                    });
                }
            },
        };
        if out.is_unconditional() && !out.all {
            return Err(QueryError::InvalidValue {
                field: "filter",
                reason: "no scope, filter or status given: that would delete every document; \
                         name one, or send \"all\": true"
                    .into(),
            });
        }
        Ok(out)
    }

    /// No condition: every document of the tenant.
    pub fn is_unconditional(&self) -> bool {
        self.scopes.is_empty() && self.filter.is_empty() && self.status.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(pairs: &[(&str, &str)]) -> Result<ListQuery, QueryError> {
        let names: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        ListQuery::parse(&names, |name| {
            pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        })
    }

    fn list_err(pairs: &[(&str, &str)]) -> (Option<String>, &'static str) {
        let e = list(pairs).unwrap_err();
        (e.field().map(str::to_string), e.code())
    }

    #[test]
    fn defaults_and_every_parameter() {
        let q = list(&[]).unwrap();
        assert_eq!(
            (q.limit, q.scope.clone(), q.cursor.clone()),
            (DEFAULT_LIST_LIMIT, None, None)
        );
        let cursor = Cursor {
            created_micros: 1_764_000_000_123_456,
            id: "0a1b2c3d-0000-4000-8000-00000000000f".into(),
        };
        let encoded = cursor.encode();
        let q = list(&[
            ("scope", "tenant:acme"),
            ("filter", r#"{"topic":"risk","year":2024}"#),
            ("status", "ready"),
            ("created_after", "2026-12-01"),
            ("created_before", "2026-12-04T18:00:00+01:00"),
            ("limit", "100"),
            ("cursor", &encoded),
        ])
        .unwrap();
        assert_eq!(q.scope, Some(Scope::Tenant("acme".into())));
        assert_eq!(q.filter.to_json(), json!({"topic": "risk", "year": 2024}));
        assert_eq!(q.status, Some(DocumentStatus::Ready));
        assert_eq!(q.created_after, Some(1_796_083_200_000_000));
        assert_eq!(q.created_before, Some(1_796_403_600_000_000));
        assert_eq!(q.limit, 100);
        assert_eq!(q.cursor, Some(cursor));
    }

    #[test]
    fn each_bad_parameter_is_named() {
        assert_eq!(
            list_err(&[("limit", "0")]),
            (Some("limit".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("limit", "101")]),
            (Some("limit".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("limit", "ten")]),
            (Some("limit".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("cursor", "nope")]),
            (Some("cursor".into()), "invalid_value")
        );
        let not_uuid = URL_SAFE_NO_PAD.encode("5.not-a-uuid");
        assert_eq!(
            list_err(&[("cursor", &not_uuid)]),
            (Some("cursor".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("status", "done")]),
            (Some("status".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("scope", "planet:x")]),
            (Some("scope".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("filter", "{")]),
            (Some("filter".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("filter", r#"{"a":[1]}"#)]),
            (Some("filter.a".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("created_after", "yesterday")]),
            (Some("created_after".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("created_before", "2026-02-30")]),
            (Some("created_before".into()), "invalid_value")
        );
        assert_eq!(
            list_err(&[("sort", "asc")]),
            (Some("sort".into()), "invalid_request")
        );
    }

    #[test]
    fn delete_needs_a_condition_or_all() {
        let e = DeleteFilter::from_json(&json!({})).unwrap_err();
        assert_eq!((e.field(), e.code()), (Some("filter"), "invalid_value"));
        let e = DeleteFilter::from_json(&json!({"filter": {}, "all": false})).unwrap_err();
        assert_eq!(e.field(), Some("filter"));
        assert!(
            DeleteFilter::from_json(&json!({"all": true}))
                .unwrap()
                .is_unconditional()
        );
        let d = DeleteFilter::from_json(&json!({"scope": "page:/x", "filter": {"topic": "risk"}}))
            .unwrap();
        assert_eq!(d.scopes, [Scope::Page("/x".into())]);
        assert!(!d.is_unconditional());
        for (body, field) in [
            (json!({"all": "yes"}), "all"),
            (json!({"status": 3}), "status"),
            (json!({"status": "gone"}), "status"),
            (json!({"scope": "x"}), "scope"),
            (json!({"filter": {"k": null}}), "filter.k"),
            (json!({"ids": []}), "ids"),
        ] {
            assert_eq!(
                DeleteFilter::from_json(&body).unwrap_err().field(),
                Some(field),
                "{body}"
            );
        }
        assert_eq!(
            DeleteFilter::from_json_bytes(b"{").unwrap_err().code(),
            "invalid_json"
        );
    }
}
