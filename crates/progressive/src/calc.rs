//! Calculations written in an answer, checked with the validator's formula evaluator
//! (`tessera_validation`, a library call: no I/O). Three shapes are recognised:
//!
//! - arithmetic with a stated result: `600 × 1.1 = 660`, `(40 + 60) / 4 ≈ 25`, `50 / 200 = 25%`;
//! - a percentage of a number: `20% of 500 is 100` (also with `=`);
//! - a net present value: `NPV of -1000, 300, 400, 500 at 10% is -21.04` — the flows listed
//!   after "of" (or "flows"), the rate after "at"; it matches when either convention holds
//!   (the first flow at time 0, or every flow discounted as the spreadsheet `NPV` does).
//!
//! Anything else is left alone: a claim is checked only when it parses completely, so prose
//! never becomes a false finding. A stated result matches when it equals the evaluated one to
//! the precision it is written with (half a unit of its last digit), or to 0.1 % relative.

use tessera_validation::formula::evaluate_constant;

/// One calculation found in a text and what the evaluator makes of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Calculation {
    /// As written (normalised spacing), e.g. `600 × 1.1 = 670`.
    pub text: String,
    /// The formula evaluated, e.g. `=600*1.1`.
    pub formula: String,
    pub stated: f64,
    pub actual: f64,
    pub matches: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Value, as written, decimals written, percent sign.
    Num(f64, String, u32, bool),
    Op(char),
    Open,
    Close,
    Eq,
    Comma,
    Word(String),
    Other,
}

fn tokens(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            let mut s = String::new();
            let mut decimals = 0u32;
            let mut seen_dot = false;
            while i < chars.len() {
                let d = chars[i];
                let digit_at = |k: usize| chars.get(k).is_some_and(char::is_ascii_digit);
                if d.is_ascii_digit() {
                    s.push(d);
                    if seen_dot {
                        decimals += 1;
                    }
                } else if d == ','
                    && !seen_dot
                    && digit_at(i + 1)
                    && digit_at(i + 2)
                    && digit_at(i + 3)
                    && !digit_at(i + 4)
                {
                    // A thousands separator.
                } else if d == '.' && !seen_dot && digit_at(i + 1) {
                    seen_dot = true;
                    s.push('.');
                } else {
                    break;
                }
                i += 1;
            }
            let percent = chars.get(i) == Some(&'%');
            if percent {
                i += 1;
            }
            // Glued to letters ("3rd", "Q4", "t_1"): not a quantity.
            let glued = chars.get(i).is_some_and(|c| c.is_alphabetic() || *c == '_')
                || (start > 0 && (chars[start - 1].is_alphabetic() || chars[start - 1] == '_'));
            match (glued, s.parse::<f64>()) {
                (false, Ok(x)) => {
                    let written: String = chars[start..i].iter().collect();
                    out.push(Tok::Num(x, written, decimals, percent));
                }
                _ => out.push(Tok::Other),
            }
            continue;
        }
        if c.is_alphabetic() {
            let mut w = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                w.push(chars[i]);
                i += 1;
            }
            let lower = w.to_lowercase();
            // `3 x 4`: a lone x between spaces is a multiplication.
            if lower == "x" {
                out.push(Tok::Op('*'));
            } else {
                out.push(Tok::Word(lower));
            }
            continue;
        }
        let spaced = |k: usize| k >= chars.len() || chars[k].is_whitespace();
        out.push(match c {
            '+' => Tok::Op('+'),
            '×' | '*' | '·' => Tok::Op('*'),
            '/' | '÷' => Tok::Op('/'),
            '^' => Tok::Op('^'),
            '−' => Tok::Op('-'),
            // ASCII '-' is a minus when spaced (`a - b`) or a sign (` -1000`); `2020-2021`
            // and `Q1-Q2` are ranges, never subtractions.
            '-' if (i > 0 && spaced(i - 1) && spaced(i + 1))
                || ((i == 0 || spaced(i - 1) || "(=,".contains(chars[i - 1]))
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                Tok::Op('-')
            }
            '(' => Tok::Open,
            ')' => Tok::Close,
            '=' | '≈' => Tok::Eq,
            ',' => Tok::Comma,
            // Currency signs are ignored; the amounts are what is checked.
            '$' | '€' | '£' => {
                i += 1;
                continue;
            }
            _ => Tok::Other,
        });
        i += 1;
    }
    out
}

fn number_formula(x: f64, percent: bool) -> String {
    format!("{x}{}", if percent { "%" } else { "" })
}

/// The stated number after position `at` (a sign allowed): (value, half a unit of its last
/// digit, tokens used).
fn stated(toks: &[Tok], at: usize) -> Option<(f64, f64, usize)> {
    let (neg, k) = match toks.get(at) {
        Some(Tok::Op('-')) => (true, at + 1),
        _ => (false, at),
    };
    match toks.get(k) {
        Some(Tok::Num(x, _, decimals, percent)) => {
            let scale = if *percent { 0.01 } else { 1.0 };
            let half = 0.5 * 10f64.powi(-(*decimals as i32)) * scale;
            let v = if neg { -x } else { *x } * scale;
            Some((v, half, k - at + 1))
        }
        _ => None,
    }
}

