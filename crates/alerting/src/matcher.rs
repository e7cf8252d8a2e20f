//! Alertmanager's label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
//! Regexes are anchored at both ends, and a missing label reads as the empty string, both as
//! in Alertmanager (so `team=""` selects events without a `team` label).

use std::str::FromStr;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::event::{Event, is_label_name};

/// Bounds what one user-written regex may cost to compile and hold.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    NotEq,
    Re,
    NotRe,
}

impl MatchOp {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::NotEq => "!=",
            Self::Re => "=~",
            Self::NotRe => "!~",
        }
    }
}

/// One condition on one label. Stored and exchanged in its text form (serde uses it).
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// Compiled, anchored; present for `=~` and `!~`.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Eq for Matcher {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatcherError {
    BadName(String),
    NoOperator,
    /// An opening quote without its closing one, or text after the closing quote.
    BadQuoting,
    BadRegex(String),
}

impl std::fmt::Display for MatcherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadName(n) => write!(f, "{n:?} is not a valid label name"),
            Self::NoOperator => f.write_str("expected one of =, !=, =~, !~ after the label name"),
            Self::BadQuoting => f.write_str("the quoted value is not closed properly"),
            Self::BadRegex(e) => write!(f, "invalid regex: {e}"),
        }
    }
}

impl std::error::Error for MatcherError {}

impl Matcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let (name, value) = (name.into(), value.into());
        if !is_label_name(&name) {
            return Err(MatcherError::BadName(name));
        }
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| MatcherError::BadRegex(e.to_string()))?,
            ),
            MatchOp::Eq | MatchOp::NotEq => None,
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label holding `value` (`None`: absent) satisfies this matcher.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::NotEq, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            (MatchOp::Re | MatchOp::NotRe, None) => unreachable!("built with its regex"),
        }
    }

    pub fn matches(&self, event: &Event) -> bool {
        self.matches_value(event.label(&self.name))
    }

    /// Whether this matcher accepts an absent label (a silence made only of such matchers
    /// would silence almost everything).
    pub fn matches_empty(&self) -> bool {
        self.matches_value(None)
    }
}

/// Every matcher holds (an empty list holds for every event).
pub fn all_match(matchers: &[Matcher], event: &Event) -> bool {
    matchers.iter().all(|m| m.matches(event))
}

impl FromStr for Matcher {
    type Err = MatcherError;

    /// `name op value`, the value double-quoted (with `\"`, `\\` and `\n` escapes) or bare.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let name_len = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let (name, rest) = s.split_at(name_len);
        let rest = rest.trim_start();
        let (op, rest) = [MatchOp::Re, MatchOp::NotRe, MatchOp::NotEq, MatchOp::Eq]
            .into_iter()
            .find_map(|op| rest.strip_prefix(op.as_str()).map(|r| (op, r)))
            .ok_or(MatcherError::NoOperator)?;
        let rest = rest.trim();
        let value = match rest.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => rest.to_string(),
        };
        Self::new(name, op, value)
    }
}

/// Reads a quoted string's content up to its closing quote, which must end the input.
fn unquote(s: &str) -> Result<String, MatcherError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                return if chars.as_str().trim().is_empty() {
                    Ok(out)
                } else {
                    Err(MatcherError::BadQuoting)
                };
            }
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(e @ ('"' | '\\')) => out.push(e),
                // Keep unknown escapes for the regex engine (`\d`, `\.`).
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => return Err(MatcherError::BadQuoting),
            },
            c => out.push(c),
        }
    }
    Err(MatcherError::BadQuoting)
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Sent and answered in its text form, so its schema is a string (what [`FromStr`] reads).
impl schemars::JsonSchema for Matcher {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AlertMatcher".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An Alertmanager label matcher: `name=\"v\"`, `name!=\"v\"`, `name=~\"re\"` or `name!~\"re\"` (regexes anchored; a missing label reads as \"\")",
            "examples": ["symbol=~\"AAPL|MSFT\"", "env=\"prod\""],
        })
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;

    fn m(s: &str) -> Matcher {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_four_operators() {
        assert_eq!(
            m(r#"env="prod""#),
            Matcher::new("env", MatchOp::Eq, "prod").unwrap()
        );
        assert_eq!(m("env != prod").op(), MatchOp::NotEq);
        assert_eq!(m(r#"symbol=~"AA.*""#).op(), MatchOp::Re);
        assert_eq!(m(r#"symbol!~"AA.*""#).op(), MatchOp::NotRe);
        assert_eq!(m(r#"msg="say \"hi\"\\""#).value(), r#"say "hi"\"#);
        assert_eq!(m(r#"n=~"\d+""#).value(), r"\d+");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(
            "=x".parse::<Matcher>(),
            Err(MatcherError::BadName(String::new()))
        );
        assert_eq!("env~x".parse::<Matcher>(), Err(MatcherError::NoOperator));
        assert_eq!(
            r#"env="x"#.parse::<Matcher>(),
            Err(MatcherError::BadQuoting)
        );
        assert_eq!(
            r#"env="x" y"#.parse::<Matcher>(),
            Err(MatcherError::BadQuoting)
        );
        assert!(matches!(
            "env=~(".parse::<Matcher>(),
            Err(MatcherError::BadRegex(_))
        ));
    }

    #[test]
    fn regexes_are_anchored() {
        let re = m(r#"symbol=~"AA|MSFT""#);
        assert!(re.matches_value(Some("AA")));
        assert!(re.matches_value(Some("MSFT")));
        // Unanchored, "AAPL" would match "AA" and "XMSFT" would match "MSFT".
        assert!(!re.matches_value(Some("AAPL")));
        assert!(!re.matches_value(Some("XMSFT")));
        assert!(m(r#"symbol!~"AA|MSFT""#).matches_value(Some("AAPL")));
    }

    #[test]
    fn a_missing_label_is_the_empty_string() {
        assert!(m(r#"team="""#).matches_value(None));
        assert!(!m(r#"team!="""#).matches_value(None));
        assert!(m(r#"team!="""#).matches_value(Some("ops")));
        assert!(m(r#"team!="ops""#).matches_value(None));
        assert!(m(r#"team=~".*""#).matches_empty());
        assert!(!m(r#"team=~".+""#).matches_empty());
    }

    #[test]
    fn matches_events_with_pseudo_labels() {
        let e = test_event("price.move", &[("symbol", "AAPL")]);
        assert!(all_match(&[m("type=~price\\..*"), m("symbol=AAPL")], &e));
        assert!(!all_match(
            &[m("type=price.move"), m("severity=critical")],
            &e
        ));
        assert!(all_match(&[], &e));
    }

    #[test]
    fn text_form_round_trips_through_serde() {
        let original = m(r#"msg="a\"b\\c\nd""#);
        let json = serde_json::to_string(&original).unwrap();
        assert_eq!(json, r#""msg=\"a\\\"b\\\\c\\nd\"""#);
        let back: Matcher = serde_json::from_str(&json).unwrap();
        assert_eq!(back, original);
        assert!(serde_json::from_str::<Matcher>(r#""1x=y""#).is_err());
    }
}
