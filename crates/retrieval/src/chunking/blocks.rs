//! A small markdown block reader: just enough structure for chunking (ATX headings,
//! paragraphs, lists, pipe tables, fenced code). Plain text reads as paragraphs.
//! It never fails: anything it does not recognise is a paragraph.

use std::ops::Range;

/// One source line; `end` excludes the line terminator (`\n` or `\r\n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    pub start: usize,
    pub end: usize,
}

impl Line {
    fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Heading {
        level: usize,
        title: String,
    },
    Paragraph,
    /// Each item runs from its marker line to its last continuation line.
    List {
        items: Vec<Range<usize>>,
    },
    /// `header` covers the header row and the delimiter row.
    Table {
        header: Range<usize>,
        rows: Vec<Range<usize>>,
    },
    /// `close` is `None` for a fence left open until the end of the document.
    Code {
        open: Range<usize>,
        body: Vec<Range<usize>>,
        close: Option<Range<usize>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub kind: BlockKind,
    pub span: Range<usize>,
}

/// Splits `src[from..]` into lines. A leading byte-order mark is not content.
pub(crate) fn lines(src: &str, from: usize) -> Vec<Line> {
    let from = if from == 0 && src.starts_with('\u{feff}') {
        3
    } else {
        from.min(src.len())
    };
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut start = from;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        if b == b'\n' {
            let end = if i > start && bytes[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            out.push(Line { start, end });
            start = i + 1;
        }
    }
    if start < src.len() {
        out.push(Line {
            start,
            end: src.len(),
        });
    }
    out
}

pub(crate) fn parse_blocks(src: &str, body_start: usize) -> Vec<Block> {
    let lines = lines(src, body_start);
    let text = |i: usize| &src[lines[i].start..lines[i].end];
    let is_blank = |i: usize| text(i).trim().is_empty();
    let table_starts = |i: usize| i + 1 < lines.len() && is_table_start(text(i), text(i + 1));
    // Lines that end a paragraph or list without a blank line in between.
    let interrupts = |i: usize| {
        let t = text(i);
        t.trim().is_empty()
            || Fence::open(t).is_some()
            || atx_heading(t).is_some()
            || is_thematic_break(t)
            || table_starts(i)
    };

    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = text(i);
        if is_blank(i) {
            i += 1;
            continue;
        }
        if let Some(fence) = Fence::open(t) {
            let close = (i + 1..lines.len()).find(|&j| fence.closes(text(j)));
            let body_end = close.unwrap_or(lines.len());
            let body: Vec<_> = lines[i + 1..body_end].iter().map(|l| l.range()).collect();
            let end = close.map_or(lines[body_end - 1].end, |c| lines[c].end);
            blocks.push(Block {
                kind: BlockKind::Code {
                    open: lines[i].range(),
                    body,
                    close: close.map(|c| lines[c].range()),
                },
                span: lines[i].start..end,
            });
            i = close.map_or(lines.len(), |c| c + 1);
            continue;
        }
        if let Some((level, title)) = atx_heading(t) {
            blocks.push(Block {
                kind: BlockKind::Heading { level, title },
                span: lines[i].range(),
            });
            i += 1;
            continue;
        }
        if is_thematic_break(t) {
            i += 1;
            continue;
        }
        if table_starts(i) {
            let mut j = i + 2;
            while j < lines.len() && !is_blank(j) && text(j).contains('|') {
                j += 1;
            }
            blocks.push(Block {
                kind: BlockKind::Table {
                    header: lines[i].start..lines[i + 1].end,
                    rows: lines[i + 2..j].iter().map(|l| l.range()).collect(),
                },
                span: lines[i].start..lines[j - 1].end,
            });
            i = j;
            continue;
        }
        if is_list_item(t) {
            let mut items: Vec<Range<usize>> = vec![lines[i].range()];
            let mut j = i + 1;
            while j < lines.len() && !interrupts(j) {
                if is_list_item(text(j)) {
                    items.push(lines[j].range());
                } else if let Some(last) = items.last_mut() {
                    last.end = lines[j].end;
                }
                j += 1;
            }
            blocks.push(Block {
                kind: BlockKind::List { items },
                span: lines[i].start..lines[j - 1].end,
            });
            i = j;
            continue;
        }
        let mut j = i + 1;
        while j < lines.len() && !interrupts(j) && !is_list_item(text(j)) {
            j += 1;
        }
        blocks.push(Block {
            kind: BlockKind::Paragraph,
            span: lines[i].start..lines[j - 1].end,
        });
        i = j;
    }
    blocks
}

/// Leading spaces of a line, if at most three (deeper indentation is not a marker).
fn after_indent(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(' ');
    (line.len() - rest.len() <= 3).then_some(rest)
}

fn atx_heading(line: &str) -> Option<(usize, String)> {
    let rest = after_indent(line)?;
    let hashes = rest.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let after = &rest[hashes..];
    if !(after.is_empty() || after.starts_with(' ') || after.starts_with('\t')) {
        return None;
    }
    let title = after.trim();
    // A closing run of `#` is decoration only when separated by a space (`C#` stays).
    let without_close = title.trim_end_matches('#');
    let title = if without_close.is_empty() {
        ""
    } else if without_close.ends_with([' ', '\t']) {
        without_close.trim_end()
    } else {
        title
    };
    Some((hashes, title.to_string()))
}

fn is_thematic_break(line: &str) -> bool {
    let Some(rest) = after_indent(line) else {
        return false;
    };
    let rest = rest.trim_end();
    let Some(marker) = rest.chars().next().filter(|c| matches!(c, '-' | '*' | '_')) else {
        return false;
    };
    rest.chars().all(|c| c == marker || c == ' ' || c == '\t')
        && rest.chars().filter(|&c| c == marker).count() >= 3
}

