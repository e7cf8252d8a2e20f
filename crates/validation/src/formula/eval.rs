//! Evaluates a parsed formula against the cells it refers to.

use super::address::CellRef;
use super::functions::{Arg, Function};
use super::parser::{BinOp, Expr, ExprKind};
use super::value::{ErrorKind, Value, compare};
use crate::limits::LimitHit;

/// What a formula can read.
pub trait Cells {
    /// One cell's value: `Empty` when nothing is there, `#REF!` when its sheet does not exist.
    fn cell(&mut self, r: &CellRef) -> Value;
    /// The non-empty cells of a rectangle, row by row, and the rectangle's size; `Err` when
    /// the reading budget is spent.
    fn range(&mut self, a: &CellRef, b: &CellRef) -> Result<(Vec<Value>, u64), LimitHit>;
    /// Charges `reads` more to the same budget (work that is not reading cells).
    fn charge(&mut self, reads: usize) -> Result<(), LimitHit>;
}

/// What an iterative solver (IRR, XIRR) costs per value, in cell reads: its Newton steps,
/// bracket scan and bisection evaluate the flows a few hundred times at most, so a sheet of
/// such calls stays within the request's budget of work instead of running for minutes.
const SOLVER_READS_PER_VALUE: usize = 64;

pub fn eval(e: &Expr, cells: &mut dyn Cells) -> Result<Value, LimitHit> {
    Ok(match &e.kind {
        ExprKind::Number(x) => Value::Number(*x),
        ExprKind::Text(s) => Value::Text(s.clone()),
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Error(k) => Value::Error(*k),
        ExprKind::Ref(r) => cells.cell(r),
        // A range where one value is wanted: a one-cell range is that cell, else `#VALUE!`
        // (spreadsheets' implicit intersection is not modelled).
        ExprKind::Range(a, b) => match cells.range(a, b)? {
            (mut values, 1) => values.pop().unwrap_or(Value::Empty),
            _ => Value::Error(ErrorKind::Value),
        },
        ExprKind::Negate(x) => number(eval(x, cells)?, |v| -v),
        ExprKind::Plus(x) => eval(x, cells)?,
        ExprKind::Percent(x) => number(eval(x, cells)?, |v| v / 100.0),
        ExprKind::Binary(op, l, r) => {
            let (l, r) = (eval(l, cells)?, eval(r, cells)?);
            binary(*op, &l, &r)
        }
        ExprKind::Call(Function::If, args) => {
            let cond = eval(&args[0], cells)?;
            match cond.to_bool() {
                Err(k) => Value::Error(k),
                Ok(true) => match args.get(1) {
                    Some(e) => empty_as_zero(eval(e, cells)?),
                    None => Value::Bool(true),
                },
                Ok(false) => match args.get(2) {
                    Some(e) => empty_as_zero(eval(e, cells)?),
                    None => Value::Bool(false),
                },
            }
        }
        ExprKind::Call(f, args) => {
            let mut evaluated = Vec::with_capacity(args.len());
            for a in args {
                evaluated.push(match &a.kind {
                    ExprKind::Ref(r) => {
                        let v = cells.cell(r);
                        let values = if v == Value::Empty { vec![] } else { vec![v] };
                        Arg::Range { values, cells: 1 }
                    }
                    ExprKind::Range(a, b) => {
                        let (values, size) = cells.range(a, b)?;
                        Arg::Range {
                            values,
                            cells: size,
                        }
                    }
                    _ => Arg::Scalar(eval(a, cells)?),
                });
            }
            if matches!(f, Function::Irr | Function::Xirr) {
                let values: usize = evaluated
                    .iter()
                    .map(|a| match a {
                        Arg::Range { values, .. } => values.len(),
                        Arg::Scalar(_) => 1,
                    })
                    .sum();
                cells.charge(values * SOLVER_READS_PER_VALUE)?;
            }
            f.apply(&evaluated)
        }
    })
}

/// A formula that yields an empty cell shows 0.
fn empty_as_zero(v: Value) -> Value {
    if v == Value::Empty {
        Value::Number(0.0)
    } else {
        v
    }
}

fn number(v: Value, f: impl Fn(f64) -> f64) -> Value {
    match v.to_number() {
        Ok(x) => Value::number(f(x)),
        Err(k) => Value::Error(k),
    }
}

