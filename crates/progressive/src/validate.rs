//! The validation step: rules, no model. It checks each draft (and the final answer) for
//! structure, citations that exist and point at provided sources, numbers that the sources
//! (or the question) support, content that must never be sent, and calculations written in
//! the text (`600 × 1.1 = 660`, `20% of 500 is 100`, an NPV), re-evaluated with the
//! validator's formula evaluator ([`crate::calc`]): a result that does not follow is an error.
//!
//! Errors make synthesis fix the drafts (or the answer be refused); warnings are passed on to
//! synthesis and shown to the client. A number the sources lack is a warning, not an error:
//! a calculation legitimately produces new numbers, and the client should see which.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::sources::{Source, citations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub severity: Severity,
    pub code: String,
    pub message: String,
}

impl Issue {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn warning(code: &str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            code: code.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValidationReport {
    pub issues: Vec<Issue>,
}

impl ValidationReport {
    pub fn ok(&self) -> bool {
        !self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }
}

/// Phrases that must never reach a user of a finance product (case-insensitive).
pub const FORBIDDEN_PHRASES: &[&str] = &[
    "guaranteed return",
    "guaranteed profit",
    "risk-free profit",
    "risk free profit",
    "cannot lose",
    "can't lose",
    "insider information",
    "-----begin",
];

/// Checks one text; `label` names it in messages ("Draft 2", "The answer").
pub fn check(label: &str, text: &str, sources: &[Source], question: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    let t = text.trim();
    if t.is_empty() {
        issues.push(Issue::error("empty", format!("{label} is empty")));
        return issues;
    }
    if t.matches("```").count() % 2 == 1 {
        issues.push(Issue::error(
            "unclosed_code_block",
            format!("{label} has an unclosed code block"),
        ));
    }
    let cited = citations(t);
    if !sources.is_empty() && cited.is_empty() {
        issues.push(Issue::error(
            "no_citations",
            format!("{label} cites no source; cite claims as [n]"),
        ));
    }
    let known: HashSet<usize> = sources.iter().map(|s| s.n).collect();
    let mut unknown: Vec<usize> = cited.into_iter().filter(|n| !known.contains(n)).collect();
    unknown.sort_unstable();
    unknown.dedup();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|n| format!("[{n}]")).collect();
        issues.push(Issue::error(
            "unknown_citation",
            format!(
                "{label} cites {} which is not among the sources",
                list.join(", ")
            ),
        ));
    }
    let lower = t.to_lowercase();
    for phrase in FORBIDDEN_PHRASES {
        if lower.contains(phrase) {
            issues.push(Issue::error(
                "forbidden_content",
                format!("{label} contains forbidden content ({phrase:?})"),
            ));
        }
    }
    if contains_secret(t) {
        issues.push(Issue::error(
            "forbidden_content",
            format!("{label} contains what looks like an API key"),
        ));
    }
    for c in crate::calc::calculations(&strip_citations(t)) {
        if !c.matches {
            issues.push(Issue::error(
                "calculation_mismatch",
                format!(
                    "{label} states {}, but the validator evaluates {} to {}",
                    c.text,
                    c.formula,
                    crate::calc::show(c.actual)
                ),
            ));
        }
    }
    let supported: HashSet<String> = sources
        .iter()
        .flat_map(|s| numbers(&format!("{} {}", s.heading, s.content)))
        .chain(numbers(question))
        .collect();
    let mut unsupported: Vec<String> = numbers(&strip_citations(t))
        .into_iter()
        .filter(|n| !supported.contains(n))
        .collect();
    unsupported.dedup();
    if !unsupported.is_empty() {
        issues.push(Issue::warning(
            "unsupported_number",
            format!(
                "{label} uses numbers the sources do not contain: {}",
                unsupported.join(", ")
            ),
        ));
    }
    issues
}

/// Validates the drafts of a turn.
pub fn validate_drafts(
    drafts: &[(String, String)],
    sources: &[Source],
    question: &str,
) -> ValidationReport {
    let mut issues = Vec::new();
    for (i, (_, text)) in drafts.iter().enumerate() {
        issues.extend(check(&format!("Draft {}", i + 1), text, sources, question));
    }
    ValidationReport { issues }
}

fn strip_citations(text: &str) -> String {
    crate::sources::map_citations(text, |_| None)
}

/// `sk-…`, `AIza…` and similar long key-shaped tokens.
fn contains_secret(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || "\"'`,;()[]".contains(c))
        .any(|w| {
            let key_like = |rest: &str| {
                rest.len() >= 20
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            w.strip_prefix("sk-").is_some_and(key_like)
                || w.strip_prefix("AIza").is_some_and(key_like)
        })
}

