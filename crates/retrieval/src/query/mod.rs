//! A search request, validated in domain terms before anything touches storage:
//!
//! ```json
//! {"query": "how is CVaR computed", "k": 10, "mode": "hybrid",
//!  "scope": ["global", "tenant:acme"], "filter": {"sector": "energy"}}
//! ```
//!
//! Only `query` is required. Unknown fields are refused (a misspelt `mdoe` would
//! otherwise be ignored silently); `null` means "not given".

mod error;
mod filter;
mod scope;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::error::QueryError;
pub use self::filter::{
    FilterValue, MAX_FILTER_KEY_CHARS, MAX_FILTER_KEYS, MAX_FILTER_TEXT_CHARS, MetadataFilter,
};
pub use self::scope::{MAX_SCOPE_ID_CHARS, Scope};

pub const MIN_K: usize = 1;
pub const MAX_K: usize = 50;
pub const DEFAULT_K: usize = 10;
pub const MAX_QUERY_CHARS: usize = 2000;
pub const MAX_SCOPES: usize = 16;

/// Which retrievers answer a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Vector and full-text results fused by reciprocal rank.
    #[default]
    Hybrid,
    Vector,
    Text,
}

impl SearchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Vector => "vector",
            SearchMode::Text => "text",
        }
    }

    pub fn uses_vector(self) -> bool {
        matches!(self, SearchMode::Hybrid | SearchMode::Vector)
    }

    pub fn uses_text(self) -> bool {
        matches!(self, SearchMode::Hybrid | SearchMode::Text)
    }
}

impl fmt::Display for SearchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SearchMode {
    type Err = QueryError;

    /// Case-insensitive: `Hybrid` is as clear as `hybrid`.
    fn from_str(text: &str) -> Result<SearchMode, QueryError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hybrid" => Ok(SearchMode::Hybrid),
            "vector" => Ok(SearchMode::Vector),
            "text" => Ok(SearchMode::Text),
            _ => Err(QueryError::UnknownMode {
                given: text.to_string(),
            }),
        }
    }
}

/// A valid search request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchRequest {
    /// The query text, trimmed.
    pub query: String,
    pub k: usize,
    pub mode: SearchMode,
    /// Distinct scopes in the order given. Empty when the request named none: the caller
    /// applies its default (for example global plus the caller's tenant).
    pub scopes: Vec<Scope>,
    pub filter: MetadataFilter,
    /// The query's embedding, when the caller already has it (the chat step embeds each
    /// question once for its cache and history, and passes it here rather than paying for a
    /// second embedding). It must be the MiniLM embedding of `query`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// `"document"`: one result per document (its best chunk, with neighbours as context).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<GroupBy>,
}

/// How results are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Document,
}

/// Dimensions of a query embedding (all-MiniLM-L6-v2).
pub const EMBEDDING_DIMENSIONS: usize = 384;

const FIELDS: [&str; 7] = [
    "query",
    "k",
    "mode",
    "scope",
    "filter",
    "embedding",
    "group_by",
];

impl SearchRequest {
    /// Validates a raw request body.
    pub fn from_json_bytes(body: &[u8]) -> Result<SearchRequest, QueryError> {
        let text = std::str::from_utf8(body).map_err(|_| QueryError::InvalidUtf8)?;
        let value: Value =
            serde_json::from_str(text).map_err(|e| QueryError::MalformedJson(e.to_string()))?;
        SearchRequest::from_json(&value)
    }

    /// Validates a parsed request body. The first problem found is reported, checking
    /// fields in the order: unknown fields, query, k, mode, scope, filter.
    pub fn from_json(value: &Value) -> Result<SearchRequest, QueryError> {
        let Value::Object(body) = value else {
            return Err(QueryError::NotAnObject);
        };
        if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(QueryError::UnknownField {
                field: unknown.clone(),
            });
        }
        let given = |name: &str| body.get(name).filter(|v| !v.is_null());
        Ok(SearchRequest {
            query: parse_query(given("query"))?,
            k: given("k").map_or(Ok(DEFAULT_K), parse_k)?,
            mode: given("mode").map_or(Ok(SearchMode::default()), parse_mode)?,
            scopes: given("scope").map_or(Ok(Vec::new()), parse_scopes)?,
            filter: given("filter")
                .map_or(Ok(MetadataFilter::default()), MetadataFilter::from_json)?,
            embedding: given("embedding").map(parse_embedding).transpose()?,
            group_by: given("group_by").map(parse_group_by).transpose()?,
        })
    }

    /// Refuses a `tenant:<id>` scope naming a tenant other than the caller's: it could
    /// only ever match nothing, and a silent empty answer hides the client's bug.
    pub fn check_tenant(&self, caller: &str) -> Result<(), QueryError> {
        Scope::check_all_for(&self.scopes, caller)
    }
}

