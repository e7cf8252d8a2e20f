//! Turning one block into units that each fit the budget: the whole block when it fits,
//! else rows (tables, code) or items (lists), then sentences, then words, then graphemes.

use std::ops::Range;

use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation};

use super::TokenCounter;

/// The limits one chunk must respect.
pub(crate) struct Budget<'a> {
    pub counter: &'a dyn TokenCounter,
    pub max_tokens: usize,
    pub max_bytes: usize,
}

impl Budget<'_> {
    pub fn count(&self, text: &str) -> usize {
        self.counter.count_tokens(text)
    }

    /// The token count of `text` when it fits, counted exactly.
    pub fn fits(&self, text: &str) -> Option<usize> {
        if text.len() > self.max_bytes {
            return None;
        }
        let tokens = self.count(text);
        (tokens <= self.max_tokens).then_some(tokens)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// Running text: may be split into sentences and carried over as overlap.
    Prose,
    /// Tables and code: never cut for overlap.
    Verbatim,
}

/// A piece of a section that fits the budget on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unit {
    pub span: Range<usize>,
    /// Set when the text is not `source[span]` (a repeated table header, a re-opened fence).
    pub synthetic: Option<String>,
    pub tokens: usize,
    pub kind: UnitKind,
}

impl Unit {
    pub fn text<'s>(&'s self, src: &'s str) -> &'s str {
        self.synthetic.as_deref().unwrap_or(&src[self.span.clone()])
    }

    pub fn bytes(&self) -> usize {
        self.synthetic.as_ref().map_or(self.span.len(), String::len)
    }
}

/// `range` without leading and trailing whitespace.
pub(crate) fn trim_span(src: &str, range: Range<usize>) -> Range<usize> {
    let text = &src[range.clone()];
    let start = range.start + (text.len() - text.trim_start().len());
    let end = range.end - (text.len() - text.trim_end().len());
    start..end.max(start)
}

/// Sentence spans inside `range`, trimmed. Line breaks inside a paragraph are read as
/// spaces first: UAX #29 breaks at every newline, which would cut hard-wrapped prose.
pub(crate) fn sentence_spans(src: &str, range: Range<usize>) -> Vec<Range<usize>> {
    // Same byte length as the source, so offsets carry over unchanged.
    let unwrapped = src[range.clone()].replace(['\n', '\r'], " ");
    unwrapped
        .split_sentence_bound_indices()
        .map(|(at, sentence)| trim_span(src, range.start + at..range.start + at + sentence.len()))
        .filter(|r| !r.is_empty())
        .collect()
}

/// Units for running text: the whole range, else its sentences, else word runs.
pub(crate) fn prose_units(
    budget: &Budget,
    src: &str,
    range: Range<usize>,
    kind: UnitKind,
    out: &mut Vec<Unit>,
) {
    let range = trim_span(src, range);
    if range.is_empty() {
        return;
    }
    if let Some(tokens) = budget.fits(&src[range.clone()]) {
        out.push(Unit {
            span: range,
            synthetic: None,
            tokens,
            kind,
        });
        return;
    }
    for sentence in sentence_spans(src, range) {
        match budget.fits(&src[sentence.clone()]) {
            Some(tokens) => out.push(Unit {
                span: sentence,
                synthetic: None,
                tokens,
                kind,
            }),
            None => word_units(budget, src, sentence, kind, out),
        }
    }
}

