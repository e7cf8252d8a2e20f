//! The small front matter block that opens a document:
//!
//! ```text
//! ---
//! title: Weighted average cost of capital
//! scope: global
//! tags: [valuation, dcf]
//! ---
//! ```
//!
//! A flat subset of YAML: `key: value` lines, values plain or quoted strings, or lists
//! written `[a, b]` or as `- item` lines under an empty `key:`. Enough for document
//! metadata; anything richer is rejected with the line number.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;

/// Where a front matter block lies in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontMatterBlock {
    /// The lines between the two `---` fences.
    pub inner: Range<usize>,
    /// Where the document's body begins (after the closing fence's line).
    pub body_start: usize,
}

/// Finds a front matter block: `---` on the first line (after an optional byte-order
/// mark) and a closing `---` or `...` line. Without a closing line there is none.
pub fn locate(source: &str) -> Option<FrontMatterBlock> {
    let start = if source.starts_with('\u{feff}') { 3 } else { 0 };
    let mut lines = line_ranges(source, start);
    let first = lines.next()?;
    if source[first.clone()].trim_end() != "---" {
        return None;
    }
    let inner_start = first.end + line_break_len(source, first.end);
    for line in lines {
        let text = source[line.clone()].trim_end();
        if text == "---" || text == "..." {
            return Some(FrontMatterBlock {
                inner: inner_start..line.start.max(inner_start),
                body_start: line.end + line_break_len(source, line.end),
            });
        }
    }
    None
}

/// A parsed front matter value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FrontValue {
    Text(String),
    List(Vec<String>),
}

/// Parsed front matter (keys sorted).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FrontMatter {
    pub fields: BTreeMap<String, FrontValue>,
    /// Where the body begins in the source (0 when there is no front matter).
    #[serde(skip)]
    pub body_start: usize,
}

impl FrontMatter {
    /// A text field; `None` when absent or a list.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.fields.get(key)? {
            FrontValue::Text(s) => Some(s),
            FrontValue::List(_) => None,
        }
    }

    /// A list field; a single text value reads as a one-item list.
    pub fn list(&self, key: &str) -> Vec<&str> {
        match self.fields.get(key) {
            Some(FrontValue::List(items)) => items.iter().map(String::as_str).collect(),
            Some(FrontValue::Text(s)) => vec![s.as_str()],
            None => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontMatterError {
    #[error("front matter line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("front matter line {line}: duplicate key `{key}`")]
    DuplicateKey { line: usize, key: String },
}

/// Parses the front matter, if any. A document without one gives the empty default.
pub fn parse(source: &str) -> Result<FrontMatter, FrontMatterError> {
    let Some(block) = locate(source) else {
        return Ok(FrontMatter::default());
    };
    let mut fields = BTreeMap::new();
    // The key of an empty `key:` line awaiting `- item` lines.
    let mut open_list: Option<String> = None;
    for (index, line) in line_ranges(source, block.inner.start)
        .take_while(|r| r.start < block.inner.end)
        .enumerate()
    {
        let line_no = index + 2; // the opening fence is line 1
        let text = source[line].trim_end();
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(item) =
            trimmed
                .strip_prefix("- ")
                .or(if trimmed == "-" { Some("") } else { None })
        {
            let Some(key) = &open_list else {
                return Err(FrontMatterError::Malformed {
                    line: line_no,
                    reason: "list item without a key",
                });
            };
            if let Some(FrontValue::List(items)) = fields.get_mut(key) {
                items.push(unquote(item.trim()).to_string());
            }
            continue;
        }
        if text.starts_with([' ', '\t']) {
            return Err(FrontMatterError::Malformed {
                line: line_no,
                reason: "nested values are not supported",
            });
        }
        let Some((key, value)) = text.split_once(':') else {
            return Err(FrontMatterError::Malformed {
                line: line_no,
                reason: "expected `key: value`",
            });
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(FrontMatterError::Malformed {
                line: line_no,
                reason: "a key is one word",
            });
        }
        if fields.contains_key(key) {
            return Err(FrontMatterError::DuplicateKey {
                line: line_no,
                key: key.to_string(),
            });
        }
        let value = value.trim();
        open_list = None;
        let parsed = if value.is_empty() {
            open_list = Some(key.to_string());
            FrontValue::List(Vec::new())
        } else if let Some(inner) = value.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return Err(FrontMatterError::Malformed {
                    line: line_no,
                    reason: "unclosed `[`",
                });
            };
            FrontValue::List(
                inner
                    .split(',')
                    .map(|s| unquote(s.trim()).to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        } else {
            FrontValue::Text(unquote(value).to_string())
        };
        fields.insert(key.to_string(), parsed);
    }
    Ok(FrontMatter {
        fields,
        body_start: block.body_start,
    })
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// Line ranges from `start`, without terminators.
fn line_ranges(source: &str, start: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = start.min(source.len());
    std::iter::from_fn(move || {
        if at >= source.len() {
            return None;
        }
        let rest = &source[at..];
        let len = rest.find('\n').unwrap_or(rest.len());
        let end = if rest[..len].ends_with('\r') {
            at + len - 1
        } else {
            at + len
        };
        let range = at..end;
        at += len + 1;
        Some(range)
    })
}

fn line_break_len(source: &str, at: usize) -> usize {
    let rest = &source[at.min(source.len())..];
    if rest.starts_with("\r\n") {
        2
    } else if rest.starts_with('\n') {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_and_parses_the_usual_block() {
        let src =
            "---\ntitle: \"Sharpe ratio\"\nscope: global\ntags: [risk, 'ratios', ]\n---\n# Body\n";
        let fm = parse(src).unwrap();
        assert_eq!(fm.text("title"), Some("Sharpe ratio"));
        assert_eq!(fm.text("scope"), Some("global"));
        assert_eq!(fm.list("tags"), ["risk", "ratios"]);
        assert_eq!(&src[fm.body_start..], "# Body\n");
    }

    #[test]
    fn yaml_style_lists_crlf_and_bom() {
        let src = "\u{feff}---\r\ntags:\r\n  - dcf\r\n  - wacc\r\ntitle: a: b\r\n---\r\nbody";
        let fm = parse(src).unwrap();
        assert_eq!(fm.list("tags"), ["dcf", "wacc"]);
        assert_eq!(
            fm.text("title"),
            Some("a: b"),
            "only the first colon separates"
        );
        assert_eq!(&src[fm.body_start..], "body");
    }

    #[test]
    fn no_front_matter_without_both_fences() {
        assert_eq!(locate("# Title\n---\n"), None);
        assert_eq!(locate("---\ntitle: x\n"), None);
        assert_eq!(locate(""), None);
        assert_eq!(parse("plain text").unwrap(), FrontMatter::default());
        let empty = locate("---\n---\nrest").unwrap();
        assert!(empty.inner.is_empty());
        assert_eq!(empty.body_start, 8);
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        assert_eq!(
            parse("---\ntitle: x\nnot a pair\n---\n"),
            Err(FrontMatterError::Malformed {
                line: 3,
                reason: "expected `key: value`"
            })
        );
        assert_eq!(
            parse("---\na: 1\na: 2\n---\n"),
            Err(FrontMatterError::DuplicateKey {
                line: 3,
                key: "a".into()
            })
        );
        assert!(parse("---\n- orphan\n---\n").is_err());
        assert!(parse("---\ntags: [a, b\n---\n").is_err());
        assert!(parse("---\nmeta:\n  nested: 1\n---\n").is_err());
    }
}
