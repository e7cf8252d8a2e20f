//! The alert event any component or client raises, its labels and its fingerprint.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2_11::{Digest, Sha256};

/// Label name → value. A `BTreeMap` so iteration (and so every encoding) is sorted.
pub type Labels = BTreeMap<String, String>;

/// The pseudo-label matchers see holding the event's type (rules and silences can match it).
pub const TYPE_LABEL: &str = "type";
/// The pseudo-label matchers see holding the event's severity.
pub const SEVERITY_LABEL: &str = "severity";

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "AlertSeverity")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Something that happened and may deserve a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Dotted type, e.g. `price.move`, `circuit_breaker.tripped`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub severity: Severity,
    #[serde(default)]
    pub labels: Labels,
    /// One line for humans; templates fall back to the type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Unix milliseconds.
    pub occurred_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    EmptyType,
    /// Label names follow Prometheus: `[a-zA-Z_][a-zA-Z0-9_]*`.
    BadLabelName(String),
    /// `type` and `severity` are the pseudo-labels; a real label would be shadowed.
    ReservedLabel(String),
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EmptyType => f.write_str("the event type is empty"),
            Self::BadLabelName(n) => write!(
                f,
                "label name {n:?} is not valid (letters, digits and '_', not starting with a digit)"
            ),
            Self::ReservedLabel(n) => write!(f, "label name {n:?} is reserved"),
        }
    }
}

impl std::error::Error for EventError {}

/// Whether `name` is a valid label name (Prometheus' rule).
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Event {
    /// Checks what the API must refuse before storing an event.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.event_type.trim().is_empty() {
            return Err(EventError::EmptyType);
        }
        for name in self.labels.keys() {
            if name == TYPE_LABEL || name == SEVERITY_LABEL {
                return Err(EventError::ReservedLabel(name.clone()));
            }
            if !is_label_name(name) {
                return Err(EventError::BadLabelName(name.clone()));
            }
        }
        Ok(())
    }

    /// The value a matcher sees for `name`: the pseudo-labels first, then the labels.
    pub fn label(&self, name: &str) -> Option<&str> {
        match name {
            TYPE_LABEL => Some(&self.event_type),
            SEVERITY_LABEL => Some(self.severity.as_str()),
            _ => self.labels.get(name).map(String::as_str),
        }
    }

    /// Identity for deduplication: the type and the sorted labels (not severity, summary or
    /// payload, so a re-raised event with fresher numbers is still "the same alert").
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.event_type, &self.labels)
    }

    /// A one-line title for templates.
    pub fn title(&self) -> &str {
        self.summary
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(&self.event_type)
    }
}

/// A stable hash (the same across builds and versions, unlike `std`'s hashers) of an event's
/// identity: 32 hex digits, the first 128 bits of SHA-256 over the canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    pub fn of(event_type: &str, labels: &Labels) -> Self {
        let digest = Sha256::digest(canonical_identity(event_type, labels));
        Self(hex::encode(&digest[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `type 0xFF (name 0xFF value 0xFF)*` with names sorted. 0xFF never occurs in UTF-8, so
/// no two different label sets encode alike (as Alertmanager's label-set hash).
fn canonical_identity(event_type: &str, labels: &Labels) -> Vec<u8> {
    const SEP: u8 = 0xff;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(event_type.as_bytes());
    out.push(SEP);
    for (name, value) in labels {
        out.extend_from_slice(name.as_bytes());
        out.push(SEP);
        out.extend_from_slice(value.as_bytes());
        out.push(SEP);
    }
    out
}

#[cfg(test)]
pub(crate) fn test_event(event_type: &str, labels: &[(&str, &str)]) -> Event {
    Event {
        event_type: event_type.to_string(),
        severity: Severity::Warning,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        summary: None,
        payload: serde_json::Value::Null,
        occurred_at_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_identity_is_sorted_and_separated() {
        let e = test_event("price.move", &[("symbol", "AAPL"), ("dir", "up")]);
        assert_eq!(
            canonical_identity(&e.event_type, &e.labels),
            b"price.move\xffdir\xffup\xffsymbol\xffAAPL\xff".to_vec()
        );
    }

    #[test]
    fn fingerprint_matches_sha256_of_the_encoding() {
        // printf 'price.move\377dir\377up\377symbol\377AAPL\377' | sha256sum | cut -c1-32
        let e = test_event("price.move", &[("symbol", "AAPL"), ("dir", "up")]);
        assert_eq!(e.fingerprint().as_str(), "0265ce7814cd3d160e6aec06b16479f9");
    }

    #[test]
    fn fingerprint_ignores_label_order_severity_and_payload_but_not_values() {
        let a = test_event("t", &[("a", "1"), ("b", "2")]);
        let mut b = test_event("t", &[("b", "2"), ("a", "1")]);
        b.severity = Severity::Critical;
        b.payload = serde_json::json!({"price": 3});
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(
            a.fingerprint(),
            test_event("t", &[("a", "1"), ("b", "3")]).fingerprint()
        );
        assert_ne!(
            a.fingerprint(),
            test_event("u", &[("a", "1"), ("b", "2")]).fingerprint()
        );
        // Moving text across the name/value boundary must not collide.
        assert_ne!(
            test_event("t", &[("ab", "c")]).fingerprint(),
            test_event("t", &[("a", "bc")]).fingerprint()
        );
    }

    #[test]
    fn pseudo_labels_and_validation() {
        let e = test_event("price.move", &[("symbol", "AAPL")]);
        assert_eq!(e.label("type"), Some("price.move"));
        assert_eq!(e.label("severity"), Some("warning"));
        assert_eq!(e.label("symbol"), Some("AAPL"));
        assert_eq!(e.label("missing"), None);
        assert_eq!(e.validate(), Ok(()));
        assert_eq!(
            test_event("t", &[("type", "x")]).validate(),
            Err(EventError::ReservedLabel("type".into()))
        );
        assert_eq!(
            test_event("t", &[("1abc", "x")]).validate(),
            Err(EventError::BadLabelName("1abc".into()))
        );
        assert_eq!(test_event(" ", &[]).validate(), Err(EventError::EmptyType));
    }

    #[test]
    fn event_json_shape() {
        let e: Event = serde_json::from_str(
            r#"{"type":"system.error","severity":"critical","labels":{"component":"kb"},"occurred_at_ms":5}"#,
        )
        .unwrap();
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(e.title(), "system.error");
        assert_eq!(e.payload, serde_json::Value::Null);
    }
}