fn close_enough(actual: f64, stated: f64, half_unit: f64) -> bool {
    let diff = (actual - stated).abs();
    diff <= half_unit * (1.0 + 1e-9) || diff <= 1e-3 * stated.abs().max(actual.abs())
}

fn written(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        let piece = match t {
            Tok::Num(_, w, _, _) => w.clone(),
            Tok::Op('*') => "×".into(),
            Tok::Op(c) => c.to_string(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Eq => "=".into(),
            Tok::Comma => ",".into(),
            Tok::Word(w) => w.clone(),
            Tok::Other => "…".into(),
        };
        if !s.is_empty() && !matches!(t, Tok::Comma | Tok::Close) && !s.ends_with('(') {
            s.push(' ');
        }
        s.push_str(&piece);
    }
    s
}

/// The arithmetic expression ending just before `end`: the longest run of numbers,
/// operators and parentheses, with balanced parentheses and at least one binary operator.
fn expression_before(toks: &[Tok], end: usize) -> Option<(usize, String)> {
    let mut start = end;
    while start > 0 {
        match &toks[start - 1] {
            Tok::Num(..) | Tok::Op(_) | Tok::Open | Tok::Close => start -= 1,
            // `20% of 500`: "of" after a percentage multiplies.
            Tok::Word(w)
                if w == "of"
                    && start >= 2
                    && matches!(toks[start - 2], Tok::Num(_, _, _, true))
                    && matches!(toks.get(start), Some(Tok::Num(..))) =>
            {
                start -= 1
            }
            _ => break,
        }
    }
    // Trim to a start that can begin an expression, with balanced parentheses.
    loop {
        if start >= end {
            return None;
        }
        let run = &toks[start..end];
        let depth_ok = {
            let mut d = 0i32;
            let mut ok = true;
            for t in run {
                match t {
                    Tok::Open => d += 1,
                    Tok::Close => {
                        d -= 1;
                        if d < 0 {
                            ok = false;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            ok && d == 0
        };
        let good_start = matches!(run[0], Tok::Num(..) | Tok::Open | Tok::Op('-'));
        if good_start && depth_ok {
            break;
        }
        start += 1;
    }
    let run = &toks[start..end];
    let mut formula = String::from("=");
    let mut binary = false;
    let mut prev_operand = false;
    for t in run {
        match t {
            Tok::Num(x, _, _, p) => {
                formula.push_str(&number_formula(*x, *p));
                prev_operand = true;
            }
            Tok::Op(c) => {
                if prev_operand {
                    binary = true;
                }
                formula.push(*c);
                prev_operand = false;
            }
            Tok::Word(_) => {
                formula.push('*');
                binary = true;
                prev_operand = false;
            }
            Tok::Open => {
                formula.push('(');
                prev_operand = false;
            }
            Tok::Close => {
                formula.push(')');
                prev_operand = true;
            }
            _ => return None,
        }
    }
    binary.then_some((start, formula))
}

/// Every checkable calculation in `text`.
pub fn calculations(text: &str) -> Vec<Calculation> {
    let toks = tokens(text);
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let is_eq = match t {
            Tok::Eq => true,
            Tok::Word(w) => w == "is" || w == "equals",
            _ => false,
        };
        if !is_eq {
            continue;
        }
        if let Some(c) = npv_before(&toks, i) {
            out.push(c);
            continue;
        }
        let Some((start, formula)) = expression_before(&toks, i) else {
            continue;
        };
        let Some((value, half, used)) = stated(&toks, i + 1) else {
            continue;
        };
        // `… = 5 + 3`: the right side goes on, so it is not a stated result.
        if matches!(toks.get(i + 1 + used), Some(Tok::Op(_) | Tok::Open)) {
            continue;
        }
        let Ok(actual) = evaluate_constant(&formula) else {
            continue;
        };
        out.push(Calculation {
            text: written(&toks[start..i + 1 + used]).replace(" is ", " = "),
            formula,
            stated: value,
            actual,
            matches: close_enough(actual, value, half),
        });
    }
    out
}

/// `NPV of f0, f1, … at r% is v` (or `NPV at r% of f0, f1, … = v`) ending at `eq`.
fn npv_before(toks: &[Tok], eq: usize) -> Option<Calculation> {
    // The sentence back to "npv", at most 40 tokens.
    let from = (eq.saturating_sub(40)..eq)
        .rev()
        .find(|&k| matches!(&toks[k], Tok::Word(w) if w == "npv"))?;
    let span = &toks[from + 1..eq];
    if span.iter().any(|t| matches!(t, Tok::Other | Tok::Eq)) {
        return None;
    }
    let mut rate = None;
    let mut flows: Vec<f64> = Vec::new();
    let mut k = 0;
    while k < span.len() {
        match &span[k] {
            Tok::Word(w) if w == "at" => {
                if let Some(Tok::Num(x, _, _, true)) = span.get(k + 1) {
                    rate = Some(x / 100.0);
                    k += 2;
                    continue;
                }
            }
            Tok::Num(..) | Tok::Op('-') if flows.is_empty() => {
                // A comma-separated list of (signed) numbers.
                let mut list = Vec::new();
                let mut j = k;
                loop {
                    let neg = matches!(span.get(j), Some(Tok::Op('-')));
                    let n = if neg { j + 1 } else { j };
                    match span.get(n) {
                        Some(Tok::Num(x, _, _, false)) => list.push(if neg { -x } else { *x }),
                        _ => break,
                    }
                    j = n + 1;
                    match (span.get(j), span.get(j + 1)) {
                        (Some(Tok::Comma), _) => j += 1,
                        (Some(Tok::Word(w)), _) if w == "and" => j += 1,
                        _ => break,
                    }
                }
                if list.len() >= 2 {
                    flows = list;
                    k = j;
                    continue;
                }
            }
            _ => {}
        }
        k += 1;
    }
    let rate = rate?;
    if flows.len() < 2 {
        return None;
    }
    let (value, half, used) = stated(toks, eq + 1)?;
    let list: Vec<String> = flows.iter().map(|f| format!("{f}")).collect();
    // The spreadsheet NPV discounts every flow; the textbook one keeps the first at t0.
    let all = format!("=NPV({rate}, {})", list.join(", "));
    let t0 = format!("={} + NPV({rate}, {})", flows[0], list[1..].join(", "));
    let a = evaluate_constant(&all).ok()?;
    let b = evaluate_constant(&t0).ok()?;
    let (formula, actual) = if (b - value).abs() <= (a - value).abs() {
        (t0, b)
    } else {
        (all, a)
    };
    Some(Calculation {
        text: written(&toks[from..eq + 1 + used]).replace(" is ", " = "),
        formula,
        stated: value,
        actual,
        matches: close_enough(actual, value, half),
    })
}

/// A readable number: up to 6 significant decimals, no trailing zeros.
pub fn show(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Calculation {
        let c = calculations(text);
        assert_eq!(c.len(), 1, "{text}: {c:?}");
        c.into_iter().next().unwrap()
    }

    #[test]
    fn arithmetic_claims() {
        let c = one("Revenue grows to 600 × 1.1 = 660 next year [1].");
        assert!(c.matches, "{c:?}");
        assert_eq!(c.formula, "=600*1.1");
        let c = one("so 600 x 1.1 = 670, which is high");
        assert!(
            !c.matches && c.actual == 660.0 && c.stated == 670.0,
            "{c:?}"
        );
        assert!(one("(40 + 60) / 4 ≈ 25.0").matches);
        assert!(one("a margin of 50 / 200 = 25%").matches);
        assert!(!one("a margin of 50 / 200 = 20%").matches);
        assert!(one("1 / 3 = 0.33").matches, "rounded to what is written");
        assert!(!one("1 / 3 = 0.30").matches);
        assert!(one("$1,200 − $200 = $1,000").matches);
        assert!(one("1,000 * 1.05^2 = 1,102.5").matches);
        assert!(one("debt of 400 / (600 + 400) = 0.4").matches);
    }

    #[test]
    fn percentages_of_numbers() {
        let c = one("20% of 500 is 100.");
        assert!(c.matches, "{c:?}");
        assert_eq!(c.text, "20% of 500 = 100");
        assert!(!one("A 25% tax on 1,000 of profit: 25% of 1,000 = 300").matches);
    }

    #[test]
    fn net_present_values() {
        // -1000 + 300/1.1 + 400/1.1² + 500/1.1³ = -21.04 (first flow at t0).
        let c = one("The NPV of -1000, 300, 400 and 500 at 10% is -21.04 [1].");
        assert!(c.matches, "{c:?}");
        // The spreadsheet convention: every flow discounted, = -19.12.
        assert!(one("NPV at 10% of -1000, 300, 400, 500 = -19.13").matches);
        let c = one("NPV of -1000, 300, 400, 500 at 10% is 150");
        assert!(!c.matches && c.stated == 150.0, "{c:?}");
    }

    #[test]
    fn prose_is_left_alone() {
        for text in [
            "Revenue is 100 [1].",
            "WACC is 8.04% [1].",
            "From 2020-2021 = a good year",
            "P/E = 15",
            "Step 2 = done",
            "x = 5 + 3",
            "The ratio A1/B1 = 2",
            "Q1-Q2 = 10",
            "= 5",
            "3rd × 2 = 7",
        ] {
            assert!(
                calculations(text).is_empty(),
                "{text}: {:?}",
                calculations(text)
            );
        }
    }

    #[test]
    fn the_demo_knowledge_base_calculations_hold() {
        // Real prose with real calculations (`4% + 1.2 × 5% = 10%`): all found, all true.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/kb");
        let mut found = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "md") {
                let text = std::fs::read_to_string(&path).unwrap();
                for c in calculations(&text) {
                    assert!(c.matches, "{}: {c:?}", path.display());
                    found += 1;
                }
            }
        }
        assert!(found >= 3, "{found}");
    }

    #[test]
    fn shows_numbers() {
        assert_eq!(show(660.0), "660");
        assert_eq!(show(-21.036_814), "-21.036814");
        assert_eq!(show(1.0 / 3.0), "0.333333");
    }
}
