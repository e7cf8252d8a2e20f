//! Rules: which events go to which channels, and into which group. Every enabled rule an event
//! matches routes it (there is no "first match wins"), each into its own group.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Labels, TYPE_LABEL};
use crate::matcher::{Matcher, all_match};

/// `group_by: ["..."]` groups by every label (each distinct label set is its own group), as
/// in Alertmanager.
pub const GROUP_BY_ALL: &str = "...";

/// Alertmanager's defaults.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
/// An alert not raised again for this long is over (Alertmanager's `resolve_timeout`).
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// When a group's notifications go out. JSON fields are milliseconds (`group_wait_ms`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "AlertGroupTiming")]
pub struct GroupTiming {
    /// From a group's first alert to its first notification: gathers a burst into one.
    #[serde(rename = "group_wait_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub group_wait: Duration,
    /// Between notifications of a group whose alerts changed.
    #[serde(rename = "group_interval_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub group_interval: Duration,
    /// Before the same unchanged alerts are notified again.
    #[serde(rename = "repeat_interval_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub repeat_interval: Duration,
    #[serde(rename = "resolve_timeout_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub resolve_timeout: Duration,
}

impl Default for GroupTiming {
    fn default() -> Self {
        Self {
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    /// Type patterns: exact (`price.move`), a prefix (`circuit_breaker.*`) or `*`. Empty:
    /// every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Channel ids the group's notifications go to.
    pub channels: Vec<String>,
    /// Label names (pseudo-labels `type` and `severity` allowed) whose values split groups;
    /// empty: one group for the whole rule.
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default)]
    pub timing: GroupTiming,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Whether `event_type` fits `pattern`: `*`, `prefix.*` (the prefix itself does not match:
/// `a.*` means "something under a"), or the exact type.
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1),
        None => pattern == event_type,
    }
}

/// The identity of one aggregation group: its rule and the values of its `group_by` labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    pub rule_id: String,
    pub labels: Labels,
}

impl GroupKey {
    /// A stable text form, e.g. `rule-1:{symbol="AAPL",type="price.move"}`, for storage keys.
    /// Values are JSON-escaped (stable, unlike `Debug`).
    pub fn id(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v.as_str())))
            .collect();
        format!("{}:{{{}}}", self.rule_id, labels.join(","))
    }
}

impl Rule {
    pub fn matches(&self, event: &Event) -> bool {
        self.enabled
            && (self.event_types.is_empty()
                || self
                    .event_types
                    .iter()
                    .any(|p| type_matches(p, &event.event_type)))
            && all_match(&self.matchers, event)
    }

    /// The group `event` falls into under this rule. Labels the event lacks are left out of
    /// the key (as Alertmanager does), so they group together.
    pub fn group_key(&self, event: &Event) -> GroupKey {
        let labels = if self.group_by.iter().any(|n| n == GROUP_BY_ALL) {
            let mut all = event.labels.clone();
            all.insert(TYPE_LABEL.to_string(), event.event_type.clone());
            all
        } else {
            self.group_by
                .iter()
                .filter_map(|name| Some((name.clone(), event.label(name)?.to_string())))
                .collect()
        };
        GroupKey {
            rule_id: self.id.clone(),
            labels,
        }
    }
}

/// One rule an event matched, and the group it joins there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    pub rule: &'a Rule,
    pub group: GroupKey,
}

/// Every enabled rule `event` matches, in the order given.
pub fn route<'a>(rules: &'a [Rule], event: &Event) -> Vec<Route<'a>> {
    rules
        .iter()
        .filter(|r| r.matches(event))
        .map(|rule| Route {
            rule,
            group: rule.group_key(event),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;

    fn rule(id: &str, types: &[&str], matchers: &[&str], group_by: &[&str]) -> Rule {
        Rule {
            id: id.into(),
            event_types: types.iter().map(|s| s.to_string()).collect(),
            matchers: matchers.iter().map(|s| s.parse().unwrap()).collect(),
            channels: vec!["discord".into()],
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            timing: GroupTiming::default(),
            enabled: true,
        }
    }

    #[test]
    fn type_patterns() {
        assert!(type_matches("*", "anything"));
        assert!(type_matches("price.move", "price.move"));
        assert!(!type_matches("price.move", "price.moved"));
        assert!(type_matches("circuit_breaker.*", "circuit_breaker.tripped"));
        assert!(!type_matches("circuit_breaker.*", "circuit_breaker"));
        assert!(!type_matches(
            "circuit_breaker.*",
            "circuit_breakers.tripped"
        ));
        assert!(!type_matches("circuit_breaker.*", "circuit_breaker."));
    }

    #[test]
    fn routes_by_type_and_matchers_to_every_matching_rule() {
        let rules = vec![
            rule("moves", &["price.move"], &["symbol=~\"AA.*\""], &["symbol"]),
            rule("critical", &[], &["severity=critical"], &[]),
            rule("all", &["*"], &[], &["type"]),
            Rule {
                enabled: false,
                ..rule("off", &[], &[], &[])
            },
        ];
        let mut e = test_event("price.move", &[("symbol", "AAPL")]);
        let ids = |e: &Event| -> Vec<String> {
            route(&rules, e).iter().map(|r| r.rule.id.clone()).collect()
        };
        assert_eq!(ids(&e), vec!["moves", "all"]);
        e.severity = crate::event::Severity::Critical;
        assert_eq!(ids(&e), vec!["moves", "critical", "all"]);
        assert_eq!(
            ids(&test_event("price.move", &[("symbol", "MSFT")])),
            vec!["all"]
        );
    }

    #[test]
    fn group_keys() {
        let e = test_event("price.move", &[("symbol", "AAPL"), ("venue", "X")]);
        let by_symbol = rule("r1", &[], &[], &["symbol", "missing"]);
        assert_eq!(by_symbol.group_key(&e).id(), r#"r1:{symbol="AAPL"}"#);
        assert_eq!(rule("r2", &[], &[], &[]).group_key(&e).id(), "r2:{}");
        assert_eq!(
            rule("r3", &[], &[], &[GROUP_BY_ALL]).group_key(&e).id(),
            r#"r3:{symbol="AAPL",type="price.move",venue="X"}"#
        );
        let quoted = test_event("t", &[("symbol", "a\"b")]);
        assert_eq!(by_symbol.group_key(&quoted).id(), r#"r1:{symbol="a\"b"}"#);
    }

    #[test]
    fn rule_json_with_default_timing() {
        let r: Rule = serde_json::from_str(
            r#"{"id":"r","event_types":["price.move"],"matchers":["symbol!=\"SPY\""],
                "channels":["c1"],"timing":{"group_wait_ms":1000}}"#,
        )
        .unwrap();
        assert_eq!(r.timing.group_wait, Duration::from_secs(1));
        assert_eq!(r.timing.group_interval, Duration::from_secs(300));
        assert_eq!(r.timing.repeat_interval, Duration::from_secs(14400));
        assert!(r.enabled);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["timing"]["repeat_interval_ms"], 14_400_000);
        assert_eq!(json["matchers"][0], r#"symbol!="SPY""#);
    }
}