/// Last resort for an overlong sentence or row: the longest runs of whole words that fit,
/// and runs of graphemes for a single word that does not.
pub(crate) fn word_units(
    budget: &Budget,
    src: &str,
    range: Range<usize>,
    kind: UnitKind,
    out: &mut Vec<Unit>,
) {
    let mut pos = range.start;
    while pos < range.end {
        let rest = &src[pos..range.end];
        pos += rest.len() - rest.trim_start().len();
        if pos >= range.end {
            break;
        }
        // A piece can never be longer than max_bytes, so candidates stay in this window;
        // that keeps each count small even for a megabyte without a newline.
        let mut window_end = if range.end - pos <= budget.max_bytes {
            range.end
        } else {
            src.floor_char_boundary(pos + budget.max_bytes)
        };
        if window_end <= pos {
            window_end = pos + src[pos..].chars().next().map_or(1, char::len_utf8);
        }
        let window = &src[pos..window_end];
        let at_end = window_end == range.end;
        // A cut at the window's edge may fall inside a word; it is only a candidate at the end.
        let word_cuts: Vec<usize> = window
            .split_word_bound_indices()
            .map(|(at, w)| at + w.len())
            .filter(|&cut| at_end || cut < window.len())
            .collect();
        let (cut, tokens) = longest_fitting(budget, window, &word_cuts)
            .or_else(|| {
                let grapheme_cuts: Vec<usize> = window
                    .grapheme_indices(true)
                    .map(|(at, g)| at + g.len())
                    .filter(|&cut| {
                        cut < window.len() || at_end || ends_grapheme(&src[pos..range.end], cut)
                    })
                    .collect();
                longest_fitting(budget, window, &grapheme_cuts)
            })
            .unwrap_or_else(|| {
                // Not even one grapheme fits (a budget below one token): take it anyway, so
                // the text is still covered and the loop advances.
                let cut = window.graphemes(true).next().map_or(window.len(), str::len);
                (cut, budget.count(&window[..cut]))
            });
        let piece = trim_span(src, pos..pos + cut);
        if !piece.is_empty() {
            out.push(Unit {
                span: piece,
                synthetic: None,
                tokens,
                kind,
            });
        }
        pos += cut.max(1);
        pos = src.ceil_char_boundary(pos);
    }
}

/// Whether `at` is a grapheme boundary of `text` (the window's end may split a cluster).
fn ends_grapheme(text: &str, at: usize) -> bool {
    GraphemeCursor::new(at, text.len(), true)
        .is_boundary(text, 0)
        .unwrap_or(false)
}

/// The largest cut whose (trimmed) prefix fits, by binary search: token counts grow with
/// the prefix. Returns the cut and the prefix's token count.
fn longest_fitting(budget: &Budget, window: &str, cuts: &[usize]) -> Option<(usize, usize)> {
    let (mut lo, mut hi) = (0, cuts.len());
    let mut best = None;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let prefix = window[..cuts[mid]].trim_end();
        match budget.fits(prefix) {
            Some(tokens) => {
                if !prefix.trim_start().is_empty() {
                    best = Some((cuts[mid], tokens));
                }
                lo = mid + 1;
            }
            None => hi = mid,
        }
    }
    best
}

