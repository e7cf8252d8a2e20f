//! Scopes: which part of the knowledge base a document belongs to and a search may see.
//! `global` (shared product knowledge), `tenant:<id>` (one customer's documents),
//! `page:<id>` (documents attached to one page or view of a client app), `curated`
//! (good answers promoted from feedback).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::QueryError;

pub const MAX_SCOPE_ID_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    Global,
    Curated,
    Tenant(String),
    Page(String),
}

impl Scope {
    /// Parses `global`, `curated`, `tenant:<id>` or `page:<id>`. A tenant id is letters,
    /// digits, `-`, `_` and `.`; a page id is any visible text without spaces (a route or
    /// a URL), both at most [`MAX_SCOPE_ID_CHARS`].
    pub fn parse(text: &str) -> Result<Scope, QueryError> {
        let invalid = |reason| QueryError::InvalidScope {
            given: text.to_string(),
            reason,
        };
        match text {
            "global" => return Ok(Scope::Global),
            "curated" => return Ok(Scope::Curated),
            _ => {}
        }
        let (kind, id) = text
            .split_once(':')
            .ok_or_else(|| invalid("expected global, curated, tenant:<id> or page:<id>"))?;
        if id.is_empty() {
            return Err(invalid("the id after `:` is empty"));
        }
        if id.chars().count() > MAX_SCOPE_ID_CHARS {
            return Err(invalid("the id is longer than 128 characters"));
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("the id contains spaces or control characters"));
        }
        match kind {
            "tenant" => {
                if !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err(invalid("a tenant id is letters, digits, '-', '_' and '.'"));
                }
                Ok(Scope::Tenant(id.to_string()))
            }
            "page" => Ok(Scope::Page(id.to_string())),
            _ => Err(invalid(
                "expected global, curated, tenant:<id> or page:<id>",
            )),
        }
    }
}

impl Scope {
    /// `Ok` unless this is `tenant:<id>` for a tenant other than `caller`.
    pub fn check_for(&self, caller: &str) -> Result<(), QueryError> {
        match self {
            Scope::Tenant(id) if id != caller => Err(QueryError::ForeignTenant {
                given: self.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// [`Scope::check_for`] over a list.
    pub fn check_all_for(scopes: &[Scope], caller: &str) -> Result<(), QueryError> {
        scopes.iter().try_for_each(|s| s.check_for(caller))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Curated => f.write_str("curated"),
            Scope::Tenant(id) => write!(f, "tenant:{id}"),
            Scope::Page(id) => write!(f, "page:{id}"),
        }
    }
}

impl FromStr for Scope {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Scope, QueryError> {
        Scope::parse(text)
    }
}

impl TryFrom<String> for Scope {
    type Error = QueryError;

    fn try_from(text: String) -> Result<Scope, QueryError> {
        Scope::parse(&text)
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> String {
        scope.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_every_kind() {
        for text in [
            "global",
            "curated",
            "tenant:acme-01",
            "tenant:3f2b.x_y",
            "page:/models/dcf?tab=2",
        ] {
            assert_eq!(Scope::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Scope::parse("tenant:acme"),
            Ok(Scope::Tenant("acme".into()))
        );
        assert_eq!(
            Scope::parse("page:sheet-7"),
            Ok(Scope::Page("sheet-7".into()))
        );
    }

    #[test]
    fn rejects_malformed_scopes_naming_the_field() {
        for text in [
            "",
            "Global",
            "tenant",
            "tenant:",
            "tenant:a b",
            "tenant:acme/x",
            "user:1",
            "page:a\tb",
            ":x",
        ] {
            let err = Scope::parse(text).unwrap_err();
            assert_eq!(err.field(), Some("scope"), "{text:?}");
            assert!(matches!(err, QueryError::InvalidScope { .. }), "{text:?}");
        }
        let long = format!("page:{}", "x".repeat(129));
        assert!(Scope::parse(&long).is_err());
        assert!(
            Scope::parse(&format!("page:{}", "é".repeat(128))).is_ok(),
            "limit counts characters"
        );
    }

    #[test]
    fn a_tenant_scope_must_name_the_caller() {
        assert!(
            Scope::parse("tenant:acme")
                .unwrap()
                .check_for("acme")
                .is_ok()
        );
        assert!(Scope::Global.check_for("acme").is_ok());
        assert!(Scope::Page("x".into()).check_for("acme").is_ok());
        let err = Scope::parse("tenant:other")
            .unwrap()
            .check_for("acme")
            .unwrap_err();
        assert_eq!(
            (err.field(), err.code(), err.http_status()),
            (Some("scope"), "foreign_tenant", 400)
        );
        assert!(err.to_string().contains("tenant:other"), "{err}");
    }

    #[test]
    fn serde_uses_the_string_form() {
        let scopes: Vec<Scope> = serde_json::from_str(r#"["global","tenant:acme"]"#).unwrap();
        assert_eq!(scopes, [Scope::Global, Scope::Tenant("acme".into())]);
        assert_eq!(
            serde_json::to_string(&Scope::Page("p1".into())).unwrap(),
            r#""page:p1""#
        );
        assert!(serde_json::from_str::<Scope>(r#""nope""#).is_err());
    }
}
