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

/// Evaluates a formula that refers to no cell (`=600*1.1`, `=NPV(10%, 300, 400)`) as the
/// sheet evaluator would; `Err` says why it has no number (a parse error, a reference, an
/// error value). For checking calculations written in prose (the chat's validation step).
pub fn evaluate_constant(text: &str) -> Result<f64, String> {
    struct NoCells {
        reads: usize,
    }
    impl eval::Cells for NoCells {
        fn cell(&mut self, _: &address::CellRef) -> value::Value {
            value::Value::Error(value::ErrorKind::Ref)
        }
        fn range(
            &mut self,
            _: &address::CellRef,
            _: &address::CellRef,
        ) -> Result<(Vec<value::Value>, u64), LimitHit> {
            Ok((vec![value::Value::Error(value::ErrorKind::Ref)], 1))
        }
        fn charge(&mut self, reads: usize) -> Result<(), LimitHit> {
            self.reads += reads;
            if self.reads > 100_000 {
                return Err(LimitHit {
                    limit: "range_reads",
                    max: 100_000,
                });
            }
            Ok(())
        }
    }
    let limits = crate::limits::Limits::default();
    let expr = parser::parse(text, &limits).map_err(|e| e.message)?;
    let mut refs = Vec::new();
    parser::references(&expr, &mut refs);
    if !refs.is_empty() {
        return Err("the formula refers to cells".into());
    }
    match eval::eval(&expr, &mut NoCells { reads: 0 }).map_err(|l| l.limit.to_string())? {
        value::Value::Number(x) => Ok(x),
        value::Value::Error(k) => Err(k.code().into()),
        other => Err(format!("not a number: {other:?}")),
    }
}

#[cfg(test)]
mod constant_tests {
    use super::evaluate_constant;

    #[test]
    fn constants_evaluate_and_references_do_not() {
        assert_eq!(evaluate_constant("=600*1.1+2^2").unwrap(), 664.0);
        assert!((evaluate_constant("=20%*500").unwrap() - 100.0).abs() < 1e-12);
        let npv = evaluate_constant("=NPV(10%, 300, 400, 500)").unwrap();
        assert!((npv - 978.963_185_574_756).abs() < 1e-6, "{npv}");
        assert!(evaluate_constant("=A1*2").is_err());
        assert!(evaluate_constant("=1/0").unwrap_err().contains("DIV"));
        assert!(evaluate_constant("=1+").is_err());
    }
}
