//! Splits a formula into tokens, each with the character position it starts at (1-based,
//! counting the leading `=` as position 1, as a user counts along the cell's text).

use super::ParseError;
use super::address::{Addr, CellRef};
use super::value::ErrorKind;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Number(f64),
    Text(String),
    Bool(bool),
    Error(ErrorKind),
    Ref(CellRef),
    /// A function name (upper-cased), immediately followed by `(`.
    Function(String),
    Op(Op),
    LParen,
    RParen,
    Comma,
    Colon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Plus,
    Minus,
    Times,
    Divide,
    Power,
    Concat,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    /// 1-based character position in the cell's text.
    pub pos: usize,
}

/// Tokens of `text` (which starts with `=`; the `=` is not a token). `max_tokens` bounds the
/// work for any input.
pub fn tokenize(text: &str, max_tokens: usize) -> Result<Vec<Spanned>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = usize::from(chars.first() == Some(&'='));
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if out.len() >= max_tokens {
            return Err(ParseError::limit(pos, "tokens", max_tokens));
        }
        let (token, next) = match c {
            '0'..='9' | '.' => number(&chars, i)?,
            '"' => string(&chars, i)?,
            '#' => error_literal(&chars, i)?,
            '\'' => quoted_sheet_ref(&chars, i)?,
            '+' => (Token::Op(Op::Plus), i + 1),
            '-' => (Token::Op(Op::Minus), i + 1),
            '*' => (Token::Op(Op::Times), i + 1),
            '/' => (Token::Op(Op::Divide), i + 1),
            '^' => (Token::Op(Op::Power), i + 1),
            '&' => (Token::Op(Op::Concat), i + 1),
            '%' => (Token::Op(Op::Percent), i + 1),
            '=' => (Token::Op(Op::Eq), i + 1),
            '<' => match chars.get(i + 1) {
                Some('=') => (Token::Op(Op::Le), i + 2),
                Some('>') => (Token::Op(Op::Ne), i + 2),
                _ => (Token::Op(Op::Lt), i + 1),
            },
            '>' => match chars.get(i + 1) {
                Some('=') => (Token::Op(Op::Ge), i + 2),
                _ => (Token::Op(Op::Gt), i + 1),
            },
            '(' => (Token::LParen, i + 1),
            ')' => (Token::RParen, i + 1),
            ',' => (Token::Comma, i + 1),
            ':' => (Token::Colon, i + 1),
            c if c.is_ascii_alphabetic() || c == '$' || c == '_' => word(&chars, i)?,
            other => {
                return Err(ParseError::at(
                    pos,
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        out.push(Spanned { token, pos });
        i = next;
    }
    Ok(out)
}

fn number(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    let mut i = start;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if chars.get(i) == Some(&'.') {
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let text: String = chars[start..i].iter().collect();
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok((Token::Number(v), i)),
        _ => Err(ParseError::at(
            start + 1,
            format!("{text:?} is not a number"),
        )),
    }
}

fn string(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    let mut i = start + 1;
    let mut s = String::new();
    loop {
        match chars.get(i) {
            None => return Err(ParseError::at(start + 1, "unterminated string")),
            Some('"') if chars.get(i + 1) == Some(&'"') => {
                s.push('"');
                i += 2;
            }
            Some('"') => return Ok((Token::Text(s), i + 1)),
            Some(c) => {
                s.push(*c);
                i += 1;
            }
        }
    }
}

fn error_literal(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    for kind in ErrorKind::LITERALS {
        let code: Vec<char> = kind.code().chars().collect();
        let end = start + code.len();
        if end <= chars.len()
            && chars[start..end]
                .iter()
                .zip(&code)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
        {
            return Ok((Token::Error(*kind), end));
        }
    }
    Err(ParseError::at(start + 1, "unknown error value"))
}

/// `'My Sheet'!A1`: a quoted sheet name (`''` is a quote) must be followed by `!` and an address.
fn quoted_sheet_ref(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    let mut i = start + 1;
    let mut name = String::new();
    loop {
        match chars.get(i) {
            None => return Err(ParseError::at(start + 1, "unterminated sheet name")),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                name.push('\'');
                i += 2;
            }
            Some('\'') => {
                i += 1;
                break;
            }
            Some(c) => {
                name.push(*c);
                i += 1;
            }
        }
    }
    if name.is_empty() {
        return Err(ParseError::at(start + 1, "empty sheet name"));
    }
    if chars.get(i) != Some(&'!') {
        return Err(ParseError::at(
            i + 1,
            "expected '!' after a quoted sheet name",
        ));
    }
    address_after_sheet(chars, i + 1, name)
}

fn address_after_sheet(
    chars: &[char],
    start: usize,
    sheet: String,
) -> Result<(Token, usize), ParseError> {
    let end = word_end(chars, start);
    let text: String = chars[start..end].iter().collect();
    let Some((addr, col_absolute, row_absolute)) = Addr::parse(&text) else {
        return Err(ParseError::at(
            start + 1,
            format!("expected a cell address after {sheet}!"),
        ));
    };
    Ok((
        Token::Ref(CellRef {
            sheet: Some(sheet),
            addr,
            col_absolute,
            row_absolute,
        }),
        end,
    ))
}

fn word_end(chars: &[char], start: usize) -> usize {
    let mut i = start;
    while i < chars.len()
        && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '$' | '_' | '.'))
    {
        i += 1;
    }
    i
}