fn parse_group_by(value: &Value) -> Result<GroupBy, QueryError> {
    match value.as_str() {
        Some("document") => Ok(GroupBy::Document),
        Some(other) => Err(QueryError::InvalidValue {
            field: "group_by",
            reason: format!("unknown grouping {other:?}; expected \"document\""),
        }),
        None => Err(wrong_type("group_by", "the string \"document\"")),
    }
}

/// 384 finite numbers.
fn parse_embedding(value: &Value) -> Result<Vec<f32>, QueryError> {
    let Value::Array(items) = value else {
        return Err(wrong_type("embedding", "a list of 384 numbers"));
    };
    if items.len() != EMBEDDING_DIMENSIONS {
        return Err(QueryError::InvalidValue {
            field: "embedding",
            reason: format!(
                "expected {EMBEDDING_DIMENSIONS} numbers, got {}",
                items.len()
            ),
        });
    }
    items
        .iter()
        .map(|v| {
            v.as_f64()
                .map(|x| x as f32)
                .filter(|x| x.is_finite())
                .ok_or_else(|| wrong_type("embedding", "a list of 384 numbers"))
        })
        .collect()
}

fn wrong_type(field: &str, expected: &'static str) -> QueryError {
    QueryError::WrongType {
        field: field.to_string(),
        expected,
    }
}

fn parse_query(value: Option<&Value>) -> Result<String, QueryError> {
    let value = value.ok_or(QueryError::Missing { field: "query" })?;
    let text = value
        .as_str()
        .ok_or_else(|| wrong_type("query", "a string"))?
        .trim();
    if text.is_empty() {
        return Err(QueryError::EmptyQuery);
    }
    let chars = text.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(QueryError::QueryTooLong {
            chars,
            max: MAX_QUERY_CHARS,
        });
    }
    Ok(text.to_string())
}

/// `k` must be a JSON integer; `5.0` and `"5"` are refused as the wrong type, so a
/// client bug is not papered over.
fn parse_k(value: &Value) -> Result<usize, QueryError> {
    let Value::Number(n) = value else {
        return Err(wrong_type("k", "an integer"));
    };
    let out_of_range = || QueryError::KOutOfRange {
        given: n.to_string(),
        min: MIN_K,
        max: MAX_K,
    };
    if let Some(k) = n.as_u64() {
        let k = usize::try_from(k).map_err(|_| out_of_range())?;
        return if (MIN_K..=MAX_K).contains(&k) {
            Ok(k)
        } else {
            Err(out_of_range())
        };
    }
    if n.is_i64() {
        return Err(out_of_range()); // negative
    }
    Err(wrong_type("k", "an integer"))
}

fn parse_mode(value: &Value) -> Result<SearchMode, QueryError> {
    value
        .as_str()
        .ok_or_else(|| wrong_type("mode", "one of \"hybrid\", \"vector\", \"text\""))?
        .parse()
}

/// One scope string or a list of them.
pub(crate) fn parse_scopes(value: &Value) -> Result<Vec<Scope>, QueryError> {
    const EXPECTED: &str = "a scope string or a list of scope strings";
    let texts: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => {
            if items.len() > MAX_SCOPES {
                return Err(QueryError::TooManyScopes {
                    count: items.len(),
                    max: MAX_SCOPES,
                });
            }
            items
                .iter()
                .map(|v| v.as_str().ok_or_else(|| wrong_type("scope", EXPECTED)))
                .collect::<Result<_, _>>()?
        }
        _ => return Err(wrong_type("scope", EXPECTED)),
    };
    let mut scopes: Vec<Scope> = Vec::with_capacity(texts.len());
    for text in texts {
        let scope = Scope::parse(text)?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests;

/// The full-text side of a search as a Postgres `to_tsquery` string: every word of the
/// query joined with `|`, so a document matching some of the words still ranks
/// (`ts_rank_cd` rewards those matching more, and closer together). Words are runs of
/// letters and digits, lower-cased; everything else is dropped, so the result is always
/// valid `to_tsquery` syntax. `None` when the query has no words at all.
pub fn tsquery_terms(query: &str) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let word = word.to_lowercase();
        if !terms.contains(&word) {
            terms.push(word);
        }
        if terms.len() == 64 {
            break; // a longer question adds noise, not recall
        }
    }
    (!terms.is_empty()).then(|| terms.join(" | "))
}

#[cfg(test)]
mod tsquery_tests {
    use super::tsquery_terms;

    #[test]
    fn words_joined_with_or() {
        assert_eq!(
            tsquery_terms("What is CVaR?").as_deref(),
            Some("what | is | cvar")
        );
        assert_eq!(
            tsquery_terms("walk-forward & #NUM! 'x'").as_deref(),
            Some("walk | forward | num | x")
        );
        assert_eq!(
            tsquery_terms("Sharpe sharpe SHARPE").as_deref(),
            Some("sharpe")
        );
        assert_eq!(tsquery_terms("!!! ... ---"), None);
        assert_eq!(tsquery_terms("ratio:* | !a").as_deref(), Some("ratio | a"));
        assert_eq!(
            tsquery_terms("Zürich café").as_deref(),
            Some("zürich | café")
        );
    }
}
