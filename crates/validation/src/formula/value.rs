//! Cell values and the coercions spreadsheets apply between them.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Div0,
    Value,
    Ref,
    Name,
    Num,
    NA,
    Null,
    /// Part of, or depends on, a circular reference (spreadsheets refuse to compute these).
    Circular,
    /// The cell's formula does not parse (Google Sheets' `#ERROR!`).
    Parse,
}

impl ErrorKind {
    /// Error values a formula may contain literally.
    pub const LITERALS: &'static [ErrorKind] = &[
        ErrorKind::Div0,
        ErrorKind::Value,
        ErrorKind::Ref,
        ErrorKind::Name,
        ErrorKind::Num,
        ErrorKind::NA,
        ErrorKind::Null,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Div0 => "#DIV/0!",
            ErrorKind::Value => "#VALUE!",
            ErrorKind::Ref => "#REF!",
            ErrorKind::Name => "#NAME?",
            ErrorKind::Num => "#NUM!",
            ErrorKind::NA => "#N/A",
            ErrorKind::Null => "#NULL!",
            ErrorKind::Circular => "#CIRCULAR!",
            ErrorKind::Parse => "#ERROR!",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    Bool(bool),
    Error(ErrorKind),
    Empty,
}

impl Value {
    /// A finite number, or `#NUM!` (spreadsheets never hold infinities or NaN).
    pub fn number(x: f64) -> Value {
        if x.is_finite() {
            Value::Number(x)
        } else {
            Value::Error(ErrorKind::Num)
        }
    }

    /// As an operand of arithmetic: text that reads as a number is one, TRUE is 1, empty is 0.
    pub fn to_number(&self) -> Result<f64, ErrorKind> {
        match self {
            Value::Number(x) => Ok(*x),
            Value::Bool(b) => Ok(f64::from(u8::from(*b))),
            Value::Empty => Ok(0.0),
            Value::Text(t) => parse_number_text(t).ok_or(ErrorKind::Value),
            Value::Error(e) => Err(*e),
        }
    }

    /// As a condition: numbers are true unless 0; "TRUE"/"FALSE" text is accepted.
    pub fn to_bool(&self) -> Result<bool, ErrorKind> {
        match self {
            Value::Bool(b) => Ok(*b),
            Value::Number(x) => Ok(*x != 0.0),
            Value::Empty => Ok(false),
            Value::Text(t) if t.eq_ignore_ascii_case("TRUE") => Ok(true),
            Value::Text(t) if t.eq_ignore_ascii_case("FALSE") => Ok(false),
            Value::Text(_) => Err(ErrorKind::Value),
            Value::Error(e) => Err(*e),
        }
    }

    /// As text for `&`: numbers in general format (up to 15 significant digits).
    pub fn to_text(&self) -> Result<String, ErrorKind> {
        match self {
            Value::Number(x) => Ok(format_number(*x)),
            Value::Text(t) => Ok(t.clone()),
            Value::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.into()),
            Value::Empty => Ok(String::new()),
            Value::Error(e) => Err(*e),
        }
    }
}

/// Text a spreadsheet would read as a number (`" 12.5 "`, `"1e3"`, `"50%"`).
pub fn parse_number_text(t: &str) -> Option<f64> {
    let t = t.trim();
    if let Some(p) = t.strip_suffix('%') {
        return parse_number_text(p).map(|x| x / 100.0);
    }
    let plain = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && t.chars().any(|c| c.is_ascii_digit());
    if !plain {
        return None;
    }
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// General format: at most 15 significant digits, no trailing zeros.
pub fn format_number(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let rounded: f64 = format!("{x:.14e}").parse().unwrap_or(x);
    let s = format!("{rounded}");
    if s.contains('e') || s.len() > 20 {
        format!("{rounded:E}")
    } else {
        s
    }
}

/// Spreadsheet comparison: numbers < text < booleans; text case-insensitively; empty is 0,
/// "" or FALSE to match the other side.
pub fn compare(a: &Value, b: &Value) -> Result<Ordering, ErrorKind> {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) | Value::Empty => 0,
            Value::Text(_) => 1,
            Value::Bool(_) => 2,
            Value::Error(_) => 3,
        }
    }
    let fill = |v: &Value, other: &Value| -> Value {
        match (v, other) {
            (Value::Empty, Value::Text(_)) => Value::Text(String::new()),
            (Value::Empty, Value::Bool(_)) => Value::Bool(false),
            (Value::Empty, _) => Value::Number(0.0),
            (v, _) => v.clone(),
        }
    };
    if let Value::Error(e) = a {
        return Err(*e);
    }
    if let Value::Error(e) = b {
        return Err(*e);
    }
    let (a, b) = (fill(a, b), fill(b, a));
    Ok(match (&a, &b) {
        (Value::Number(x), Value::Number(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(&a).cmp(&rank(&b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercions() {
        assert_eq!(Value::Text(" 2.5 ".into()).to_number(), Ok(2.5));
        assert_eq!(Value::Text("50%".into()).to_number(), Ok(0.5));
        assert_eq!(Value::Text("abc".into()).to_number(), Err(ErrorKind::Value));
        assert_eq!(Value::Bool(true).to_number(), Ok(1.0));
        assert_eq!(Value::Number(0.1 + 0.2).to_text().unwrap(), "0.3");
        assert_eq!(Value::Number(-3.0).to_text().unwrap(), "-3");
        assert_eq!(Value::number(f64::INFINITY), Value::Error(ErrorKind::Num));
    }

    #[test]
    fn comparison_orders_types_like_a_spreadsheet() {
        use Ordering::*;
        let n = |x| Value::Number(x);
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(compare(&n(1e9), &t("a")), Ok(Less));
        assert_eq!(compare(&t("zzz"), &Value::Bool(false)), Ok(Less));
        assert_eq!(compare(&t("ABC"), &t("abc")), Ok(Equal));
        assert_eq!(compare(&Value::Empty, &n(0.0)), Ok(Equal));
        assert_eq!(compare(&Value::Empty, &t("")), Ok(Equal));
        assert_eq!(
            compare(&n(1.0), &Value::Error(ErrorKind::NA)),
            Err(ErrorKind::NA)
        );
    }
}