/// A name: a function (followed by `(`), TRUE/FALSE, a sheet (followed by `!`) or an address.
fn word(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    let end = word_end(chars, start);
    let text: String = chars[start..end].iter().collect();
    match chars.get(end) {
        Some('(') if !text.contains('$') => {
            return Ok((Token::Function(text.to_ascii_uppercase()), end));
        }
        Some('!') => return address_after_sheet(chars, end + 1, text),
        _ => {}
    }
    if text.eq_ignore_ascii_case("TRUE") {
        return Ok((Token::Bool(true), end));
    }
    if text.eq_ignore_ascii_case("FALSE") {
        return Ok((Token::Bool(false), end));
    }
    match Addr::parse(&text) {
        Some((addr, col_absolute, row_absolute)) => Ok((
            Token::Ref(CellRef {
                sheet: None,
                addr,
                col_absolute,
                row_absolute,
            }),
            end,
        )),
        None => Err(ParseError::at(start + 1, format!("unknown name {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Token> {
        tokenize(text, 1000)
            .unwrap()
            .into_iter()
            .map(|s| s.token)
            .collect()
    }

    #[test]
    fn tokens_with_positions() {
        let t = tokenize("=SUM(A1:$B$2)*1.5e2", 100).unwrap();
        assert_eq!(t[0].token, Token::Function("SUM".into()));
        assert_eq!(t[0].pos, 2);
        assert_eq!(t[4].pos, 9, "$B$2 starts at character 9");
        assert_eq!(t.last().unwrap().token, Token::Number(150.0));
    }

    #[test]
    fn sheets_strings_errors_and_comparisons() {
        let k = kinds("='My ''Q'' Sheet'!A1&Data!b2<>\"x\"\"y\"");
        let Token::Ref(r) = &k[0] else {
            panic!("{k:?}")
        };
        assert_eq!(r.sheet.as_deref(), Some("My 'Q' Sheet"));
        let Token::Ref(r) = &k[2] else {
            panic!("{k:?}")
        };
        assert_eq!(
            (r.sheet.as_deref(), r.addr.to_string()),
            (Some("Data"), "B2".into())
        );
        assert_eq!(k[3], Token::Op(Op::Ne));
        assert_eq!(k[4], Token::Text("x\"y".into()));
        assert_eq!(
            kinds("=#div/0!+true"),
            vec![
                Token::Error(ErrorKind::Div0),
                Token::Op(Op::Plus),
                Token::Bool(true)
            ]
        );
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(tokenize("=1 + \"abc", 10).unwrap_err().position, 6);
        assert_eq!(tokenize("=A1 ? 2", 10).unwrap_err().position, 5);
        assert_eq!(tokenize("=FOO + 1", 10).unwrap_err().position, 2);
        assert_eq!(tokenize("='S'A1", 10).unwrap_err().position, 5);
        let e = tokenize("=1+1+1+1", 3).unwrap_err();
        assert_eq!(e.limit.as_ref().map(|l| l.limit), Some("tokens"));
    }
}