fn binary(op: BinOp, l: &Value, r: &Value) -> Value {
    use std::cmp::Ordering::*;
    let arithmetic = |f: &dyn Fn(f64, f64) -> Result<f64, ErrorKind>| -> Value {
        match (l.to_number(), r.to_number()) {
            (Err(k), _) | (_, Err(k)) => Value::Error(k),
            (Ok(a), Ok(b)) => match f(a, b) {
                Ok(x) => Value::number(x),
                Err(k) => Value::Error(k),
            },
        }
    };
    let comparison = |want: &dyn Fn(std::cmp::Ordering) -> bool| match compare(l, r) {
        Ok(o) => Value::Bool(want(o)),
        Err(k) => Value::Error(k),
    };
    match op {
        BinOp::Add => arithmetic(&|a, b| Ok(a + b)),
        BinOp::Sub => arithmetic(&|a, b| Ok(a - b)),
        BinOp::Mul => arithmetic(&|a, b| Ok(a * b)),
        BinOp::Div => arithmetic(&|a, b| {
            if b == 0.0 {
                Err(ErrorKind::Div0)
            } else {
                Ok(a / b)
            }
        }),
        BinOp::Pow => arithmetic(&|a, b| {
            if a == 0.0 && b == 0.0 {
                Err(ErrorKind::Num)
            } else if a == 0.0 && b < 0.0 {
                Err(ErrorKind::Div0)
            } else {
                Ok(a.powf(b))
            }
        }),
        BinOp::Concat => match (l.to_text(), r.to_text()) {
            (Err(k), _) | (_, Err(k)) => Value::Error(k),
            (Ok(a), Ok(b)) => Value::Text(a + &b),
        },
        BinOp::Eq => comparison(&|o| o == Equal),
        BinOp::Ne => comparison(&|o| o != Equal),
        BinOp::Lt => comparison(&|o| o == Less),
        BinOp::Le => comparison(&|o| o != Greater),
        BinOp::Gt => comparison(&|o| o == Greater),
        BinOp::Ge => comparison(&|o| o != Less),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formula::parser::parse;
    use crate::limits::Limits;

    /// No cells: every reference is empty.
    struct Blank;
    impl Cells for Blank {
        fn cell(&mut self, _: &CellRef) -> Value {
            Value::Empty
        }
        fn range(&mut self, _: &CellRef, _: &CellRef) -> Result<(Vec<Value>, u64), LimitHit> {
            Ok((vec![], 4))
        }
        fn charge(&mut self, _: usize) -> Result<(), LimitHit> {
            Ok(())
        }
    }

    fn ev(text: &str) -> Value {
        eval(&parse(text, &Limits::default()).unwrap(), &mut Blank).unwrap()
    }

    #[test]
    fn operators() {
        assert_eq!(ev("=1+2*3"), Value::Number(7.0));
        assert_eq!(ev("=-2^2"), Value::Number(4.0));
        assert_eq!(ev("=2^3^2"), Value::Number(64.0));
        assert_eq!(ev("=10%"), Value::Number(0.1));
        assert_eq!(ev("=1/0"), Value::Error(ErrorKind::Div0));
        assert_eq!(ev("=\"a\"&1.5&TRUE"), Value::Text("a1.5TRUE".into()));
        assert_eq!(ev("=\"2\"*3"), Value::Number(6.0));
        assert_eq!(ev("=\"x\"*3"), Value::Error(ErrorKind::Value));
        assert_eq!(ev("=A1+1"), Value::Number(1.0));
        assert_eq!(ev("=1<2"), Value::Bool(true));
        assert_eq!(ev("=\"b\">\"A\""), Value::Bool(true));
        assert_eq!(ev("=0^0"), Value::Error(ErrorKind::Num));
        assert_eq!(ev("=#N/A+1"), Value::Error(ErrorKind::NA));
    }

    #[test]
    fn if_is_lazy_and_defaults() {
        assert_eq!(ev("=IF(1>2, 1/0, \"no\")"), Value::Text("no".into()));
        assert_eq!(ev("=IF(FALSE, 1)"), Value::Bool(false));
        assert_eq!(ev("=IF(\"x\", 1, 2)"), Value::Error(ErrorKind::Value));
        assert_eq!(ev("=IF(TRUE, A1)"), Value::Number(0.0));
        assert_eq!(ev("=SUM(A1:B2)"), Value::Number(0.0));
        assert_eq!(ev("=A1:B2"), Value::Error(ErrorKind::Value));
    }
}
