//! The built-in functions: their names, argument counts and spreadsheet semantics.
//!
//! Arguments arrive evaluated (except IF's branches, which are lazy): a reference or range
//! arrives as the values of its non-empty cells, a scalar as itself. As in Excel, aggregates
//! skip text and booleans that come through references but coerce ones typed directly.

use super::value::{ErrorKind, Value};
use crate::finance;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Sum,
    Average,
    Min,
    Max,
    Count,
    If,
    And,
    Or,
    Round,
    Abs,
    Npv,
    Irr,
    Xnpv,
    Xirr,
    Pmt,
    Pv,
    Fv,
    Rate,
}

/// An evaluated argument.
#[derive(Debug, Clone)]
pub enum Arg {
    Scalar(Value),
    /// The non-empty cells of a reference, row by row; `cells` is the rectangle's size.
    Range {
        values: Vec<Value>,
        cells: u64,
    },
}

impl Function {
    pub fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "SUM" => Function::Sum,
            "AVERAGE" => Function::Average,
            "MIN" => Function::Min,
            "MAX" => Function::Max,
            "COUNT" => Function::Count,
            "IF" => Function::If,
            "AND" => Function::And,
            "OR" => Function::Or,
            "ROUND" => Function::Round,
            "ABS" => Function::Abs,
            "NPV" => Function::Npv,
            "IRR" => Function::Irr,
            "XNPV" => Function::Xnpv,
            "XIRR" => Function::Xirr,
            "PMT" => Function::Pmt,
            "PV" => Function::Pv,
            "FV" => Function::Fv,
            "RATE" => Function::Rate,
            _ => return None,
        })
    }

    /// Fewest and most arguments.
    pub fn arity(self) -> (usize, usize) {
        const MANY: usize = 255;
        match self {
            Function::Sum | Function::Average | Function::Min | Function::Max => (1, MANY),
            Function::Count | Function::And | Function::Or => (1, MANY),
            Function::If => (1, 3),
            Function::Round => (2, 2),
            Function::Abs => (1, 1),
            Function::Npv => (2, MANY),
            Function::Irr => (1, 2),
            Function::Xnpv => (3, 3),
            Function::Xirr => (2, 3),
            Function::Pmt | Function::Pv | Function::Fv => (3, 5),
            Function::Rate => (3, 6),
        }
    }

    /// Applies every function but IF (which the evaluator handles to stay lazy).
    pub fn apply(self, args: &[Arg]) -> Value {
        match self.compute(args) {
            Ok(v) => v,
            Err(e) => Value::Error(e),
        }
    }

    fn compute(self, args: &[Arg]) -> Result<Value, ErrorKind> {
        use Function::*;
        Ok(match self {
            Sum => Value::number(numbers(args)?.iter().sum()),
            Average => {
                let n = numbers(args)?;
                if n.is_empty() {
                    return Err(ErrorKind::Div0);
                }
                Value::number(n.iter().sum::<f64>() / n.len() as f64)
            }
            Min => Value::number(numbers(args)?.into_iter().reduce(f64::min).unwrap_or(0.0)),
            Max => Value::number(numbers(args)?.into_iter().reduce(f64::max).unwrap_or(0.0)),
            Count => Value::Number(count(args) as f64),
            And => Value::Bool(logicals(args)?.iter().all(|b| *b)),
            Or => Value::Bool(logicals(args)?.iter().any(|b| *b)),
            Round => Value::number(round(scalar(&args[0])?, scalar(&args[1])?.trunc())),
            Abs => Value::number(scalar(&args[0])?.abs()),
            Npv => {
                let r = scalar(&args[0])?;
                solved(finance::npv(r, &numbers(&args[1..])?))?
            }
            Irr => {
                let guess = optional(args, 1, 0.1)?;
                solved(finance::irr(&numbers(&args[..1])?, guess))?
            }
            Xnpv => {
                let r = scalar(&args[0])?;
                let (values, dates) = paired(&args[1], &args[2])?;
                solved(finance::xnpv(r, &values, &dates))?
            }
            Xirr => {
                let (values, dates) = paired(&args[0], &args[1])?;
                let guess = optional(args, 2, 0.1)?;
                solved(finance::xirr(&values, &dates, guess))?
            }
            Pmt | Pv | Fv => {
                let (a, b, c) = (scalar(&args[0])?, scalar(&args[1])?, scalar(&args[2])?);
                let (d, t) = (optional(args, 3, 0.0)?, optional(args, 4, 0.0)?);
                solved(match self {
                    Pmt => finance::pmt(a, b, c, d, t),
                    Pv => finance::pv(a, b, c, d, t),
                    _ => finance::fv(a, b, c, d, t),
                })?
            }
            Rate => {
                let (n, p, v) = (scalar(&args[0])?, scalar(&args[1])?, scalar(&args[2])?);
                let (f, t) = (optional(args, 3, 0.0)?, optional(args, 4, 0.0)?);
                let guess = optional(args, 5, 0.1)?;
                solved(finance::rate(n, p, v, f, t, guess))?
            }
            If => unreachable!("IF is evaluated lazily by the evaluator"),
        })
    }
}