/// Rows of a table or lines of a code block that do not fit as one unit: groups of whole
/// rows, each wrapped in `frame` (the table header, or the fence lines) so every piece
/// reads on its own. `first_start` widens the first piece's span over the header.
pub(crate) fn framed_units(
    budget: &Budget,
    src: &str,
    frame: (&str, &str),
    rows: &[Range<usize>],
    first_start: usize,
    out: &mut Vec<Unit>,
) {
    let (prefix, suffix) = frame;
    let frame_tokens = budget.count(prefix) + budget.count(suffix);
    let frame_bytes = prefix.len() + 1 + suffix.len();
    let row_tokens: Vec<usize> = rows.iter().map(|r| budget.count(&src[r.clone()])).collect();
    let mut i = 0;
    while i < rows.len() {
        // Estimate by summing (exact for tokenizers that split on whitespace), then verify.
        let (mut j, mut tokens, mut bytes) = (i, frame_tokens, frame_bytes);
        while j < rows.len() {
            let row_bytes = rows[j].end.saturating_sub(rows[i].start) + frame_bytes;
            if tokens + row_tokens[j] > budget.max_tokens || bytes.max(row_bytes) > budget.max_bytes
            {
                break;
            }
            tokens += row_tokens[j];
            bytes = row_bytes;
            j += 1;
        }
        loop {
            if j == i {
                // One row is too big even alone with its frame: split it by words.
                word_units(budget, src, rows[i].clone(), UnitKind::Verbatim, out);
                i += 1;
                break;
            }
            let body = &src[rows[i].start..rows[j - 1].end];
            let text = format!("{prefix}\n{body}{suffix}");
            if let Some(tokens) = budget.fits(&text) {
                if !body.trim().is_empty() {
                    let start = if i == 0 { first_start } else { rows[i].start };
                    out.push(Unit {
                        span: start..rows[j - 1].end,
                        synthetic: Some(text),
                        tokens,
                        kind: UnitKind::Verbatim,
                    });
                }
                i = j;
                break;
            }
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn budget(counter: &dyn TokenCounter, max_tokens: usize) -> Budget<'_> {
        Budget {
            counter,
            max_tokens,
            max_bytes: 10_000,
        }
    }

    fn texts<'s>(src: &'s str, units: &'s [Unit]) -> Vec<&'s str> {
        units.iter().map(|u| u.text(src)).collect()
    }

    #[test]
    fn trim_span_strips_both_ends_and_handles_blank() {
        let src = "  a b \n";
        assert_eq!(&src[trim_span(src, 0..src.len())], "a b");
        assert!(trim_span("   ", 0..3).is_empty());
    }

    #[test]
    fn sentences_ignore_hard_wraps() {
        let src = "Beta measures\nsystematic risk. It is a slope!\r\nDone?";
        let got: Vec<&str> = sentence_spans(src, 0..src.len())
            .into_iter()
            .map(|r| &src[r])
            .collect();
        assert_eq!(
            got,
            ["Beta measures\nsystematic risk.", "It is a slope!", "Done?"]
        );
    }

    #[test]
    fn prose_falls_back_to_sentences_then_words() {
        let src = "One two three. Four five six seven eight nine ten eleven.";
        let mut out = Vec::new();
        prose_units(
            &budget(&words, 4),
            src,
            0..src.len(),
            UnitKind::Prose,
            &mut out,
        );
        assert_eq!(
            texts(src, &out),
            [
                "One two three.",
                "Four five six seven",
                "eight nine ten eleven."
            ]
        );
        assert!(
            out.iter()
                .all(|u| u.tokens <= 4 && u.tokens == words(u.text(src)))
        );
    }

    #[test]
    fn a_word_longer_than_the_byte_limit_is_cut_at_graphemes() {
        let src = "ab👩‍👩‍👧cd".repeat(3);
        let b = Budget {
            counter: &|_: &str| 1usize,
            max_tokens: 5,
            max_bytes: 20,
        };
        let mut out = Vec::new();
        word_units(&b, &src, 0..src.len(), UnitKind::Prose, &mut out);
        assert!(out.len() > 1);
        assert!(out.iter().all(|u| u.span.len() <= 20));
        let joined: String = out.iter().map(|u| u.text(&src)).collect();
        assert_eq!(joined, src, "nothing lost, graphemes kept whole");
    }

    #[test]
    fn zero_budget_still_advances_and_covers_the_text() {
        let src = "a b c";
        let mut out = Vec::new();
        word_units(
            &budget(&words, 0),
            src,
            0..src.len(),
            UnitKind::Prose,
            &mut out,
        );
        assert_eq!(texts(src, &out), ["a", "b", "c"]);
    }

    #[test]
    fn framed_rows_repeat_the_frame_and_cover_every_row() {
        let src = "| h |\n|---|\n| 1 |\n| 2 |\n| 3 |";
        let rows: Vec<Range<usize>> = vec![12..17, 18..23, 24..29];
        assert_eq!(&src[rows[2].clone()], "| 3 |");
        let count = |s: &str| s.matches('|').count();
        let mut out = Vec::new();
        framed_units(
            &budget(&count, 8),
            src,
            ("| h |\n|---|", ""),
            &rows,
            0,
            &mut out,
        );
        assert_eq!(
            texts(src, &out),
            ["| h |\n|---|\n| 1 |\n| 2 |", "| h |\n|---|\n| 3 |"]
        );
        assert_eq!(
            out[0].span,
            0..23,
            "first piece covers the header in the source"
        );
        assert_eq!(out[1].span, 24..29);
    }

    #[test]
    fn framed_row_too_big_alone_is_split_by_words() {
        let src = "h\n|-|\nr1 r2 r3 r4";
        let mut out = Vec::new();
        framed_units(
            &budget(&words, 2),
            src,
            ("h\n|-|", ""),
            std::slice::from_ref(&(6..17)),
            0,
            &mut out,
        );
        assert_eq!(texts(src, &out), ["r1 r2", "r3 r4"]);
    }
}
