//! Cell addresses: `A1`, `$A$1`, columns `A`…`XFD` and rows 1…1,048,576 (a spreadsheet's grid).

use std::fmt;

pub const MAX_COLUMN: u32 = 16_384;
pub const MAX_ROW: u32 = 1_048_576;

/// A cell on a sheet; `col` and `row` count from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    pub row: u32,
    pub col: u32,
}

/// An address as written in a formula: where the `$` signs were does not change what it
/// names, only how it would copy, so evaluation ignores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRef {
    pub sheet: Option<String>,
    pub addr: Addr,
    pub col_absolute: bool,
    pub row_absolute: bool,
}

impl Addr {
    /// Parses `A1` or `$A$1` (any case); `None` when it is not an address on the grid.
    pub fn parse(text: &str) -> Option<(Addr, bool, bool)> {
        let b = text.as_bytes();
        let mut i = 0;
        let col_absolute = b.first() == Some(&b'$');
        if col_absolute {
            i += 1;
        }
        let letters_start = i;
        let mut col: u32 = 0;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            col = col * 26 + u32::from(b[i].to_ascii_uppercase() - b'A' + 1);
            i += 1;
            if i - letters_start > 3 {
                return None;
            }
        }
        if i == letters_start {
            return None;
        }
        let row_absolute = b.get(i) == Some(&b'$');
        if row_absolute {
            i += 1;
        }
        let digits = &text[i..];
        if digits.is_empty() || digits.len() > 7 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if digits.starts_with('0') {
            return None;
        }
        let row: u32 = digits.parse().ok()?;
        if col > MAX_COLUMN || row == 0 || row > MAX_ROW {
            return None;
        }
        Some((Addr { row, col }, col_absolute, row_absolute))
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut letters = Vec::new();
        let mut c = self.col;
        while c > 0 {
            let rem = (c - 1) % 26;
            letters.push(b'A' + rem as u8);
            c = (c - 1) / 26;
        }
        letters.reverse();
        write!(f, "{}{}", String::from_utf8_lossy(&letters), self.row)
    }
}

/// How a sheet name is written in a reference: quoted when it is not a plain word.
pub fn quote_sheet(name: &str) -> String {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_addresses() {
        let (a, ca, ra) = Addr::parse("$AB$12").unwrap();
        assert_eq!((a.col, a.row, ca, ra), (28, 12, true, true));
        assert_eq!(a.to_string(), "AB12");
        assert_eq!(
            Addr::parse("xfd1048576").unwrap().0.to_string(),
            "XFD1048576"
        );
        for bad in [
            "A0", "XFE1", "A1048577", "1A", "A", "ABCD1", "A01", "A$", "$1",
        ] {
            assert!(Addr::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(quote_sheet("Sheet1"), "Sheet1");
        assert_eq!(quote_sheet("My Sheet"), "'My Sheet'");
        assert_eq!(quote_sheet("Bob's"), "'Bob''s'");
    }
}