fn solved(x: Option<f64>) -> Result<Value, ErrorKind> {
    x.map(Value::number).ok_or(ErrorKind::Num)
}

/// A single number: a scalar coerced, or a one-cell reference.
pub fn scalar(arg: &Arg) -> Result<f64, ErrorKind> {
    match arg {
        Arg::Scalar(v) => v.to_number(),
        Arg::Range { values, cells: 1 } => values.first().unwrap_or(&Value::Empty).to_number(),
        Arg::Range { .. } => Err(ErrorKind::Value),
    }
}

fn optional(args: &[Arg], i: usize, default: f64) -> Result<f64, ErrorKind> {
    match args.get(i) {
        None | Some(Arg::Scalar(Value::Empty)) => Ok(default),
        Some(a) => scalar(a),
    }
}

/// Numbers for SUM-like functions: through references only numbers count (errors propagate);
/// typed directly, booleans and numeric text count too.
fn numbers(args: &[Arg]) -> Result<Vec<f64>, ErrorKind> {
    let mut out = Vec::new();
    for a in args {
        match a {
            Arg::Scalar(v) => out.push(v.to_number()?),
            Arg::Range { values, .. } => {
                for v in values {
                    match v {
                        Value::Number(x) => out.push(*x),
                        Value::Error(e) => return Err(*e),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(out)
}

/// COUNT: numbers in references; numbers, booleans and numeric text typed directly. Errors
/// are not counted and do not propagate.
fn count(args: &[Arg]) -> usize {
    args.iter()
        .map(|a| match a {
            Arg::Scalar(v) => usize::from(v.to_number().is_ok() && !matches!(v, Value::Empty)),
            Arg::Range { values, .. } => values
                .iter()
                .filter(|v| matches!(v, Value::Number(_)))
                .count(),
        })
        .sum()
}

/// AND/OR: booleans and numbers; text in references is skipped; none at all is `#VALUE!`.
fn logicals(args: &[Arg]) -> Result<Vec<bool>, ErrorKind> {
    let mut out = Vec::new();
    for a in args {
        match a {
            Arg::Scalar(Value::Empty) => {}
            Arg::Scalar(v) => out.push(v.to_bool()?),
            Arg::Range { values, .. } => {
                for v in values {
                    match v {
                        Value::Bool(b) => out.push(*b),
                        Value::Number(x) => out.push(*x != 0.0),
                        Value::Error(e) => return Err(*e),
                        _ => {}
                    }
                }
            }
        }
    }
    if out.is_empty() {
        return Err(ErrorKind::Value);
    }
    Ok(out)
}

/// XNPV/XIRR's values and dates: numbers only, as many of each.
fn paired(values: &Arg, dates: &Arg) -> Result<(Vec<f64>, Vec<f64>), ErrorKind> {
    let all = |a: &Arg| -> Result<Vec<f64>, ErrorKind> {
        match a {
            Arg::Scalar(v) => Ok(vec![v.to_number()?]),
            Arg::Range { values, .. } => values
                .iter()
                .map(|v| match v {
                    Value::Number(x) => Ok(*x),
                    Value::Error(e) => Err(*e),
                    _ => Err(ErrorKind::Value),
                })
                .collect(),
        }
    };
    let (v, d) = (all(values)?, all(dates)?);
    if v.len() != d.len() || v.is_empty() {
        return Err(ErrorKind::Num);
    }
    Ok((v, d))
}

/// ROUND: half away from zero, on the value as shown to 15 significant digits (so 2.675
/// rounds to 2.68 as in a spreadsheet, although its binary value is 2.67499…).
pub fn round(x: f64, digits: f64) -> f64 {
    let shown = |v: f64| -> f64 { format!("{v:.14e}").parse().unwrap_or(v) };
    let digits = digits.clamp(-308.0, 308.0) as i32;
    let factor = 10f64.powi(digits.abs());
    let scaled = if digits >= 0 {
        shown(shown(x) * factor)
    } else {
        shown(shown(x) / factor)
    };
    let r = scaled.abs().round().copysign(scaled);
    if digits >= 0 { r / factor } else { r * factor }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: f64) -> Arg {
        Arg::Scalar(Value::Number(x))
    }

    fn range(values: Vec<Value>) -> Arg {
        let cells = values.len() as u64;
        Arg::Range { values, cells }
    }

    #[test]
    fn aggregates_skip_text_in_references_but_not_typed() {
        let r = range(vec![
            Value::Number(1.0),
            Value::Text("x".into()),
            Value::Bool(true),
        ]);
        assert_eq!(
            Function::Sum.apply(&[r.clone(), n(2.0)]),
            Value::Number(3.0)
        );
        assert_eq!(
            Function::Count.apply(std::slice::from_ref(&r)),
            Value::Number(1.0)
        );
        assert_eq!(
            Function::Sum.apply(&[Arg::Scalar(Value::Text("x".into()))]),
            Value::Error(ErrorKind::Value)
        );
        assert_eq!(
            Function::Sum.apply(&[Arg::Scalar(Value::Bool(true)), n(1.0)]),
            Value::Number(2.0)
        );
        assert_eq!(
            Function::Average.apply(&[range(vec![])]),
            Value::Error(ErrorKind::Div0)
        );
        assert_eq!(Function::Max.apply(&[range(vec![])]), Value::Number(0.0));
        assert_eq!(
            Function::Sum.apply(&[range(vec![Value::Error(ErrorKind::NA)])]),
            Value::Error(ErrorKind::NA)
        );
    }

    #[test]
    fn logic_and_rounding() {
        assert_eq!(
            Function::And.apply(&[n(1.0), Arg::Scalar(Value::Bool(false))]),
            Value::Bool(false)
        );
        assert_eq!(
            Function::Or.apply(&[range(vec![Value::Text("a".into())])]),
            Value::Error(ErrorKind::Value)
        );
        assert_eq!(round(2.675, 2.0), 2.68);
        assert_eq!(round(-2.5, 0.0), -3.0);
        assert_eq!(round(1234.5, -2.0), 1200.0);
        assert_eq!(Function::Abs.apply(&[n(-4.0)]), Value::Number(4.0));
    }

    #[test]
    fn financial_defaults_and_errors() {
        // PMT's fv and type default to 0.
        let a = Function::Pmt.apply(&[n(0.01), n(12.0), n(1000.0)]);
        let b = Function::Pmt.apply(&[n(0.01), n(12.0), n(1000.0), n(0.0), n(0.0)]);
        assert_eq!(a, b);
        assert_eq!(
            Function::Irr.apply(&[range(vec![Value::Number(1.0), Value::Number(2.0)])]),
            Value::Error(ErrorKind::Num)
        );
        assert_eq!(
            Function::Xnpv.apply(&[n(0.1), range(vec![Value::Number(1.0)]), range(vec![])]),
            Value::Error(ErrorKind::Num)
        );
    }
}
