//! Recursive descent with spreadsheet precedence, lowest first: comparisons (`= <> < <= > >=`),
//! `&`, `+ -`, `* /`, `^` (left-associative, as in Excel: `2^3^2` is 64), postfix `%`, prefix
//! `-`/`+` (binding tighter than `^`: `-2^2` is 4), and `:` ranges. Nesting (parentheses,
//! arguments, signs) is bounded by the depth limit before recursing, and every node's height
//! by the tree-height limit as it is built (long `+` chains are flat to write but deep to
//! evaluate), so no input recurses or allocates without bound.

use super::ParseError;
use super::address::CellRef;
use super::functions::Function;
use super::lexer::{Op, Spanned, Token, tokenize};
use super::value::ErrorKind;
use crate::limits::Limits;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    /// 1-based character position in the cell's text.
    pub pos: usize,
    height: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Number(f64),
    Text(String),
    Bool(bool),
    Error(ErrorKind),
    Ref(CellRef),
    /// Two corners on one sheet (the second corner's sheet is the first's).
    Range(CellRef, CellRef),
    Negate(Box<Expr>),
    Plus(Box<Expr>),
    Percent(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Parses a formula (the cell's text, starting with `=`).
pub fn parse(text: &str, limits: &Limits) -> Result<Expr, ParseError> {
    let length = text.chars().count();
    if length > limits.formula_length {
        return Err(ParseError::limit(
            1,
            "formula_length",
            limits.formula_length,
        ));
    }
    let tokens = tokenize(text, limits.tokens)?;
    let mut p = Parser {
        tokens,
        at: 0,
        end: length + 1,
        max_depth: limits.depth,
        max_height: limits.tree_height,
        nesting: 0,
    };
    if p.tokens.is_empty() {
        return Err(ParseError::at(p.end, "empty formula"));
    }
    let e = p.expression()?;
    match p.peek() {
        None => Ok(e),
        Some(Token::RParen) => Err(ParseError::at(p.pos(), "unmatched ')'")),
        Some(_) => Err(ParseError::at(
            p.pos(),
            "expected an operator or the end of the formula",
        )),
    }
}

struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    end: usize,
    max_depth: usize,
    max_height: usize,
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.token)
    }

    fn pos(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |t| t.pos)
    }

    fn node(&self, kind: ExprKind, pos: usize, children: &[&Expr]) -> Result<Expr, ParseError> {
        let height = 1 + children.iter().map(|c| c.height).max().unwrap_or(0);
        if height > self.max_height {
            return Err(ParseError::limit(pos, "tree_height", self.max_height));
        }
        Ok(Expr { kind, pos, height })
    }

    fn binary(&self, op: BinOp, l: Expr, r: Expr, pos: usize) -> Result<Expr, ParseError> {
        let e = self.node(ExprKind::Number(0.0), pos, &[&l, &r])?;
        Ok(Expr {
            kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
            ..e
        })
    }

    /// Entered for every parenthesis, argument list and prefix sign, so nesting is bounded
    /// before any node exists.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > self.max_depth {
            return Err(ParseError::limit(self.pos(), "depth", self.max_depth));
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = self.comparison();
        self.nesting -= 1;
        e
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.concat()?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(Op::Eq)) => BinOp::Eq,
                Some(Token::Op(Op::Ne)) => BinOp::Ne,
                Some(Token::Op(Op::Lt)) => BinOp::Lt,
                Some(Token::Op(Op::Le)) => BinOp::Le,
                Some(Token::Op(Op::Gt)) => BinOp::Gt,
                Some(Token::Op(Op::Ge)) => BinOp::Ge,
                _ => return Ok(l),
            };
            let pos = self.pos();
            self.at += 1;
            let r = self.concat()?;
            l = self.binary(op, l, r, pos)?;
        }
    }

    fn concat(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.additive()?;
        while let Some(Token::Op(Op::Concat)) = self.peek() {
            let pos = self.pos();
            self.at += 1;
            let r = self.additive()?;
            l = self.binary(BinOp::Concat, l, r, pos)?;
        }
        Ok(l)
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(Op::Plus)) => BinOp::Add,
                Some(Token::Op(Op::Minus)) => BinOp::Sub,
                _ => return Ok(l),
            };
            let pos = self.pos();
            self.at += 1;
            let r = self.multiplicative()?;
            l = self.binary(op, l, r, pos)?;
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.power()?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(Op::Times)) => BinOp::Mul,
                Some(Token::Op(Op::Divide)) => BinOp::Div,
                _ => return Ok(l),
            };
            let pos = self.pos();
            self.at += 1;
            let r = self.power()?;
            l = self.binary(op, l, r, pos)?;
        }
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.percent()?;
        while let Some(Token::Op(Op::Power)) = self.peek() {
            let pos = self.pos();
            self.at += 1;
            let r = self.percent()?;
            l = self.binary(BinOp::Pow, l, r, pos)?;
        }
        Ok(l)
    }

    fn percent(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.unary()?;
        while let Some(Token::Op(Op::Percent)) = self.peek() {
            let pos = self.pos();
            self.at += 1;
            let n = self.node(ExprKind::Number(0.0), pos, &[&e])?;
            e = Expr {
                kind: ExprKind::Percent(Box::new(e)),
                ..n
            };
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let negate = match self.peek() {
            Some(Token::Op(Op::Minus)) => true,
            Some(Token::Op(Op::Plus)) => false,
            _ => return self.primary(),
        };
        let pos = self.pos();
        self.at += 1;
        self.enter()?;
        let inner = self.unary();
        self.nesting -= 1;
        let inner = inner?;
        let n = self.node(ExprKind::Number(0.0), pos, &[&inner])?;
        let kind = if negate {
            ExprKind::Negate(Box::new(inner))
        } else {
            ExprKind::Plus(Box::new(inner))
        };
        Ok(Expr { kind, ..n })
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        let Some(token) = self.tokens.get(self.at).map(|t| t.token.clone()) else {
            return Err(ParseError::at(
                pos,
                "the formula ends where a value was expected",
            ));
        };
        self.at += 1;
        let leaf = |kind| self.node(kind, pos, &[]);
        match token {
            Token::Number(x) => leaf(ExprKind::Number(x)),
            Token::Text(s) => leaf(ExprKind::Text(s)),
            Token::Bool(b) => leaf(ExprKind::Bool(b)),
            Token::Error(e) => leaf(ExprKind::Error(e)),
            Token::Ref(r) => self.reference(r, pos),
            Token::LParen => {
                let inner = self.expression()?;
                if self.peek() != Some(&Token::RParen) {
                    return Err(ParseError::at(self.pos(), "expected ')'"));
                }
                self.at += 1;
                Ok(inner)
            }
            Token::Function(name) => self.call(&name, pos),
            Token::RParen => Err(ParseError::at(pos, "unexpected ')'")),
            Token::Comma => Err(ParseError::at(pos, "unexpected ','")),
            Token::Colon => Err(ParseError::at(pos, "unexpected ':'")),
            Token::Op(_) => Err(ParseError::at(pos, "expected a value, found an operator")),
        }
    }

    /// A reference, or a range when `:` follows.
    fn reference(&mut self, first: CellRef, pos: usize) -> Result<Expr, ParseError> {
        if self.peek() != Some(&Token::Colon) {
            return self.node(ExprKind::Ref(first), pos, &[]);
        }
        self.at += 1;
        let second_pos = self.pos();
        let Some(Token::Ref(mut second)) = self.peek().cloned() else {
            return Err(ParseError::at(
                second_pos,
                "expected a cell address after ':'",
            ));
        };
        self.at += 1;
        match (&first.sheet, &second.sheet) {
            (_, None) => second.sheet = first.sheet.clone(),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
            _ => {
                return Err(ParseError::at(
                    second_pos,
                    "a range's corners must be on the same sheet",
                ));
            }
        }
        self.node(ExprKind::Range(first, second), pos, &[])
    }

    fn call(&mut self, name: &str, pos: usize) -> Result<Expr, ParseError> {
        let Some(function) = Function::from_name(name) else {
            return Err(ParseError::at(pos, format!("unknown function {name}")));
        };
        // The lexer left the `(` after the name.
        self.at += 1;
        let mut args = Vec::new();
        if self.peek() == Some(&Token::RParen) {
            self.at += 1;
        } else {
            loop {
                args.push(self.expression()?);
                match self.peek() {
                    Some(Token::Comma) => self.at += 1,
                    Some(Token::RParen) => {
                        self.at += 1;
                        break;
                    }
                    _ => {
                        return Err(ParseError::at(
                            self.pos(),
                            format!("expected ',' or ')' in {name}"),
                        ));
                    }
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(ParseError::at(
                pos,
                format!("{name} takes {expected} arguments, got {}", args.len()),
            ));
        }
        let children: Vec<&Expr> = args.iter().collect();
        let n = self.node(ExprKind::Number(0.0), pos, &children)?;
        Ok(Expr {
            kind: ExprKind::Call(function, args),
            ..n
        })
    }
}

/// Every reference and range in `e`, in order of appearance.
pub fn references(e: &Expr, out: &mut Vec<ExprRef>) {
    match &e.kind {
        ExprKind::Ref(r) => out.push(ExprRef::Cell(r.clone())),
        ExprKind::Range(a, b) => out.push(ExprRef::Range(a.clone(), b.clone())),
        ExprKind::Negate(x) | ExprKind::Plus(x) | ExprKind::Percent(x) => references(x, out),
        ExprKind::Binary(_, l, r) => {
            references(l, out);
            references(r, out);
        }
        ExprKind::Call(_, args) => args.iter().for_each(|a| references(a, out)),
        ExprKind::Number(_) | ExprKind::Text(_) | ExprKind::Bool(_) | ExprKind::Error(_) => {}
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprRef {
    Cell(CellRef),
    Range(CellRef, CellRef),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Expr, ParseError> {
        parse(text, &Limits::default())
    }

    /// The tree as prefix notation, to compare shapes.
    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Number(x) => format!("{x}"),
            ExprKind::Text(s) => format!("{s:?}"),
            ExprKind::Bool(b) => format!("{b}"),
            ExprKind::Error(k) => k.code().into(),
            ExprKind::Ref(r) => r.addr.to_string(),
            ExprKind::Range(a, b) => format!("{}:{}", a.addr, b.addr),
            ExprKind::Negate(x) => format!("(neg {})", shape(x)),
            ExprKind::Plus(x) => format!("(pos {})", shape(x)),
            ExprKind::Percent(x) => format!("(% {})", shape(x)),
            ExprKind::Binary(op, l, r) => format!("({op:?} {} {})", shape(l), shape(r)),
            ExprKind::Call(f, args) => format!(
                "({f:?} {})",
                args.iter().map(shape).collect::<Vec<_>>().join(" ")
            ),
        }
    }

    #[test]
    fn precedence_is_the_spreadsheet_one() {
        assert_eq!(shape(&p("=1+2*3^2").unwrap()), "(Add 1 (Mul 2 (Pow 3 2)))");
        assert_eq!(shape(&p("=-2^2").unwrap()), "(Pow (neg 2) 2)");
        assert_eq!(shape(&p("=2^3^2").unwrap()), "(Pow (Pow 2 3) 2)");
        assert_eq!(shape(&p("=50%*2").unwrap()), "(Mul (% 50) 2)");
        assert_eq!(
            shape(&p("=1+2&\"x\"=\"3x\"").unwrap()),
            "(Eq (Concat (Add 1 2) \"x\") \"3x\")"
        );
        assert_eq!(shape(&p("=1-2-3").unwrap()), "(Sub (Sub 1 2) 3)");
        assert_eq!(shape(&p("=SUM(A1:B2, 3)").unwrap()), "(Sum A1:B2 3)");
        assert_eq!(shape(&p("=(1+2)*3").unwrap()), "(Mul (Add 1 2) 3)");
    }

    #[test]
    fn errors_carry_positions() {
        let e = p("=SUM(1,").unwrap_err();
        assert_eq!(e.position, 8, "{e:?}");
        let e = p("=1+*2").unwrap_err();
        assert_eq!(e.position, 4, "{e:?}");
        let e = p("=(1+2").unwrap_err();
        assert_eq!(e.position, 6, "{e:?}");
        let e = p("=1)").unwrap_err();
        assert_eq!(e.position, 3, "{e:?}");
        let e = p("=NOPE(1)").unwrap_err();
        assert!(e.message.contains("unknown function NOPE"), "{e:?}");
        let e = p("=ROUND(1)").unwrap_err();
        assert!(e.message.contains("takes 2 arguments"), "{e:?}");
        let e = p("=Sheet1!A1:Other!B2").unwrap_err();
        assert!(e.message.contains("same sheet"), "{e:?}");
        assert_eq!(p("=").unwrap_err().position, 2);
    }

    #[test]
    fn limits_are_named() {
        let deep = format!("={}1{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(p(&deep).unwrap_err().limit.unwrap().limit, "depth");
        let long_chain = format!("=1{}", "+1".repeat(600));
        assert_eq!(
            p(&long_chain).unwrap_err().limit.unwrap().limit,
            "tree_height"
        );
        let negations = format!("={}1", "-".repeat(1000));
        assert_eq!(p(&negations).unwrap_err().limit.unwrap().limit, "depth");
        let long = format!("=\"{}\"", "x".repeat(9000));
        assert_eq!(p(&long).unwrap_err().limit.unwrap().limit, "formula_length");
        assert!(p(&format!("=1{}", "+1".repeat(300))).is_ok());
        let nested_calls = format!("={}1{}", "ABS(".repeat(70), ")".repeat(70));
        assert_eq!(p(&nested_calls).unwrap_err().limit.unwrap().limit, "depth");
    }

    #[test]
    fn collects_references() {
        let e = p("=A1+SUM(Data!B1:C3)*$D$4").unwrap();
        let mut refs = Vec::new();
        references(&e, &mut refs);
        assert_eq!(refs.len(), 3);
        let ExprRef::Range(a, b) = &refs[1] else {
            panic!()
        };
        assert_eq!(
            (a.sheet.as_deref(), b.sheet.as_deref()),
            (Some("Data"), Some("Data"))
        );
    }
}
