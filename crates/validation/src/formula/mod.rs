//! Spreadsheet formulas: tokens, a parser with spreadsheet precedence, values and their
//! coercions, the built-in functions, and whole sheets evaluated in dependency order.

pub mod address;
pub mod eval;
pub mod functions;
pub mod lexer;
pub mod parser;
pub mod sheet;
pub mod value;

use serde::Serialize;

use crate::limits::LimitHit;

/// Why a formula does not parse: where (1-based character position, `=` is 1) and what; a
/// limit when one was hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParseError {
    pub position: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitHit>,
}

impl ParseError {
    pub fn at(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
            limit: None,
        }
    }

    pub fn limit(position: usize, limit: &'static str, max: usize) -> Self {
        Self {
            position,
            message: format!("the formula is over the {limit} limit of {max}"),
            limit: Some(LimitHit { limit, max }),
        }
    }
}
