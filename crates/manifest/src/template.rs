//! Spin's expression templates (`spin_expressions::Template`): literal text with
//! `{{ name }}` parts, whitespace inside the braces optional. Only bare variable names are
//! expressions, as in Spin. Parsed once at load so bad syntax fails before serving.

use std::fmt;

use crate::ids::check_variable_name;

/// A parsed template. Keeps the source text for error messages and display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is.
    Literal(String),
    /// `{{ name }}`: the value of application variable `name`.
    Variable(String),
}

/// Why a template does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` with no closing `}}` (Spin's wording).
    #[error("unmatched '{{{{' in template")]
    Unmatched,
    /// The text between the braces is not a variable name.
    #[error("{name:?} is not a variable name: {reason}")]
    InvalidName { name: String, reason: String },
}

impl Template {
    /// Parses like Spin: scan for `{{`, take up to the next `}}`, trim, repeat. A lone
    /// `}}` is literal text.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let (expr, after) = after_open
                    .split_once("}}")
                    .ok_or(TemplateError::Unmatched)?;
                let name = expr.trim();
                check_variable_name(name).map_err(|reason| TemplateError::InvalidName {
                    name: name.to_string(),
                    reason,
                })?;
                parts.push(Part::Variable(name.to_string()));
                rest = after;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Literal(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parsed pieces, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// True when there is nothing to substitute.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The application variables referenced, in order (may repeat).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Substitutes every variable through `lookup`; `Err(name)` for the first one it
    /// does not know.
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(lookup(name).ok_or_else(|| name.clone())?),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Literal(s.into())
    }
    fn var(s: &str) -> Part {
        Part::Variable(s.into())
    }

    #[test]
    fn parts() {
        for (src, expected) in [
            ("", vec![]),
            ("a", vec![lit("a")]),
            ("{{ name }}", vec![var("name")]),
            ("{{name}}", vec![var("name")]),
            ("{{  name\t}}", vec![var("name")]),
            ("a-{{ x }}-b", vec![lit("a-"), var("x"), lit("-b")]),
            ("{{ a }}{{ b }}", vec![var("a"), var("b")]),
            ("a }} b", vec![lit("a }} b")]),
            (
                "postgres://{{ db_host }}:{{ db_port }}",
                vec![lit("postgres://"), var("db_host"), lit(":"), var("db_port")],
            ),
        ] {
            let t = Template::parse(src).unwrap();
            assert_eq!(t.parts(), expected.as_slice(), "{src}");
            assert_eq!(t.as_str(), src);
            assert_eq!(t.to_string(), src);
        }
    }

    #[test]
    fn literal_and_variables() {
        assert!(Template::parse("hello").unwrap().is_literal());
        assert!(Template::parse("").unwrap().is_literal());
        let t = Template::parse("{{ a }}-{{ b }}-{{ a }}").unwrap();
        assert!(!t.is_literal());
        assert_eq!(t.variables().collect::<Vec<_>>(), ["a", "b", "a"]);
    }

    #[test]
    fn unmatched_braces() {
        for src in ["{{ matched }} {{ unmatched", "{{", "a {{ b }"] {
            let err = Template::parse(src).unwrap_err();
            assert_eq!(err, TemplateError::Unmatched, "{src}");
            assert_eq!(err.to_string(), "unmatched '{{' in template");
        }
    }

    #[test]
    fn invalid_names() {
        for (src, name) in [
            ("{{ }}", ""),
            ("{{ Name }}", "Name"),
            ("{{ a.b }}", "a.b"),
            ("{{ a b }}", "a b"),
            ("{{ {{ a }}", "{{ a"),
        ] {
            match Template::parse(src).unwrap_err() {
                TemplateError::InvalidName { name: n, .. } => assert_eq!(n, name, "{src}"),
                other => panic!("{src}: {other:?}"),
            }
        }
        let msg = Template::parse("{{ Name }}").unwrap_err().to_string();
        assert!(msg.starts_with("\"Name\" is not a variable name: invalid character 'N'"));
    }

    #[test]
    fn render() {
        let t = Template::parse("https://{{ host }}/{{ path }}").unwrap();
        let lookup = |n: &str| match n {
            "host" => Some("example.com"),
            "path" => Some("x"),
            _ => None,
        };
        assert_eq!(t.render(lookup).unwrap(), "https://example.com/x");
        assert_eq!(t.render(|_| None).unwrap_err(), "host");
    }
}