fn is_list_item(line: &str) -> bool {
    if is_thematic_break(line) {
        return false;
    }
    let s = line.trim_start();
    let bytes = s.as_bytes();
    let spaced = |i: usize| matches!(bytes.get(i), Some(b' ' | b'\t'));
    match bytes.first() {
        Some(b'-' | b'*' | b'+') => spaced(1),
        Some(b'0'..=b'9') => {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            digits <= 9 && matches!(bytes.get(digits), Some(b'.' | b')')) && spaced(digits + 1)
        }
        _ => false,
    }
}

fn is_table_start(header: &str, delimiter: &str) -> bool {
    header.contains('|') && is_table_delimiter(delimiter)
}

/// `| --- | :---: |` or `---|---`: every cell is dashes with optional alignment colons.
fn is_table_delimiter(line: &str) -> bool {
    let s = line.trim();
    if !s.contains('|') || !s.contains('-') {
        return false;
    }
    let s = s.strip_prefix('|').unwrap_or(s);
    let s = s.strip_suffix('|').unwrap_or(s);
    s.split('|').all(|cell| {
        let cell = cell.trim();
        let inner = cell.strip_prefix(':').unwrap_or(cell);
        let inner = inner.strip_suffix(':').unwrap_or(inner);
        !inner.is_empty() && inner.bytes().all(|b| b == b'-')
    })
}

#[derive(Debug, Clone, Copy)]
struct Fence {
    marker: u8,
    len: usize,
}

impl Fence {
    fn open(line: &str) -> Option<Fence> {
        let rest = after_indent(line)?;
        let marker = *rest
            .as_bytes()
            .first()
            .filter(|b| matches!(b, b'`' | b'~'))?;
        let len = rest.bytes().take_while(|&b| b == marker).count();
        if len < 3 || (marker == b'`' && rest[len..].contains('`')) {
            return None;
        }
        Some(Fence { marker, len })
    }

    fn closes(self, line: &str) -> bool {
        let Some(rest) = after_indent(line) else {
            return false;
        };
        let run = rest.bytes().take_while(|&b| b == self.marker).count();
        run >= self.len && rest[run..].trim().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<String> {
        parse_blocks(src, 0)
            .into_iter()
            .map(|b| match b.kind {
                BlockKind::Heading { level, title } => format!("h{level}:{title}"),
                BlockKind::Paragraph => format!("p:{}", &src[b.span]),
                BlockKind::List { items } => format!("list:{}", items.len()),
                BlockKind::Table { rows, .. } => format!("table:{}", rows.len()),
                BlockKind::Code { body, close, .. } => {
                    format!("code:{}:{}", body.len(), close.is_some())
                }
            })
            .collect()
    }

    #[test]
    fn lines_handle_crlf_bom_and_missing_final_newline() {
        let src = "\u{feff}a\r\nb\n\nc";
        let got: Vec<&str> = lines(src, 0).iter().map(|l| &src[l.start..l.end]).collect();
        assert_eq!(got, ["a", "b", "", "c"]);
        assert!(lines("", 0).is_empty());
        assert_eq!(lines("x\n", 0).len(), 1);
    }

    #[test]
    fn recognises_each_block_kind() {
        let src = "# Title\nIntro line one\nline two.\n\n- a\n- b\n  more b\n\n| x | y |\n|---|:-:|\n| 1 | 2 |\n\n```rust\nfn f() {}\n```\n***\n## Next ##\n";
        assert_eq!(
            kinds(src),
            [
                "h1:Title",
                "p:Intro line one\nline two.",
                "list:2",
                "table:1",
                "code:1:true",
                "h2:Next"
            ]
        );
    }

    #[test]
    fn headings_need_a_space_and_keep_meaningful_hashes() {
        assert_eq!(atx_heading("#hashtag"), None);
        assert_eq!(atx_heading("####### seven"), None);
        assert_eq!(atx_heading("    # indented code"), None);
        assert_eq!(atx_heading("## C#"), Some((2, "C#".into())));
        assert_eq!(atx_heading("### Risk ###"), Some((3, "Risk".into())));
        assert_eq!(atx_heading("#"), Some((1, String::new())));
    }

    #[test]
    fn unterminated_fence_runs_to_the_end_and_hides_headings() {
        assert_eq!(kinds("```\n# not a heading\ncode"), ["code:2:false"]);
        assert_eq!(
            kinds("~~~~\nx\n~~~\n~~~~\nafter"),
            ["code:2:true", "p:after"]
        );
    }

    #[test]
    fn a_pipe_without_delimiter_row_is_a_paragraph() {
        assert_eq!(kinds("a | b\nc | d"), ["p:a | b\nc | d"]);
        assert_eq!(kinds("a | b\n--- | ---\nc | d\n"), ["table:1"]);
    }

    #[test]
    fn list_markers_are_distinguished_from_emphasis_and_numbers() {
        assert!(is_list_item("- item"));
        assert!(is_list_item("  12. item"));
        assert!(is_list_item("3) item"));
        assert!(!is_list_item("**bold** start"));
        assert!(!is_list_item("-5% return"));
        assert!(!is_list_item("2024 was a year"));
        assert!(!is_list_item("- - -"));
    }

    #[test]
    fn list_interrupts_a_paragraph() {
        assert_eq!(kinds("Steps:\n1. one\n2. two"), ["p:Steps:", "list:2"]);
    }
}
