//! Metadata filters: a flat JSON object of equalities (`{"sector": "energy", "year": 2024,
//! "draft": false}`), all of which must hold. The same object serves as a jsonb
//! containment test (`metadata @> $1::jsonb`), which a GIN index answers.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::QueryError;

pub const MAX_FILTER_KEYS: usize = 16;
pub const MAX_FILTER_KEY_CHARS: usize = 64;
pub const MAX_FILTER_TEXT_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FilterValue {
    Text(String),
    /// Kept as JSON wrote it, so `2024` is not turned into `2024.0`.
    Number(Number),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub struct MetadataFilter(BTreeMap<String, FilterValue>);

impl MetadataFilter {
    /// Validates the `filter` field of a request.
    pub fn from_json(value: &Value) -> Result<MetadataFilter, QueryError> {
        let Value::Object(map) = value else {
            return Err(QueryError::WrongType {
                field: "filter".into(),
                expected: "an object of key/value pairs",
            });
        };
        if map.len() > MAX_FILTER_KEYS {
            return Err(QueryError::InvalidFilter {
                field: "filter".into(),
                reason: format!(
                    "{} keys given; at most {MAX_FILTER_KEYS} are allowed",
                    map.len()
                ),
            });
        }
        let mut entries = BTreeMap::new();
        for (key, value) in map {
            let field = format!("filter.{key}");
            let invalid = |reason: String| QueryError::InvalidFilter {
                field: field.clone(),
                reason,
            };
            if key.trim().is_empty() {
                return Err(invalid("a key must not be empty".into()));
            }
            if key.chars().count() > MAX_FILTER_KEY_CHARS {
                return Err(invalid(format!(
                    "a key has at most {MAX_FILTER_KEY_CHARS} characters"
                )));
            }
            let value = match value {
                Value::String(s) if s.chars().count() > MAX_FILTER_TEXT_CHARS => {
                    return Err(invalid(format!(
                        "a text value has at most {MAX_FILTER_TEXT_CHARS} characters"
                    )));
                }
                Value::String(s) => FilterValue::Text(s.clone()),
                Value::Number(n) => FilterValue::Number(n.clone()),
                Value::Bool(b) => FilterValue::Bool(*b),
                Value::Null | Value::Array(_) | Value::Object(_) => {
                    return Err(invalid(
                        "a value must be a string, a number or a boolean".into(),
                    ));
                }
            };
            entries.insert(key.clone(), value);
        }
        Ok(MetadataFilter(entries))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&FilterValue> {
        self.0.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &FilterValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The filter as a JSON object, for `metadata @> $1::jsonb`.
    pub fn to_json(&self) -> Value {
        let map: Map<String, Value> = self
            .0
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    FilterValue::Text(s) => Value::String(s.clone()),
                    FilterValue::Number(n) => Value::Number(n.clone()),
                    FilterValue::Bool(b) => Value::Bool(*b),
                };
                (k.clone(), v)
            })
            .collect();
        Value::Object(map)
    }

    /// Whether a document's metadata satisfies every equality. Numbers compare by value
    /// (`2024` equals `2024.0`), as jsonb containment does.
    pub fn matches(&self, metadata: &Value) -> bool {
        self.0
            .iter()
            .all(|(key, expected)| match (expected, metadata.get(key)) {
                (FilterValue::Text(a), Some(Value::String(b))) => a == b,
                (FilterValue::Bool(a), Some(Value::Bool(b))) => a == b,
                (FilterValue::Number(a), Some(Value::Number(b))) => numbers_equal(a, b),
                _ => false,
            })
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), ..) => x == y,
        (.., Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_flat_equalities_and_round_trips_to_json() {
        let raw = json!({"sector": "energy", "year": 2024, "draft": false, "weight": 0.5});
        let filter = MetadataFilter::from_json(&raw).unwrap();
        assert_eq!(filter.get("year"), Some(&FilterValue::Number(2024.into())));
        assert_eq!(filter.to_json(), raw);
        assert_eq!(
            filter.to_json().to_string(),
            r#"{"draft":false,"sector":"energy","weight":0.5,"year":2024}"#
        );
        assert!(MetadataFilter::from_json(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn rejects_nesting_nulls_and_oversize_naming_the_key() {
        for (raw, field) in [
            (json!({"tags": ["a"]}), "filter.tags"),
            (json!({"meta": {"x": 1}}), "filter.meta"),
            (json!({"gone": null}), "filter.gone"),
            (json!({"": "x"}), "filter."),
            (json!({"k": "x".repeat(257)}), "filter.k"),
        ] {
            let err = MetadataFilter::from_json(&raw).unwrap_err();
            assert_eq!(err.field(), Some(field), "{raw}");
            assert_eq!(err.code(), "invalid_value");
        }
        let wide: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(
            MetadataFilter::from_json(&Value::Object(wide))
                .unwrap_err()
                .field(),
            Some("filter")
        );
        let err = MetadataFilter::from_json(&json!(["a"])).unwrap_err();
        assert_eq!((err.field(), err.code()), (Some("filter"), "invalid_type"));
    }

    #[test]
    fn matches_requires_every_equality_with_matching_types() {
        let filter = MetadataFilter::from_json(&json!({"sector": "energy", "year": 2024})).unwrap();
        assert!(filter.matches(&json!({"sector": "energy", "year": 2024, "extra": 1})));
        assert!(filter.matches(&json!({"sector": "energy", "year": 2024.0})));
        assert!(!filter.matches(&json!({"sector": "energy", "year": "2024"})));
        assert!(!filter.matches(&json!({"sector": "energy"})));
        assert!(!filter.matches(&json!(null)));
        assert!(MetadataFilter::default().matches(&json!(null)));
    }
}