/// The significant numbers of a text, normalised: thousands separators dropped, trailing
/// zeros of decimals dropped, a percent sign kept apart from the digits (so "8%" meets
/// "8 percent" and "8.0"). Integers up to 10 are left out (list numbers, "step 2", counts)
/// unless a percent sign or a magnitude (`k`, `m`, `b`, `x`) follows.
pub fn numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            && (i == 0
                || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '.' || chars[i - 1] == '_'));
        if !starts {
            i += 1;
            continue;
        }
        let mut s = String::new();
        while i < chars.len() {
            let c = chars[i];
            let next_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if c.is_ascii_digit() {
                s.push(c);
            } else if c == ','
                && next_digit
                && chars.get(i + 2).is_some_and(char::is_ascii_digit)
                && chars.get(i + 3).is_some_and(char::is_ascii_digit)
            {
                // A thousands separator: skip it.
            } else if c == '.' && next_digit {
                s.push('.');
            } else {
                break;
            }
            i += 1;
        }
        let next = chars.get(i).copied();
        let magnitude = matches!(next, Some('%' | 'x' | 'k' | 'm' | 'b' | 'M' | 'B' | 'K'))
            && !chars.get(i + 1).is_some_and(|c| c.is_alphabetic());
        // Identifiers such as "t_1a" or "2nd" are not quantities.
        if next.is_some_and(char::is_alphabetic) && !magnitude {
            continue;
        }
        let normalised = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        let small_integer =
            !normalised.contains('.') && normalised.parse::<u64>().is_ok_and(|n| n <= 10);
        if (!small_integer || magnitude) && !normalised.is_empty() {
            out.push(normalised);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::source;

    fn sources() -> Vec<Source> {
        vec![
            source(
                1,
                1,
                "WACC",
                "Equity 600, debt 400; cost of equity 10.0% and cost of debt 6%. WACC is 8.04%.",
            ),
            source(2, 2, "Tax", "Tax rate 25%."),
        ]
    }

    fn codes(issues: &[Issue]) -> Vec<&str> {
        issues.iter().map(|i| i.code.as_str()).collect()
    }

    #[test]
    fn a_good_answer_passes() {
        let text =
            "With equity of 600 and debt of 400 [1], after a 25% tax [2], WACC is 8.04% [1].";
        assert!(
            check("The answer", text, &sources(), "").is_empty(),
            "{:?}",
            check("a", text, &sources(), "")
        );
    }

    #[test]
    fn structure_and_citations() {
        assert_eq!(codes(&check("A", "  ", &sources(), "")), ["empty"]);
        assert_eq!(
            codes(&check("A", "Some claim without sources.", &sources(), "")),
            ["no_citations"]
        );
        let i = check("A", "Claim [1] and [3] and [3].", &sources(), "");
        assert_eq!(codes(&i), ["unknown_citation"]);
        assert!(i[0].message.contains("[3]") && !i[0].message.contains("[3], [3]"));
        assert_eq!(
            codes(&check("A", "```\ncode [1]", &sources(), "")),
            ["unclosed_code_block"]
        );
        // Without sources, no citation is expected.
        assert!(check("A", "Nothing was found.", &[], "").is_empty());
    }

    #[test]
    fn numbers_must_come_from_sources_or_question() {
        let i = check(
            "A",
            "WACC is 9.5% [1] on 1,000 of capital.",
            &sources(),
            "I have 1000 of capital",
        );
        assert_eq!(codes(&i), ["unsupported_number"]);
        assert!(i[0].message.contains("9.5") && !i[0].message.contains("1000"));
        assert_eq!(
            numbers("a 1,250.50 b 8% c 10.0 d 2 e 2024 f x1 g 3rd h 5m"),
            ["1250.5", "8", "2024", "5"]
        );
        assert_eq!(numbers("10.0 and 6% and 3x"), ["6", "3"]);
    }

    #[test]
    fn wrong_calculations_are_errors() {
        let i = check(
            "Draft 1",
            "Equity share is 600 / (600 + 400) = 0.6 [1]; a 25% tax on 1,000 is 25% of 1,000 = 300 [2].",
            &sources(),
            "",
        );
        let wrong: Vec<&Issue> = i
            .iter()
            .filter(|x| x.code == "calculation_mismatch")
            .collect();
        assert_eq!(wrong.len(), 1, "{i:?}");
        assert_eq!(wrong[0].severity, Severity::Error);
        assert!(
            wrong[0].message.contains("25% of 1,000 = 300"),
            "{}",
            wrong[0].message
        );
        assert!(
            wrong[0].message.contains("=25%*1000 to 250"),
            "{}",
            wrong[0].message
        );
        let r = validate_drafts(
            &[(
                "t".into(),
                "WACC: 0.6 × 10% + 0.4 × 6% × (1 − 25%) = 7.8% [1]".into(),
            )],
            &sources(),
            "",
        );
        assert!(r.ok(), "{r:?}");
    }

    #[test]
    fn forbidden_content_and_secrets() {
        let i = check(
            "A",
            "This trade is a guaranteed return [1].",
            &sources(),
            "",
        );
        assert_eq!(codes(&i), ["forbidden_content"]);
        let i = check(
            "A",
            "Use key sk-abcdefghijklmnopqrstuvwxyz123 [1]",
            &sources(),
            "",
        );
        assert_eq!(codes(&i), ["forbidden_content"]);
        let r = validate_drafts(
            &[("t".into(), "fine [1]".into()), ("u".into(), "".into())],
            &sources(),
            "",
        );
        assert!(!r.ok());
        assert!(r.errors().next().unwrap().message.starts_with("Draft 2"));
    }
}
